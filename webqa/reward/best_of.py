"""Best-of-n: measuring what choosing the reward model's highest-scored answer is worth.

The choice itself (`score_candidates`, `choose`) lives with the reward model in `webqa.reward.model`.

    best_of_k(scores, correct, k)                          # unbiased best-of-k from a pool of N >= k

    webqa eval --questions dev200.jsonl --out report.json --pool 8 [--reward DIR] [--systems none]

WebGPT's estimator (Nakano et al. 2021, Appendix I): sample a pool of N answers
per question once; the expected value of best-of-k (pick the highest-scored of k
answers drawn without replacement) is an average over all C(N, k) subsets, which
sorting makes exact and cheap: the answer ranked i-th lowest (0-based) is the pick
of exactly C(i, k-1) of the subsets. Three selectors are compared: the reward
model, the oracle (picks a correct answer whenever the k contain one) and random
(the pool's mean, whatever k). The share of the oracle's gain the reward model
recovers is (RM - random) / (oracle - random) at k=4.

`webqa eval --pool N` samples the pool into `<report>.pool.jsonl` (a candidates
file, resumable), caches the reward model's scores in `<report>.scores.jsonl`
(keyed by the reward model's folder and head, so a retrained model re-scores the
same pool), prints the table, writes the curve to `<report>.best-of-k.png` and
adds a `best_of_k` section to the report. Beside the three selectors, the table
has the scorers the reward model must beat as selectors too (answer length, word
overlap, and the policy's quote reader alone, which is where the reward model's
reading term starts), and each one's pairwise accuracy on the pool's decisive
pairs (distinct answers of one question with different grades).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
from collections.abc import Callable
from itertools import combinations
from math import comb
from pathlib import Path

from tqdm import tqdm

from webqa.env.browser import Browser, replay
from webqa.env.local import DEFAULT_RANKING, LocalCorpus, recorded_ranking
from webqa.evaluate import log_path, read_log
from webqa.loading import SHIPPED_POLICY, SHIPPED_REWARD, load_reward, load_sampler
from webqa.plots import curve, png
from webqa.policy.prompts import POLICY_BROWSER
from webqa.policy.reader import load_reader
from webqa.qa import read_questions
from webqa.records import append_record, read_records
from webqa.reward.model import ReadingHead, choose
from webqa.reward.pool import PoolCandidate, PoolConfig, PoolRecord, graded, read_pool, sample_pool, score_pool
from webqa.reward.synthetic import distinct_answers
from webqa.reward.train import TRIVIAL_SCORERS, pairwise_accuracy, reading_scorer
from webqa.types import Episode, Step

SELECTORS = ("reward model", "oracle", "random")
GREEDY_FIRST = "RM, greedy first"  # the greedy answer and k-1 from the pool, as `webqa.answer` chooses
READER = "policy's reader"  # the baseline scorer the reward model starts from
READER_GREEDY_FIRST = "reader, greedy first"
KS = (1, 2, 4, 8)
GAIN_AT = 4


# --- the estimator ---------------------------------------------------------------------------


def best_of_k(scores: list[float | None], values: list[float], k: int) -> float:
    """Mean value of `choose`'s pick over every k-subset of the pool (unscored = lowest)."""
    n = len(values)
    if not 1 <= k <= n:
        raise ValueError(f"best-of-{k} needs a pool of at least {k}, not {n}")
    # Ascending by score; among equal scores the earlier index ranks higher, as in `choose`.
    order = sorted(range(n), key=lambda i: (float("-inf") if scores[i] is None else scores[i], -i))
    return sum(comb(rank, k - 1) * values[i] for rank, i in enumerate(order)) / comb(n, k)


def greedy_first_best_of_k(greedy_score: float | None, greedy_value: float, scores: list[float | None],
                           values: list[float], k: int) -> float:
    """Best-of-k as `webqa.answer` runs it: the greedy answer and k-1 drawn from the pool, the pick
    `choose`'s with the greedy answer first (it wins ties). Exact over every (k-1)-subset: the pool's
    answer ranked i-th lowest is the subset's best in C(i, k-2) of them, and the pick where it beats
    the greedy answer's score."""
    if k == 1:
        return greedy_value
    n = len(values)
    if not 2 <= k <= n + 1:
        raise ValueError(f"greedy-first best-of-{k} needs a pool of at least {k - 1}, not {n}")
    low = float("-inf")
    order = sorted(range(n), key=lambda i: (low if scores[i] is None else scores[i], -i))
    greedy = low if greedy_score is None else greedy_score
    total = 0.0
    for rank, i in enumerate(order):
        wins = scores[i] is not None and scores[i] > greedy
        total += comb(rank, k - 2) * (values[i] if wins else greedy_value)
    return total / comb(n, k - 1)


def estimates(pools: list[tuple[list[float | None], list[float]]], ks=KS,
              reward: bool = True) -> dict[str, dict[int, float]]:
    """Mean best-of-k value per selector over questions, each a (reward scores, values) pool.

    `reward=False`: no reward model scored the pools; its row stays empty.
    """
    out: dict[str, dict[int, float]] = {s: {} for s in SELECTORS}
    for k in ks:
        usable = [(s, v) for s, v in pools if len(v) >= k]
        if not usable:
            continue
        out["oracle"][k] = statistics.mean(best_of_k(v, v, k) for _, v in usable)
        out["random"][k] = statistics.mean(statistics.mean(v) for _, v in usable)
        if reward:
            out["reward model"][k] = statistics.mean(best_of_k(s, v, k) for s, v in usable)
    return out


def gain_recovered(table: dict[str, dict[int, float]], k: int = GAIN_AT) -> float | None:
    """(RM - random) / (oracle - random) at k; None when unknown or when the oracle gains nothing."""
    try:
        rm, oracle, rand = table["reward model"][k], table["oracle"][k], table["random"][k]
    except KeyError:
        return None
    return None if oracle - rand <= 0 else (rm - rand) / (oracle - rand)


# --- `webqa eval --pool N` ----------------------------------------------------------------------


def reward_id(folder: str | Path) -> str:
    """A reward model's identity for the score cache: its folder and a hash of its head."""
    folder = Path(folder).resolve()
    digest = hashlib.sha1((folder / "head.safetensors").read_bytes()).hexdigest()[:12]
    return f"{folder}#{digest}"


def cached_scores(path: Path, records: list[PoolRecord], reward: str | None) -> dict[str, list[float | None]]:
    """The reward model's scores of every pool, from the cache or computed (one forward pass per question)."""
    if reward is None:
        return {}
    key = reward_id(reward)
    have = {}
    if path.exists():
        for row in read_records(path, dict, "scores record"):
            if row["reward_model"] == key:
                have[row["question"]] = row["scores"]
    missing = [r for r in records if r.question not in have]
    if missing:


        model = load_reward(reward)
        for record in tqdm(missing, desc="reward model scores", unit="q"):
            have[record.question] = score_pool(model, record.question, record.candidates)
            append_record(path, {"reward_model": key, "question": record.question, "scores": have[record.question]})
    return have


def evaluate_pool(questions_path: str | Path, out: str | Path, pool: int = 8, ks=KS, limit: int | None = None,
                  policy: str | None = None, reward: str | None = None, seed: int = 0,
                  ranking: str = DEFAULT_RANKING) -> dict:
    """Sample (or resume) the pool on the encyclopedia ranked as `ranking` says, score it, and return (and add
    to the report at `out`) best-of-k. A pool file holds one ranking: resume it with the same."""

    out = Path(out)
    questions = read_questions(questions_path, limit)
    pool_path, scores_path = out.with_suffix(".pool.jsonl"), out.with_suffix(".scores.jsonl")
    sample_pool(questions, pool_path, PoolConfig(n=pool, seed=seed), lambda: load_sampler(policy),
                LocalCorpus(ranking=ranking), policy_name=policy or "shipped")
    wanted = {q["question"] for q in questions}
    records = [r for r in read_pool(pool_path) if r.question in wanted]
    sizes = {len(r.candidates) for r in records}
    if sizes != {pool}:
        raise ValueError(f"{pool_path} holds pools of {sorted(sizes)} answers, not {pool}: use another --out")
    if reward is None and (SHIPPED_REWARD / "head.safetensors").exists():
        reward = str(SHIPPED_REWARD)
    if reward is None:
        print("no reward model (none shipped, none given with --reward): no reward model row", file=sys.stderr)
    scores = cached_scores(scores_path, records, reward)
    values = {r.question: [float(c.grade > 0) for c in r.candidates] for r in records}
    pools = [(scores.get(r.question, [None] * pool), values[r.question]) for r in records]
    ks = [k for k in ks if k <= pool]
    table = estimates(pools, ks, reward=reward is not None)
    greedy = greedy_candidates(out, records)

    def greedy_first_row(greedy_scores: dict[str, float | None], pool_scores: dict[str, list[float | None]]):
        """Best-of-k as `webqa.answer` runs it, with these scores choosing."""
        rows = [(greedy_scores[r.question], float(greedy[r.question].grade > 0), pool_scores[r.question],
                 values[r.question]) for r in records]
        return {k: statistics.mean(greedy_first_best_of_k(*row, k) for row in rows) for k in ks}

    if greedy and reward is not None:
        greedy_records = [PoolRecord(q, [c]) for q, c in greedy.items()]
        greedy_scores = cached_scores(out.with_suffix(".greedy-scores.jsonl"), greedy_records, reward)
        table[GREEDY_FIRST] = greedy_first_row({q: s[0] for q, s in greedy_scores.items()}, scores)
    pairwise = {"reward model": pool_pairwise_accuracy(records, scores) if reward is not None else None}
    for name, scorer in baseline_scorers(policy).items():
        by_question = {r.question: [scorer(r.question, c.quotes, c.text) if c.answered else None
                                    for c in r.candidates] for r in records}
        table[name] = {k: statistics.mean(best_of_k(by_question[q], v, k) for q, v in values.items()) for k in ks}
        pairwise[name] = pool_pairwise_accuracy(records, by_question)
        if greedy and name == READER:  # what the reward model, started from the reader, should beat
            table[READER_GREEDY_FIRST] = greedy_first_row(
                {q: scorer(q, c.quotes, c.text) if c.answered else None for q, c in greedy.items()}, by_question)
    png = out.with_suffix(".best-of-k.png")
    plot_best_of(table, png, f"best-of-k from pools of {pool}, {len(records)} questions")
    report = {"pool": pool, "questions": len(records), "ks": ks, "reward_model": reward, "policy": policy,
              "accuracy": {s: {str(k): v for k, v in row.items()} for s, row in table.items()},
              f"oracle_gain_recovered_at_{GAIN_AT}": gain_recovered(table), "pairwise_accuracy": pairwise,
              "pool_file": str(pool_path), "png": str(png)}
    full = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(full | {"best_of_k": report}, indent=1), encoding="utf-8")
    return report


def greedy_candidates(out: Path, records: list[PoolRecord]) -> dict[str, PoolCandidate]:
    """The greedy answer to every pool's question, from the report's `policy` run with n=1 (`webqa eval
    --pool N` without `--systems none`), graded; {} when the run is missing or incomplete. The log keeps
    only quote texts: replaying the logged actions gives back the quotes' titles and URLs."""

    report = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    if report.get("n") != 1:
        return {}
    rows = {question: row for (system, question), row in read_log(log_path(out)).items() if system == "policy"}
    if any(r.question not in rows for r in records):
        return {}
    corpora = {}
    greedy = {}
    for record in records:
        row = rows[record.question]
        ranking = recorded_ranking(row)  # as the eval ran it
        if ranking not in corpora:
            corpora[ranking] = LocalCorpus(ranking=ranking)
        browser = Browser(corpora[ranking], POLICY_BROWSER)
        episode = replay(Episode(record.question, [Step("", a) for a in row["trajectory"]]), browser)
        if [q.text for q in episode.quotes] != row["quotes"]:
            print(f"the greedy episode of {record.question!r} does not replay: no greedy-first row", file=sys.stderr)
            return {}
        candidate = PoolCandidate(row["answer"], list(episode.quotes), end=episode.end, actions=episode.actions)
        greedy[record.question] = graded(candidate, record.answers or [])
    return greedy


def baseline_scorers(policy: str | None) -> dict[str, Callable]:
    """The scorers the reward model is measured against: the trivial ones, and the policy's reader alone."""

    scorers = dict(TRIVIAL_SCORERS)
    reader = load_reader(policy or SHIPPED_POLICY)
    if reader is not None:
        scorers[READER] = reading_scorer(ReadingHead.from_reader(reader))
    return scorers


def pool_pairwise_accuracy(records: list[PoolRecord], scores: dict[str, list[float | None]]) -> float | None:
    """Pairwise accuracy of scores on the pools' decisive pairs: distinct answered candidates of one
    question with different grades, the better of which should score higher."""

    better, worse = [], []
    for record in records:
        if record.question not in scores:
            continue
        index = {id(c): i for i, c in enumerate(record.candidates)}
        for x, y in combinations(distinct_answers(record.candidates), 2):
            if x.grade != y.grade:
                high, low = (x, y) if x.grade > y.grade else (y, x)
                better.append(scores[record.question][index[id(high)]])
                worse.append(scores[record.question][index[id(low)]])
    return pairwise_accuracy(better, worse, [1.0] * len(better))


def format_best_of(report: dict) -> str:
    """The best-of-k accuracy table (selectors, then baseline scorers), the share of the oracle's gain
    recovered, and pairwise accuracies."""
    accuracy = report["accuracy"]
    fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    lines = [f"best-of-k accuracy (pools of {report['pool']}, {report['questions']} questions)",
             f"{'k':<4}" + "".join(f"{s:>{max(17, len(s) + 2)}}" for s in accuracy)]
    for k in report["ks"]:
        lines.append(f"{k:<4}" + "".join(f"{fmt(row.get(str(k))):>{max(17, len(s) + 2)}}"
                                         for s, row in accuracy.items()))
    gain = report[f"oracle_gain_recovered_at_{GAIN_AT}"]
    lines.append(f"reward model recovers {'-' if gain is None else f'{gain:.2f}'} of the oracle's gain at "
                 f"k={GAIN_AT}: (RM - random) / (oracle - random)")
    if report.get("pairwise_accuracy"):
        lines.append("pairwise accuracy on the pool's decisive pairs: "
                     + ", ".join(f"{name} {fmt(value)}" for name, value in report["pairwise_accuracy"].items()))
    return "\n".join(lines)


def plot_best_of(table: dict[str, dict[int, float]], path: Path, title: str) -> None:
    """Accuracy against k (log scale) for each selector, as a PNG."""
    with png(path, size=(8, 4)) as (ax,):
        if ax is None:
            return
        for selector, row in table.items():
            curve(ax, list(row.items()), selector)
        ks = sorted({k for row in table.values() for k in row})
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set(xlabel="k (answers sampled)", ylabel="accuracy", title=title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))  # beside the curves, not over them
