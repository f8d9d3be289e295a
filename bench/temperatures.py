"""Best-of-n at several temperatures of its sampled episodes, against the greedy episode alone.

    webqa qa export --split dev --n 200 --out runs/dev200.jsonl
    python bench/temperatures.py --questions runs/dev200.jsonl --limit 120 --temperatures 0.5 0.3 \
        --out runs/temperatures.jsonl [--n 4] [--policy DIR] [--reward DIR]

Each question is answered greedily (n=1) and with best-of-n at each temperature
(`SamplingConfig.best_of(n, temperature=T)`, seeded by the question), one right
after the other in a rotated order, so that the machine's drift stays within a
question. Every result is graded against the gold answers and appended to
`--out` (a rerun resumes; `.gz` files too). Printed: per setting, accuracy,
the questions gained and lost against greedy, the oracle (some candidate
correct), the median seconds and the two ratios against greedy (of the
medians; the median of the per-question ratios), and the prefill tokens
computed (median per-question ratio).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from webqa.agent import answer  # noqa: E402
from webqa.loading import load_sampler  # noqa: E402
from webqa.qa import read_questions  # noqa: E402
from webqa.scoring import score_record  # noqa: E402
from webqa.policy.config import SamplingConfig  # noqa: E402
from webqa.policy.sampler import SamplerStats  # noqa: E402
from webqa.records import append_record, read_records  # noqa: E402

GREEDY = "greedy"


def graded(result, answers: list[str]) -> dict:
    """The chosen answer's grade, with each candidate's."""
    def correct(text: str, references, actions) -> bool:
        return score_record({"answer": text, "quotes": [r.quote for r in references], "actions": actions}, answers)["correct"]

    return {"correct": correct(result.text if result.found else "", result.references, result.trajectory.actions),
            "candidates": [{"correct": correct(c.text, c.references, c.episode.actions), "score": c.score,
                            "actions": len(c.episode.actions)} for c in result.candidates]}


def run_question(record: dict, settings: list[tuple[str, float | None]], n: int, policy, reward) -> dict:
    """One question under every setting (name, temperature; None: greedy), in the given order."""
    sampler = load_sampler(policy)
    row = {"question": record["question"]}
    for name, temperature in settings:
        sampler.stats = SamplerStats()
        sampling = None if temperature is None else SamplingConfig.best_of(
            n, temperature=temperature, seed=zlib.crc32(record["question"].encode()))
        result = answer(record["question"], n=1 if temperature is None else n, policy=policy, reward=reward,
                        sampling=sampling)
        row[name] = {"seconds": result.seconds, "prefill_tokens": sampler.stats.prefill_padded_tokens,
                     **graded(result, record["answers"])}
    return row


def summary(rows: list[dict], names: list[str]) -> None:
    """The table: one line per setting, each against the greedy episode of the same questions."""
    greedy_median = statistics.median(r[GREEDY]["seconds"] for r in rows)
    print(f"{len(rows)} questions")
    print(f"{'':<10}{'accuracy':>9}{'gained':>7}{'lost':>5}{'oracle':>8}{'median s':>9}"
          f"{'ratio of medians':>17}{'per-question ratio':>19}{'prefill tokens':>15}")
    greedy = [r[GREEDY] for r in rows]
    greedy_accuracy = statistics.mean(g["correct"] for g in greedy)  # also its oracle: it has one candidate
    print(f"{GREEDY:<10}{greedy_accuracy:>9.3f}{'':>7}{'':>5}{greedy_accuracy:>8.3f}{greedy_median:>9.2f}"
          f"{1:>17.2f}{1:>19.2f}{1:>15.2f}")
    for name in names:
        mine = [r[name] for r in rows]
        pairs = list(zip(mine, greedy))
        median = statistics.median(m["seconds"] for m in mine)
        print(f"{name:<10}{statistics.mean(m['correct'] for m in mine):>9.3f}"
              f"{sum(m['correct'] and not g['correct'] for m, g in pairs):>7}"
              f"{sum(g['correct'] and not m['correct'] for m, g in pairs):>5}"
              f"{statistics.mean(any(c['correct'] for c in m['candidates']) for m in mine):>8.3f}"
              f"{median:>9.2f}{median / greedy_median:>17.2f}"
              f"{statistics.median(m['seconds'] / g['seconds'] for m, g in pairs):>19.2f}"
              f"{statistics.median(m['prefill_tokens'] / g['prefill_tokens'] for m, g in pairs):>15.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", required=True, help="a questions file (`webqa qa export`)")
    parser.add_argument("--out", required=True, help="results, one JSON line per question (resumes)")
    parser.add_argument("--limit", type=int, default=None, help="the first N questions only")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.5, 0.3])
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--policy", help="policy folder (default: the shipped one)")
    parser.add_argument("--reward", help="reward model folder (default: the shipped one)")
    args = parser.parse_args()
    records = read_questions(args.questions, args.limit)
    out = Path(args.out)
    rows = read_records(out, dict, "result") if out.exists() else []  # a line a killed run cut off is skipped
    done = {row["question"] for row in rows}
    settings = [(GREEDY, None)] + [(f"T={t}", t) for t in args.temperatures]
    torch.manual_seed(0)
    answer(records[0]["question"], n=args.n, policy=args.policy, reward=args.reward)  # warm-up: loads the models
    for index, record in enumerate(records):
        if record["question"] in done:
            continue
        turn = index % len(settings)  # each setting runs first as often as the others
        row = run_question(record, settings[turn:] + settings[:turn], args.n, args.policy, args.reward)
        append_record(out, row)
        rows.append(row)
        print(f"{len(rows)}/{len(records)} " + ", ".join(f"{name} {row[name]['seconds']:.1f} s"
                                                         f"{' correct' if row[name]['correct'] else ''}"
                                                         for name, _ in settings), flush=True)
    summary(rows, [name for name, _ in settings[1:]])


if __name__ == "__main__":
    main()
