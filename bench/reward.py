"""Seconds per question of best-of-4 against best-of-1, and the reward model's scoring alone.

    python bench/reward.py [--policy DIR] [--reward DIR] [--questions 16] [--n 4]

Runs `webqa.answer` on the first dev questions with n=1 (greedy) and with n=4
(one greedy and three sampled episodes in lockstep, then all four answers scored
in one forward pass), after a warm-up question that loads both models, and prints
the medians and their ratio (the target: best-of-4 <= 2x best-of-1), with where
the time went: the policy's prefill (tokens read; tokens computed, with any
padding and without the starts reused from earlier prompts; tokens reused) and
decoding (rows times steps; rows the passes read, where episodes with the same
line so far share one; tokens a grammar forced, read without a step of their
own), and the rest. Without a reward model (none shipped,
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

from webqa.agent import answer  # noqa: E402
from webqa.loading import load_reward, load_sampler  # noqa: E402
from webqa.policy.sampler import SamplerStats  # noqa: E402
from webqa.qa import load_questions  # noqa: E402


def run(question: str, n: int, policy: str | None, reward: str | None) -> dict[str, float]:
    """Seconds of one `webqa.answer` call and where they went (the sampler's counters)."""
    sampler = load_sampler(policy)
    sampler.stats = SamplerStats()
    seconds = answer(question, n=n, policy=policy, reward=reward).seconds
    stats = sampler.stats
    return {"seconds": seconds, "prefill s": stats.prefill_seconds, "decode s": stats.decode_seconds,
            "other s": seconds - stats.prefill_seconds - stats.decode_seconds,
            "prefill tokens": stats.prefill_tokens, "prefill tokens computed": stats.prefill_padded_tokens,
            "prefill tokens reused": stats.prefill_reused_tokens, "decode steps x rows": stats.decode_tokens,
            "decode rows read": stats.decode_rows_read, "forced tokens": stats.forced_tokens}


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
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--n", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    questions = [q["question"] for q in load_questions(split="dev")][: args.questions]
    rm = load_reward(args.reward)
    print(f"reward model: {'none (citation-check fallback)' if rm is None else args.reward or 'shipped'}")
    answer(questions[0], n=args.n, policy=args.policy, reward=args.reward)  # warm-up: loads both models

    # Each question with n=1, then at once with n: the machine's speed drifts less within a pair.
    pairs = [(run(q, 1, args.policy, args.reward), run(q, args.n, args.policy, args.reward)) for q in questions]
    median = lambda rows, key: statistics.median(row[key] for row in rows)  # noqa: E731
    ones, manys = [one for one, _ in pairs], [many for _, many in pairs]
    print(f"median per question over {len(questions)} dev questions, {torch.get_num_threads()} threads "
          "(other s: browser, reader, reward model)")
    print(f"{'':<26}{'best-of-1':>10}{f'best-of-{args.n}':>10}{'ratio':>8}")
    for key in ones[0]:
        one, many = median(ones, key), median(manys, key)
        print(f"{key:<26}{one:>10.2f}{many:>10.2f}{many / max(one, 1e-9):>8.2f}")
    ratio = statistics.median(many["seconds"] / one["seconds"] for one, many in pairs)
    print(f"median of the per-question ratios of seconds: {ratio:.2f} (best-of-{args.n} / best-of-1; target <= 2)")
    scoring = scoring_seconds(args.reward, args.n, questions[:2], args.policy)
    if scoring is not None:
        print(f"{'scoring only':<14}{scoring:>8.2f}  (the reward model on the answered candidates, one pass)")


if __name__ == "__main__":
    main()
