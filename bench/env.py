"""Speed of the browser on the full embedded encyclopedia.

    python bench/env.py [--questions 1000]

Prints index build time, search p50/p95 over dev questions, page render p50
(fetch + render) and `step()` p50, next to the targets for a 2-core machine.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webqa.env import Browser, LocalCorpus, render  # noqa: E402
from webqa.env.local import build_index  # noqa: E402
from webqa.paths import CORPUS_FILE  # noqa: E402


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(0)

    with tempfile.TemporaryDirectory() as folder:
        index = Path(folder) / "index.sqlite"
        start = time.perf_counter()
        build_index(CORPUS_FILE, index)
        build_seconds = time.perf_counter() - start
        corpus = LocalCorpus(CORPUS_FILE, index)

        try:
            from webqa.qa import load_questions

            questions = [q["question"] for q in load_questions(split="dev")]
        except FileNotFoundError:
            questions = corpus.titles()
        questions = rng.sample(questions, min(args.questions, len(questions)))
        search_ms = [timed(corpus.search, q, 8) for q in questions]

        titles = rng.sample(corpus.titles(), 300)
        render_ms = [timed(lambda t: render(corpus.fetch(t)), t) for t in titles]

        browser = Browser(corpus, max_actions=10_000)
        browser.reset("benchmark")
        step_ms = []
        for question in questions[:200]:
            for action in (f"Search {question}", "Clicked on link 0", "Find in page: the", "Scrolled down 1", "Back"):
                step_ms.append(timed(browser.step, action))

    rows = [
        ("index build", f"{build_seconds:.1f} s", "<= 60 s"),
        (f"search p50 ({len(search_ms)} questions)", f"{statistics.median(search_ms):.2f} ms", "<= 5 ms"),
        ("search p95", f"{percentile(search_ms, 0.95):.2f} ms", "<= 20 ms"),
        ("render p50 (fetch + render)", f"{statistics.median(render_ms):.2f} ms", "<= 20 ms"),
        ("step() p50", f"{statistics.median(step_ms):.2f} ms", ""),
        ("step() p95", f"{percentile(step_ms, 0.95):.2f} ms", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'value':>10}  target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:>10}  {target}")


if __name__ == "__main__":
    main()
