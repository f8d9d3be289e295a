"""Paired comparison of two `webqa eval` runs on the same questions: each system of one run against the same
system of the other (e.g. the encyclopedia's two rankings), with an exact sign test.

    python bench/paired_runs.py results/dev-pages.jsonl results/dev-passages.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from webqa.evaluate import read_log  # noqa: E402
from webqa.stats import paired, wilson  # noqa: E402


def compare(first: dict, second: dict) -> list[dict]:
    """Per system found in both logs: the accuracy of each on the shared questions, and the paired counts."""
    rows = []
    for system in sorted({s for s, _ in first} & {s for s, _ in second}):
        a = {q: bool(row["correct"]) for (s, q), row in first.items() if s == system}
        b = {q: bool(row["correct"]) for (s, q), row in second.items() if s == system}
        pair = paired(a, b)
        shared = a.keys() & b.keys()
        right = [sum(a[q] for q in shared), sum(b[q] for q in shared)]
        rows.append({"system": system, **pair, "first": right[0] / len(shared), "second": right[1] / len(shared),
                     "first_ci": wilson(right[0], len(shared)), "second_ci": wilson(right[1], len(shared))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", help="a webqa eval log (REPORT.jsonl)")
    parser.add_argument("second", help="another log on the same questions")
    parser.add_argument("--out", help="also write the table as JSON here")
    args = parser.parse_args()
    rows = compare(read_log(Path(args.first)), read_log(Path(args.second)))
    if args.out:
        Path(args.out).write_text(json.dumps({"first": args.first, "second": args.second, "systems": rows}, indent=1)
                                  + "\n", encoding="utf-8")
    print(f"first: {args.first}\nsecond: {args.second}")
    print(f"{'system':<16}{'n':>5}{'first':>8}{'second':>8}{'only 1st':>10}{'only 2nd':>10}{'p':>8}")
    for row in rows:
        print(f"{row['system']:<16}{row['questions']:>5}{row['first']:>8.3f}{row['second']:>8.3f}"
              f"{row['first_only']:>10}{row['second_only']:>10}{row['p_value']:>8.3f}")


if __name__ == "__main__":
    main()
