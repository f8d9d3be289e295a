"""`webqa sample`: sample answer pools from the policy, and synthetic comparisons from them.

    webqa sample --split train --limit 500 --n 8 --out runs/pool-train.jsonl --comparisons runs/synthetic.jsonl
    webqa sample --split train --limit 500 --n 4 --out runs/pool-train.jsonl --comparisons FILE --variants 4
    webqa sample --questions dev200.jsonl --n 4 --out runs/pool-dev.jsonl --reward runs/rm   # scored, for the TUI

The pool (`--out`) is a candidates file (`webqa.reward.pool`: one line per question,
`{"question", "candidates": [{"text", "quotes": [{title, url, text}], "score"}], ...}`);
sampling resumes by question. With `--comparisons`, that file is rewritten from
the whole pool as `Comparison` lines (`webqa.comparisons`) with producer
"synthetic". The rule, on questions with gold answers: an answer that is correct
and supported by a quote it cites beats one that is only correct, which beats a
wrong one (or an invalid one); equal grades are ties (preference 0.5). Only
distinct answered candidates are compared; a question whose candidates all have
the same grade carries no signal and gives no pairs.

With `--variants K`, each question also gives up to K decisive pairs of answer
variants: the answers the extractor could have drawn from the same quotes (each
run of whole clauses), graded by the same rule. They need no more sampling, and
they reach questions whose samples all drew the same grade.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from webqa.comparisons import append_comparison
from webqa.loading import load_reward, load_sampler, make_backend
from webqa.policy.extractor import clause_runs, run_answer
from webqa.policy.prompts import POLICY_BROWSER
from webqa.qa import load_questions, read_questions
from webqa.reward.pool import PoolCandidate, PoolConfig, PoolRecord, graded, read_pool, sample_pool
from webqa.types import ComparedAnswer, Comparison

RULE = "synthetic: correct+supported > correct > wrong"


def synthetic_comparisons(records: list[PoolRecord], seed: int = 0,
                          variants: int = 0) -> tuple[list[Comparison], dict]:
    """Every pair of distinct answered candidates of each question that has signal, and counts.

    `variants` > 0 adds, per question, up to that many decisive pairs of answer variants: the other
    answers the extractor could have drawn from the same quotes (`answer_variants`).
    """
    rng = random.Random(seed)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    comparisons: list[Comparison] = []
    stats = Counter(questions=len(records))

    def compare(record: PoolRecord, first: PoolCandidate, second: PoolCandidate, variant: bool) -> None:
        a, b = (first, second) if rng.random() < 0.5 else (second, first)  # either side may be the better one
        preference = 0.5 if a.grade == b.grade else float(a.grade > b.grade)
        stats["ties" if preference == 0.5 else "decisive pairs"] += 1
        comparisons.append(Comparison(
            question=record.question, a=ComparedAnswer(a.text, a.quotes), b=ComparedAnswer(b.text, b.quotes),
            preference=preference, producer="synthetic", labeller=RULE, created=created,
            metadata={"grades": [a.grade, b.grade], "question_id": record.id or "", "policy": record.policy or "",
                      "variant": variant}))

    for record in records:
        if record.answers is None:
            stats["no gold answers"] += 1
            continue
        candidates = distinct_answers(record.candidates)
        grades = {c.grade for c in candidates}
        if len(candidates) < 2:
            stats["fewer than 2 distinct answers"] += 1
        elif len(grades) == 1:
            stats["no signal (all equal)"] += 1
        else:
            stats["with signal"] += 1
            for i in range(len(candidates)):
                for j in range(i + 1, len(candidates)):
                    compare(record, candidates[i], candidates[j], variant=False)
        if variants > 0:
            pool = answer_variants(record.candidates, record.answers)
            decisive = [(x, y) for i, x in enumerate(pool) for y in pool[i + 1:] if x.grade != y.grade]
            chosen = rng.sample(decisive, min(variants, len(decisive)))
            stats["with variant signal"] += bool(chosen)
            stats["variant pairs"] += len(chosen)
            for x, y in chosen:
                compare(record, x, y, variant=True)
    stats["pairs"] = len(comparisons)
    return comparisons, dict(stats)


def distinct_answers(candidates: list[PoolCandidate]) -> list[PoolCandidate]:
    """The answered candidates, one per distinct (answer, quotes)."""
    distinct = {}
    for candidate in candidates:
        if candidate.answered:
            distinct.setdefault((candidate.text, tuple(q.text for q in candidate.quotes)), candidate)
    return list(distinct.values())


def answer_variants(candidates: list[PoolCandidate], answers: list[str]) -> list[PoolCandidate]:
    """Every answer the extractor could draw from the quotes of the answered candidates (each run of
    whole clauses of a quoted sentence, `webqa.policy.extractor`), graded; one per distinct answer.

    Sampled answers differ in their quotes and in the run drawn from them; these pairs teach the
    second on the same quotes, and reach questions whose few samples all drew the same grade."""
    variants = {}
    for candidate in distinct_answers(candidates):
        for run in clause_runs(candidate.quotes):
            text = run_answer(run)
            key = (text, tuple(q.text for q in candidate.quotes))
            if key not in variants:
                variants[key] = graded(PoolCandidate(text=text, quotes=candidate.quotes), answers)
    return list(variants.values())


def write_comparisons(path: str | Path, comparisons: list[Comparison]) -> None:
    """Replace `path` with these comparisons (written beside it, then renamed into place)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial{''.join(path.suffixes[-1:])}")
    partial.unlink(missing_ok=True)
    for comparison in comparisons:
        append_comparison(partial, comparison)
    if not comparisons:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"")
    os.replace(partial, path)


def select_questions(args: argparse.Namespace) -> list[dict]:
    """The questions file, or the split's questions in a seeded shuffle; the first `--limit`."""
    if args.questions:

        return read_questions(args.questions, args.limit)

    questions = load_questions(split=args.split)
    random.Random(args.seed).shuffle(questions)
    return questions[: args.limit] if args.limit else questions


def format_stats(stats: dict) -> str:
    order = ["questions", "no gold answers", "fewer than 2 distinct answers", "no signal (all equal)",
             "with signal", "with variant signal", "pairs", "variant pairs", "decisive pairs", "ties"]
    return "\n".join(f"  {key:<30}{stats.get(key, 0):>8}" for key in order)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="webqa sample", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--questions", metavar="FILE", help="JSONL with question and answers per line")
    source.add_argument("--split", default="train", help="or: the questions of this split (default train)")
    parser.add_argument("--limit", type=int, help="only the first K questions")
    parser.add_argument("--n", type=int, default=8, help="episodes per question")
    parser.add_argument("--out", required=True, metavar="FILE", help="the candidates file (resumes)")
    parser.add_argument("--comparisons", metavar="FILE", help="write synthetic comparisons from the pool here")
    parser.add_argument("--variants", type=int, default=0, metavar="K",
                        help="with --comparisons: add up to K decisive pairs of answer variants per question")
    parser.add_argument("--policy", help="a policy folder (default: the shipped one)")
    parser.add_argument("--reward", help="a reward model folder: score every candidate")
    parser.add_argument("--temperature", type=float, default=PoolConfig.temperature, help="of the model's "
                        "actions and clicks, and of the reader's choices unless --reading-temperature is given "
                        "(default %(default)s, the shipped pools')")
    parser.add_argument("--reading-temperature", type=float,
                        help="of the reader's choices alone: whether and what to quote, and the answer drawn")
    parser.add_argument("--max-actions", type=int, help="browser actions per episode (default: the policy's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)


    questions = select_questions(args)
    reward_model = None
    if args.reward:

        reward_model = load_reward(args.reward)

    overrides = {"max_actions": args.max_actions} if args.max_actions else {}
    browser = replace(POLICY_BROWSER, **overrides)
    config = PoolConfig(n=args.n, temperature=args.temperature, reading_temperature=args.reading_temperature,
                        seed=args.seed, browser=browser)
    stats = sample_pool(questions, args.out, config, lambda: load_sampler(args.policy), make_backend("local"),
                        reward_model=reward_model, policy_name=args.policy or "shipped", reward_name=args.reward)
    print(f"{stats['sampled']} questions sampled ({stats['already_done']} already in {args.out}), "
          f"{stats['answered']} of {stats['episodes']} episodes answered, {stats['seconds']:.0f} s")
    if args.comparisons:
        comparisons, counts = synthetic_comparisons(read_pool(args.out), seed=args.seed, variants=args.variants)
        write_comparisons(args.comparisons, comparisons)
        print(f"synthetic comparisons ({RULE}) -> {args.comparisons}\n{format_stats(counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
