"""Demonstrations files: one `Demonstration` per JSON line, shared by the expert and the recording UI.

A path ending in `.gz` is gzip: each append writes one gzip member, which is still
one valid gzip file, so appends never rewrite what is there. Every append is
flushed and fsynced, so a killed writer loses at most the demonstration it was
writing; readers skip such a cut-off last line with a warning, and the next
append first cuts it away.

    append_demonstration("demos.jsonl.gz", demo)
    demos = read_demonstrations("demos.jsonl.gz")
    generate_demonstrations(load_questions(split="train"), "out.jsonl.gz", n=100, seed=0)
    python -m webqa.demos --n 1500 --out webqa/data/demos/expert.jsonl.gz
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time
import warnings
import zlib
from dataclasses import asdict, fields
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from webqa.env.browser import BrowserSettings
from webqa.paths import DATA_DIR
from webqa.types import Demonstration, Episode

EXPERT_FILE = DATA_DIR / "demos" / "expert.jsonl.gz"
OPEN_DOMAIN = ("triviaqa", "nq")

_repaired: set[Path] = set()  # files whose tail this process has checked before appending


# --- the file format ------------------------------------------------------------------


def append_demonstration(path: str | Path, demo: Demonstration) -> None:
    """Append one demonstration as a JSON line (a gzip member for `.gz`), flushed and fsynced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path not in _repaired:
        repair(path)
        _repaired.add(path)
    line = (json.dumps(demo.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
    with open(path, "ab") as out:
        out.write(gzip.compress(line, mtime=0) if path.suffix == ".gz" else line)
        out.flush()
        os.fsync(out.fileno())


def read_demonstrations(path: str | Path) -> list[Demonstration]:
    """Every demonstration in the file; a cut-off last line (a killed writer) is skipped with a warning.

    Any other line that is not a demonstration raises ValueError naming its line number.
    """
    path = Path(path)
    text, _, cut = _whole_records(path)
    if cut:
        warnings.warn(f"{path}: the last line is cut off (a writer killed mid-write?); skipped it", stacklevel=2)
    demos = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            demos.append(Demonstration.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"{path}, line {number}: not a demonstration ({type(exc).__name__}: {exc})") from None
    return demos


def repair(path: str | Path) -> int:
    """Cut a partly written last record off the end of the file; returns how many bytes went."""
    path = Path(path)
    if not path.exists():
        return 0
    _, keep, cut = _whole_records(path)
    if not cut:
        return 0
    size = path.stat().st_size
    with open(path, "r+b") as out:
        out.truncate(keep)
        out.flush()
        os.fsync(out.fileno())
    return size - keep


def _whole_records(path: Path) -> tuple[str, int, bool]:
    """The text of the file's whole records, their length in bytes, and whether a cut-off record follows.

    Plain: the lines up to the last newline (a last line without one counts if it is whole JSON).
    Gzip: the complete members; a member cut off mid-write ends the file.
    """
    data = path.read_bytes()
    if path.suffix != ".gz":
        keep = data.rfind(b"\n") + 1
        last = data[keep:]
        if last.strip():
            try:
                json.loads(last)
                keep = len(data)
            except ValueError:
                pass
        return data[:keep].decode("utf-8"), keep, keep < len(data) and bool(data[keep:].strip())
    parts, keep = [], 0
    while keep < len(data):
        member = zlib.decompressobj(wbits=31)  # one gzip member
        try:
            text = member.decompress(data[keep:])
        except zlib.error:
            break
        if not member.eof:
            break
        parts.append(text)
        keep = len(data) - len(member.unused_data)
    return b"".join(parts).decode("utf-8"), keep, keep < len(data)


def load_as_dataset(path: str | Path, cache_dir: str | None = None):
    """The file as a Hugging Face `datasets.Dataset` (needs the `datasets` package)."""
    from datasets import load_dataset

    return load_dataset("json", data_files=str(path), split="train", cache_dir=cache_dir)


# --- generating with the expert --------------------------------------------------------


def generate_demonstrations(questions: list[dict], out_path: str | Path, n: int, seed: int = 0,
                            settings: BrowserSettings | None = None, backend=None, progress: bool = True) -> dict:
    """Run the expert over `questions` (records of `load_questions`) until `out_path` holds `n` of theirs.

    Resumable: questions whose id is in the file already are skipped, and each question's random
    choices come from (seed, question id) alone, so a resumed run makes the same demonstrations.
    Returns counts: attempted, succeeded, mean actions, shares with a wrong click and two quotes.
    """
    from webqa.env.local import LocalCorpus
    from webqa.policy.expert import POLICY_BROWSER, Expert

    out_path = Path(out_path)
    settings = settings or POLICY_BROWSER
    ids = {record["id"] for record in questions}
    repair(out_path)
    done = {d.settings.get("question_id") for d in read_demonstrations(out_path)} if out_path.exists() else set()
    have = len(done & ids)
    expert = Expert(backend or LocalCorpus.default(), settings)
    stats = {"attempted": 0, "succeeded": 0, "actions": 0, "wrong click": 0, "two quotes": 0, "searched again": 0}
    started = time.time()
    bar = tqdm(total=n, initial=min(have, n), desc=f"demonstrations -> {out_path.name}", unit="demo",
               disable=not progress)
    for record in questions:
        if have >= n:
            break
        if record["id"] in done:
            continue
        stats["attempted"] += 1
        demo = expert.demonstrate(record["question"], record["answers"], random.Random(f"{seed}:{record['id']}"))
        if demo is not None:
            episode = demo.episode
            append_demonstration(out_path, _demonstration(episode, record, seed))
            have += 1
            stats["succeeded"] += 1
            stats["actions"] += len(episode.steps)
            stats["wrong click"] += demo.wrong_clicks > 0
            stats["two quotes"] += len(episode.quotes) > 1
            stats["searched again"] += sum(a.startswith("Search ") for a in episode.actions) > 1
            bar.update(1)
        bar.set_postfix(attempted=stats["attempted"], refresh=False)
    bar.close()
    stats["seconds"] = round(time.time() - started, 1)
    stats["in file"] = have
    return stats


def _demonstration(episode: Episode, record: dict, seed: int) -> Demonstration:
    demo = Demonstration(**{f.name: getattr(episode, f.name) for f in fields(Episode)}, producer="expert",
                         created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         gold_answers=list(record["answers"]))
    demo.settings = {**episode.settings, "question_id": record["id"], "dataset": record["dataset"], "seed": seed}
    return demo


def stats_table(rows: dict[str, dict]) -> str:
    """Generation counts per group as a small text table."""
    header = (f"{'':<12}{'attempted':>10}{'succeeded':>10}{'rate':>7}{'actions':>9}{'wrong click':>12}"
              f"{'2 quotes':>9}{'re-search':>10}{'s/demo':>8}")
    lines = [header]
    for name, s in rows.items():
        ok = s["succeeded"] or 1
        lines.append(f"{name:<12}{s['attempted']:>10}{s['succeeded']:>10}{s['succeeded'] / (s['attempted'] or 1):>7.0%}"
                     f"{s['actions'] / ok:>9.1f}{s['wrong click'] / ok:>12.0%}{s['two quotes'] / ok:>9.0%}"
                     f"{s['searched again'] / ok:>10.0%}{s['seconds'] / ok:>8.2f}")
    return "\n".join(lines)


def mixed_questions(split: str, seed: int) -> dict[str, list[dict]]:
    """The split's answerable questions in two shuffled groups: open-domain (TriviaQA, NQ) and SQuAD.

    Questions with evidence (a search result that holds the answer) come first in each group.
    """
    from webqa.qa import load_questions

    records = load_questions(split=split)
    groups = {"open-domain": [r for r in records if r["dataset"] in OPEN_DOMAIN],
              "squad": [r for r in records if r["dataset"] == "squad"]}
    for name, group in groups.items():
        random.Random(f"{seed}:{name}").shuffle(group)
        group.sort(key=lambda r: r.get("evidence") is None)  # stable: keeps the shuffle within each half
    return groups


def main(argv: list[str] | None = None) -> int:
    """`webqa demos`: generate expert demonstrations, half open-domain and half SQuAD."""
    from webqa.policy.expert import POLICY_BROWSER

    parser = argparse.ArgumentParser(prog="webqa demos", description=main.__doc__)
    parser.add_argument("--questions-split", default="train", help="question split to use (default: train)")
    parser.add_argument("--n", type=int, default=1500, help="demonstrations the file should hold (default: 1500)")
    parser.add_argument("--out", default=str(EXPERT_FILE), help=f"output file, .jsonl or .jsonl.gz (default: {EXPERT_FILE})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window-lines", type=int, default=POLICY_BROWSER.window_lines)
    parser.add_argument("--max-actions", type=int, default=POLICY_BROWSER.max_actions)
    args = parser.parse_args(argv)
    if args.questions_split != "train":
        print(f"warning: demonstrations from the {args.questions_split!r} split", file=sys.stderr)
    settings = BrowserSettings(**(asdict(POLICY_BROWSER) | {"window_lines": args.window_lines,
                                                            "max_actions": args.max_actions}))
    groups = mixed_questions(args.questions_split, args.seed)
    rows = {}
    # The open-domain half first: it runs short more easily, and SQuAD makes up what it lacks.
    rows["open-domain"] = generate_demonstrations(groups["open-domain"], args.out, args.n // 2, args.seed, settings)
    rows["squad"] = generate_demonstrations(groups["squad"], args.out, args.n - rows["open-domain"]["in file"],
                                            args.seed, settings)
    rows["all"] = {key: sum(row[key] for row in rows.values()) for key in rows["squad"]}
    print(stats_table(rows))
    size = Path(args.out).stat().st_size if Path(args.out).exists() else 0
    print(f"{rows['all']['in file']} demonstrations in {args.out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
