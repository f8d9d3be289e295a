"""Speed of the rollout engine against plain `model.generate`, and of lockstep sampling.

    python bench/policy.py [--policy DIR] [--prompts 4] [--questions 3]

1. The same batch of real browser observations, sampled greedily to the end of
   the action line by the rollout engine and by `model.generate`: prefill and
   decode tokens per second of each, and the ratio.
2. n=4 episodes of one question in lockstep against 4 episodes run one after
   the other: seconds per question of each, and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from webqa.loading import load_sampler  # noqa: E402
from webqa.env import Browser, LocalCorpus  # noqa: E402
from webqa.policy.prompts import POLICY_BROWSER  # noqa: E402
from webqa.policy.config import SamplingConfig  # noqa: E402
from webqa.policy.rollout import run_episodes  # noqa: E402
from webqa.policy.sampler import Sampler, SamplerStats  # noqa: E402
from webqa.qa import load_questions  # noqa: E402

QUESTIONS = ["Which river flows through Vienna?", "Who painted the Mona Lisa?", "What is the capital of Australia?",
             "Who wrote the novel Lolita?"]  # distinct: the rollout engine prefills identical prompts once


def observations(corpus: LocalCorpus, count: int) -> list[str]:
    """Real observations: a search result page for each of a few questions."""
    prompts = []
    for question in (QUESTIONS * count)[:count]:
        browser = Browser(corpus, POLICY_BROWSER)
        browser.reset(question)
        prompts.append(browser.step(f"Search {question}").observation + "\n")
    return prompts


def tokens_to_stop(row: list[int], stops: set[int]) -> int:
    """New tokens of one generated row up to and including its first stop token."""
    return next((count for count, token in enumerate(row, 1) if token in stops), len(row))


def bench_engines(sampler: Sampler, prompts: list[str], max_new: int, repeats: int = 3) -> list[tuple]:
    """Median tokens/s of each engine over `repeats` runs, after one warm-up run of each."""
    model, tokenizer = sampler.model, sampler.tokenizer
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    prompt_tokens = int(batch["attention_mask"].sum())
    ours_prefill, ours_decode, their_prefill, their_decode = [], [], [], []
    stops = sampler.stop_ids.tolist()
    stop_set = set(stops)
    for repeat in range(repeats + 1):  # the first run of each warms it up and is not counted
        sampler.stats = SamplerStats()
        sampler.sample(prompts, max_new, temperature=0)
        ours = sampler.stats
        start = time.perf_counter()
        with torch.no_grad():
            model(**batch, logits_to_keep=1)
        prefill = time.perf_counter() - start
        start = time.perf_counter()
        # generate stops each row where the rollout engine does (end of sequence, or a newline
        # token), so both do the same work; only tokens up to each row's stop are counted.
        with torch.no_grad():
            output = model.generate(**batch, max_new_tokens=max_new, do_sample=False,
                                    eos_token_id=stops, pad_token_id=tokenizer.pad_token_id)
        total = time.perf_counter() - start
        if repeat == 0:
            continue
        new_rows = output[:, batch["input_ids"].shape[1]:].tolist()
        new_tokens = sum(tokens_to_stop(row, stop_set) for row in new_rows)
        ours_prefill.append(ours.prefill_tokens / ours.prefill_seconds)
        ours_decode.append(ours.decode_tokens / max(1e-9, ours.decode_seconds))
        their_prefill.append(prompt_tokens / prefill)
        their_decode.append(new_tokens / max(1e-9, total - prefill))
    median = statistics.median
    return [
        ("prefill tokens/s", median(ours_prefill), median(their_prefill)),
        ("decode tokens/s", median(ours_decode), median(their_decode)),
    ]


def bench_lockstep(sampler: Sampler, corpus: LocalCorpus, questions: list[str], n: int) -> tuple[float, float]:
    config = SamplingConfig(seed=0)
    lockstep, sequential = [], []
    for question in questions:
        browsers = [Browser(corpus, POLICY_BROWSER) for _ in range(n)]
        start = time.perf_counter()
        run_episodes(sampler, browsers, question, config)
        lockstep.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(n):
            run_episodes(sampler, [Browser(corpus, POLICY_BROWSER)], question, config)
        sequential.append(time.perf_counter() - start)
    return statistics.median(lockstep), statistics.median(sequential)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", help="policy folder (default: the shipped one)")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--max-new", type=int, default=24)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--n", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    corpus = LocalCorpus.default()
    sampler = load_sampler(args.policy)

    rows = bench_engines(sampler, observations(corpus, args.prompts), args.max_new)
    print(f"batch of {args.prompts} observations, greedy, up to {args.max_new} new tokens, median of 3 runs")
    print(f"{'measure':<18}{'rollout':>10}{'generate':>10}{'ratio':>8}")
    for name, ours, theirs in rows:
        print(f"{name:<18}{ours:>10.1f}{theirs:>10.1f}{ours / theirs:>8.2f}")

    questions = [q["question"] for q in load_questions(split="dev")][: args.questions]
    lockstep, sequential = bench_lockstep(sampler, corpus, questions, args.n)
    print(f"\nn={args.n} episodes per question, median over {len(questions)} dev questions")
    print(f"{'lockstep s':<18}{lockstep:>10.1f}\n{'sequential s':<18}{sequential:>10.1f}\n"
          f"{'ratio':<18}{sequential / lockstep:>10.2f}  (sequential / lockstep)")


if __name__ == "__main__":
    main()
