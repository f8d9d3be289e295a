"""Seconds per question of best-of-4 against best-of-1, and the reward model's scoring alone.

    python bench/reward.py [--policy DIR] [--reward DIR] [--questions 5] [--n 4]

Runs `webqa.answer` on the first dev questions with n=1 (greedy) and with n=4
(sampled in lockstep, then all four answers scored in one forward pass), after a
warm-up question that loads both models, and prints the medians and their ratio
(the target: best-of-4 <= 2x best-of-1). Without a reward model (none shipped,
none given) n=4 falls back to the citation check, so the ratio then measures
sampling alone; the scoring line shows what the reward model adds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from webqa.agent import answer, load_reward  # noqa: E402
from webqa.qa import load_questions  # noqa: E402


def median_seconds(questions: list[str], n: int, policy: str | None, reward: str | None) -> float:
    return statistics.median(answer(q, n=n, policy=policy, reward=reward).seconds for q in questions)


def scoring_seconds(reward: str | None, n: int, questions: list[str], policy: str | None) -> float | None:
    """Median seconds the reward model takes to score n candidates (from real episodes) in one pass."""
    model = load_reward(reward)
    if model is None:
        return None
    times = []
    for question in questions:
        result = answer(question, n=n, policy=policy, reward=reward)
        items = [(question, c.episode.quotes, c.text) for c in result.candidates if c.found]
        if items:
            start = time.perf_counter()
            model.score(items)
            times.append(time.perf_counter() - start)
    return statistics.median(times) if times else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", help="policy folder (default: the shipped one)")
    parser.add_argument("--reward", help="reward model folder (default: the shipped one)")
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--n", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    questions = [q["question"] for q in load_questions(split="dev")][: args.questions]
    rm = load_reward(args.reward)
    print(f"reward model: {'none (citation-check fallback)' if rm is None else args.reward or 'shipped'}")
    answer(questions[0], n=args.n, policy=args.policy, reward=args.reward)  # warm-up: loads both models

    one = median_seconds(questions, 1, args.policy, args.reward)
    many = median_seconds(questions, args.n, args.policy, args.reward)
    print(f"median seconds per question over {len(questions)} dev questions, {torch.get_num_threads()} threads")
    print(f"{'best-of-1':<14}{one:>8.2f}\n{f'best-of-{args.n}':<14}{many:>8.2f}\n"
          f"{'ratio':<14}{many / one:>8.2f}  (best-of-{args.n} / best-of-1; target <= 2)")
    scoring = scoring_seconds(args.reward, args.n, questions[:2], args.policy)
    if scoring is not None:
        print(f"{'scoring only':<14}{scoring:>8.2f}  (the reward model on the answered candidates, one pass)")


if __name__ == "__main__":
    main()
