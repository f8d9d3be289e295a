"""Demonstrations files: one `Demonstration` per JSON line, shared by the expert and the recording UI.

The file format (plain or gzip, crash-safe appends) is `webqa.records`'.

    append_demonstration("demos.jsonl.gz", demo)
    demos = read_demonstrations("demos.jsonl.gz")
    generate_demonstrations(load_questions(split="train"), "out.jsonl.gz", n=100, seed=0)
    python -m webqa.demos --n 1500 --out webqa/data/demos/expert.jsonl.gz
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import fields, replace
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from webqa.env.browser import BrowserSettings
from webqa.paths import DATA_DIR
from webqa.records import append_record, load_as_dataset, read_records, repair  # noqa: F401 (re-exported)
from webqa.types import Demonstration, Episode

EXPERT_FILE = DATA_DIR / "demos" / "expert.jsonl.gz"
OPEN_DOMAIN = ("triviaqa", "nq")

# --- the file format ------------------------------------------------------------------


def append_demonstration(path: str | Path, demo: Demonstration) -> None:
    """Append one demonstration as a JSON line (a gzip member for `.gz`), flushed and fsynced."""
    append_record(path, demo.to_dict())


def read_demonstrations(path: str | Path) -> list[Demonstration]:
    """Every demonstration in the file; a cut-off last line (a killed writer) is skipped with a warning.

    Any other line that is not a demonstration raises ValueError naming its line number.
    """
    return read_records(path, Demonstration.from_dict, "demonstration")


# --- generating with the expert --------------------------------------------------------


def generate_demonstrations(questions: list[dict], out_path: str | Path, n: int, seed: int = 0,
                            settings: BrowserSettings | None = None, backend=None, progress: bool = True) -> dict:
    """Run the expert over `questions` (records of `load_questions`) until `out_path` holds `n` of theirs.

    Resumable: questions whose id is in the file already are skipped, and each question's random
    choices come from (seed, question id) alone, so a resumed run makes the same demonstrations.
    Returns counts: attempted, succeeded, mean actions, shares with a wrong click and two quotes.
    """
    from webqa.env.local import LocalCorpus
    from webqa.policy.expert import Expert
    from webqa.policy.prompts import POLICY_BROWSER

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
    from webqa.env.local import DEFAULT_RANKING, RANKINGS, LocalCorpus
    from webqa.policy.prompts import POLICY_BROWSER

    parser = argparse.ArgumentParser(prog="webqa demos", description=main.__doc__)
    parser.add_argument("--questions-split", default="train", help="question split to use (default: train)")
    parser.add_argument("--n", type=int, default=1500, help="demonstrations the file should hold (default: 1500)")
    parser.add_argument("--out", default=str(EXPERT_FILE), help=f"output file, .jsonl or .jsonl.gz (default: {EXPERT_FILE})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window-lines", type=int, default=POLICY_BROWSER.window_lines)
    parser.add_argument("--max-actions", type=int, default=POLICY_BROWSER.max_actions)
    parser.add_argument("--ranking", choices=RANKINGS, default=DEFAULT_RANKING,
                        help=f"how the encyclopedia ranks search results (default: {DEFAULT_RANKING})")
    args = parser.parse_args(argv)
    if args.questions_split != "train":
        print(f"warning: demonstrations from the {args.questions_split!r} split", file=sys.stderr)
    settings = replace(POLICY_BROWSER, window_lines=args.window_lines, max_actions=args.max_actions)
    groups = mixed_questions(args.questions_split, args.seed)
    rows = {}
    # The open-domain half first: it runs short more easily, and SQuAD makes up what it lacks.
    corpus = LocalCorpus(ranking=args.ranking)
    rows["open-domain"] = generate_demonstrations(groups["open-domain"], args.out, args.n // 2, args.seed, settings,
                                                  corpus)
    rows["squad"] = generate_demonstrations(groups["squad"], args.out, args.n - rows["open-domain"]["in file"],
                                            args.seed, settings, corpus)
    rows["all"] = {key: sum(row[key] for row in rows.values()) for key in rows["squad"]}
    print(stats_table(rows))
    size = Path(args.out).stat().st_size if Path(args.out).exists() else 0
    print(f"{rows['all']['in file']} demonstrations in {args.out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
