"""Seconds per question of the agent (n=1 and best-of-4) beside `rag`'s, on the same questions.

    python bench/answer_speed.py [--limit 12] [--out results/answer-speed.json]

Each `dev` question (the first `--limit` answerable ones, SQuAD and open-domain alike) is answered by
`rag` (the base model reading the top result), by the agent as `webqa.answer` runs it (n=1: the floor,
the policy browsing, the answerer writing) and by best-of-4, one right after the other, so that the
machine's drift stays within a question. Printed: the median seconds of each and the ratios of the
medians against `rag`, beside issue 27's targets (n=1 <= 6 s, n=4 <= 12 s on 2 cores). The models are
loaded before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webqa.env.local import LocalCorpus  # noqa: E402
from webqa.evaluate import run_policy, run_rag  # noqa: E402
from webqa.qa import load_questions  # noqa: E402

TARGETS = {"agent n=1": 6.0, "agent n=4": 12.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=12, help="dev questions to time")
    parser.add_argument("--out", help="write the medians and every time as JSON here")
    args = parser.parse_args(argv)

    corpus = LocalCorpus.default()
    systems = {"rag": run_rag(corpus), "agent n=1": run_policy(1, backend=corpus),
               "agent n=4": run_policy(4, backend=corpus)}
    questions = [record["question"] for record in load_questions("dev")[: args.limit]]
    systems["agent n=4"](questions[0])  # loads the policy, the answerer and the reward model
    seconds: dict[str, list[float]] = {name: [] for name in systems}
    for number, question in enumerate(questions, start=1):
        for name, run in systems.items():
            seconds[name].append(run(question)["seconds"])
        print(f"{number}/{len(questions)} " + "  ".join(f"{name} {seconds[name][-1]:.1f} s" for name in systems),
              file=sys.stderr)

    medians = {name: statistics.median(times) for name, times in seconds.items()}
    print(f"\n{'':12}{'median s':>10}{'x rag':>8}{'target':>9}")
    for name, median in medians.items():
        target = f"<= {TARGETS[name]:.0f} s" if name in TARGETS else ""
        print(f"{name:12}{median:>10.2f}{median / medians['rag']:>8.2f}{target:>9}")
    if args.out:
        report = {"questions": len(questions), "medians": medians,
                  "ratios_to_rag": {name: m / medians["rag"] for name, m in medians.items()},
                  "targets": TARGETS, "seconds": seconds,
                  "command": "python bench/answer_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])}
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
