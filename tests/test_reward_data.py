"""Reward-model data and arithmetic without a model: comparisons files, synthetic labels, the loss, best-of-k."""

import itertools
import json
import math
import random

import pytest
import torch

from webqa.comparisons import append_comparison, read_comparisons
from webqa.records import load_as_dataset
from webqa.reward.best_of import best_of_k, estimates, format_best_of, gain_recovered, greedy_first_best_of_k
from webqa.reward.model import choose
from webqa.policy.prompts import examples_from_demonstration
from webqa.reward.iterate import demonstration_of, is_clean, new_demonstrations
from webqa.reward.pool import PoolCandidate, PoolRecord, read_pool
from webqa.reward.synthetic import synthetic_comparisons, write_comparisons
from webqa.reward.train import (
    answer_length,
    pairwise_accuracy,
    preference_loss,
    scorer_accuracy,
    split_by_question,
    word_overlap,
)
from webqa.demos import append_demonstration
from webqa.records import append_record
from webqa.types import ComparedAnswer, Comparison, Demonstration, Episode, Quote, Step

VIENNA = Quote("Vienna", "https://en.wikipedia.org/wiki/Vienna", "Vienna lies on the Danube in eastern Austria.")
RHINE = Quote("Rhine", "https://en.wikipedia.org/wiki/Rhine", "The Rhine flows through Basel and Cologne.")


def comparison(preference=1.0, question="Which river flows through Vienna?", producer="human"):
    return Comparison(question=question, a=ComparedAnswer("The Danube [1].", [VIENNA]),
                      b=ComparedAnswer("The Rhine [1].", [RHINE]), preference=preference, producer=producer,
                      labeller="ann", created="2025-01-01T00:00:00+00:00", metadata={"note": "x"})


# --- the comparisons format ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["comparisons.jsonl", "comparisons.jsonl.gz"])
def test_comparisons_round_trip_through_the_file_and_datasets(tmp_path, name):
    path = tmp_path / name
    written = [comparison(1.0), comparison(0.0, "Who wrote Hamlet?"), comparison(0.5, "Is it a tie?", "synthetic")]
    for item in written:
        append_comparison(path, item)
    assert read_comparisons(path) == written
    dataset = load_as_dataset(path, cache_dir=str(tmp_path / "hf"))
    assert dataset.num_rows == 3 and dataset[2]["preference"] == 0.5
    assert [Comparison.from_dict(row) for row in dataset] == written
    assert dataset[0]["a"]["quotes"][0] == {"title": "Vienna", "url": VIENNA.url, "text": VIENNA.text, "context": "", "by": ""}


def test_a_preference_other_than_1_0_or_half_is_refused():
    with pytest.raises(ValueError, match="preference"):
        comparison(0.7)


def test_write_comparisons_replaces_the_file(tmp_path):
    path = tmp_path / "synthetic.jsonl"
    write_comparisons(path, [comparison(), comparison()])
    write_comparisons(path, [comparison(0.5)])
    assert read_comparisons(path) == [comparison(0.5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic.jsonl"]  # no partial file left


# --- pools and synthetic comparisons ---------------------------------------------------------------


def cand(text, quotes=(VIENNA,), correct=False, supported=False):
    return PoolCandidate(text=text, quotes=list(quotes), correct=correct, supported=supported)


def test_pool_records_round_trip(tmp_path):
    record = PoolRecord("Q?", [cand("A [1].", correct=True, supported=True), cand("", quotes=())],
                        id="q1", answers=["A"], policy="p")
    record.candidates[0].score = 1.5
    append_record(tmp_path / "pool.jsonl", record.to_dict())
    line = json.loads((tmp_path / "pool.jsonl").read_text())
    assert set(line) >= {"question", "candidates"} and set(line["candidates"][0]) >= {"text", "quotes", "score"}
    assert line["candidates"][0]["quotes"][0] == {"title": "Vienna", "url": VIENNA.url, "text": VIENNA.text, "context": "", "by": ""}
    assert read_pool(tmp_path / "pool.jsonl") == [record]


def test_grades_order_supported_over_correct_over_wrong():
    assert cand("x", correct=True, supported=True).grade == 2
    assert cand("x", correct=True, supported=False).grade == 1
    assert cand("x", correct=False, supported=True).grade == 0
    assert cand("", quotes=(), correct=True).grade == 0  # no answer is never correct


def test_synthetic_comparisons_follow_the_rule_and_skip_questions_without_signal():
    best, correct, wrong = cand("Danube [1].", correct=True, supported=True), cand("Danube.", correct=True), \
        cand("Rhine [1].")
    records = [
        PoolRecord("Q1", [best, correct, wrong, cand("Rhine [1].")], answers=["Danube"]),  # duplicate wrong
        PoolRecord("Q2", [cand("A [1]."), cand("B [1].")], answers=["C"]),  # all wrong: no signal
        PoolRecord("Q3", [cand("A [1].", correct=True), cand("", quotes=())], answers=["A"]),  # one answer
        PoolRecord("Q4", [cand("A [1]."), cand("B [1].")], answers=None),  # no gold
        PoolRecord("Q5", [cand("A [1].", correct=True), cand("A, yes [1].", correct=True), cand("B [1].")],
                   answers=["A"]),
    ]
    comparisons, stats = synthetic_comparisons(records, seed=1)
    assert stats["questions"] == 5 and stats["no signal (all equal)"] == 1
    assert stats["fewer than 2 distinct answers"] == 1 and stats["no gold answers"] == 1
    assert stats["with signal"] == 2 and stats["pairs"] == len(comparisons) == 3 + 3
    assert stats["ties"] == 1 and stats["decisive pairs"] == 5
    for c in comparisons:
        assert c.producer == "synthetic"
        ga, gb = c.metadata["grades"]
        assert c.preference == (0.5 if ga == gb else float(ga > gb))
    assert {c.preference for c in comparisons} == {0.0, 0.5, 1.0}  # sides are shuffled


def test_answer_variants_add_decisive_pairs_from_the_same_quotes():
    quote = Quote("Vienna", VIENNA.url, "Vienna is the capital of Austria, and it lies on the Danube.")
    # Both samples answered with the first clause (wrong): no signal among the samples themselves.
    samples = [cand("Vienna is the capital of Austria [1].", quotes=(quote,)),
               cand("Vienna is the capital of Austria [1].", quotes=(quote,)), cand("", quotes=())]
    record = PoolRecord("Which river flows through Vienna?", samples, answers=["Danube"])
    plain, stats = synthetic_comparisons([record], seed=0)
    assert plain == [] and stats["fewer than 2 distinct answers"] == 1

    comparisons, stats = synthetic_comparisons([record], seed=0, variants=5)
    assert stats["with variant signal"] == 1 and stats["variant pairs"] == len(comparisons) >= 2
    for c in comparisons:
        assert c.metadata["variant"] and c.a.quotes == c.b.quotes == [quote]
        winner = c.a if c.preference == 1.0 else c.b
        assert c.preference in (0.0, 1.0) and "Danube" in winner.text and winner.text.endswith("[1].")
        assert "Danube" not in (c.b if winner is c.a else c.a).text
    capped, _ = synthetic_comparisons([record], seed=0, variants=1)
    assert len(capped) == 1


# --- the loss and accuracies ------------------------------------------------------------------------------


def test_loss_on_hand_computed_logits_with_a_tie():
    a, b = torch.tensor([3.0, 1.0, 2.0, 0.5]), torch.tensor([1.0, 3.0, 0.0, 0.5])  # d = 2, -2, 2, 0
    p = torch.tensor([1.0, 1.0, 0.5, 0.5])
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
    expected = [softplus(-2), softplus(2), 0.5 * softplus(-2) + 0.5 * softplus(2), math.log(2)]
    assert expected == pytest.approx([0.126928, 2.126928, 1.126928, 0.693147], abs=1e-6)
    for i in range(4):
        assert preference_loss(a[i : i + 1], b[i : i + 1], p[i : i + 1]).item() == pytest.approx(expected[i], abs=1e-6)
    assert preference_loss(a, b, p).item() == pytest.approx(sum(expected) / 4, abs=1e-6)
    # A tie is symmetric and smallest at equal scores; preference 0 mirrors preference 1.
    d = torch.linspace(-3, 3, 13)
    tie = [preference_loss(x[None], torch.zeros(1), torch.tensor([0.5])).item() for x in d]
    assert min(tie) == pytest.approx(math.log(2)) and tie == pytest.approx(tie[::-1])
    assert preference_loss(b, a, 1 - p).item() == pytest.approx(preference_loss(a, b, p).item())


def test_pairwise_accuracy_skips_ties_and_halves_equal_scores():
    assert pairwise_accuracy([2, 0, 1, 5], [1, 1, 1, 0], [1.0, 0.0, 1.0, 0.5]) == pytest.approx((1 + 1 + 0.5) / 3)
    assert pairwise_accuracy([1], [2], [1.0]) == 0.0
    assert pairwise_accuracy([1], [2], [0.5]) is None


def test_trivial_scorers():
    assert answer_length("q", [VIENNA], "The Danube [1] river.") == 3
    assert word_overlap("q", [VIENNA], "The Danube, Austria! Paris [1]") == pytest.approx(2 / 3)  # "the" is dropped
    held = [comparison(1.0), comparison(0.0)]
    assert scorer_accuracy(word_overlap, held) == 0.5  # the Danube answer overlaps its quote either way


def test_split_by_question_keeps_each_question_on_one_side():
    items = [comparison(question=f"Q{i % 10}") for i in range(40)]
    train, held = split_by_question(items, 0.2, seed=0)
    assert len({c.question for c in held}) == 2 and len(train) + len(held) == 40
    assert not {c.question for c in train} & {c.question for c in held}


# --- best-of-k --------------------------------------------------------------------------------------------


def brute_force(scores, values, k):
    """Mean value of `choose`'s pick over every k-subset (the first of the subset when none is scored)."""
    total, count = 0.0, 0
    for subset in itertools.combinations(range(len(values)), k):
        sub_scores = [scores[i] for i in subset]
        pick = choose(sub_scores)
        total += values[subset[0 if pick is None else pick]]
        count += 1
    return total / count


def test_choose_is_the_first_argmax_and_none_when_unscored():
    assert choose([0.1, 0.7, None, 0.7]) == 1
    assert choose([None, None]) is None
    assert choose([-5.0]) == 0


def test_estimator_matches_brute_force_enumeration():
    rng = random.Random(0)
    for trial in range(60):
        n = rng.randint(1, 7)
        # Few distinct scores, so that ties (and unscored answers) are common.
        scores = [None if rng.random() < 0.2 else float(rng.randint(0, 3)) for _ in range(n)]
        values = [float(rng.random() < 0.4) if trial % 2 else rng.random() for _ in range(n)]
        for k in range(1, n + 1):
            assert best_of_k(scores, values, k) == pytest.approx(brute_force(scores, values, k), abs=1e-12)
    with pytest.raises(ValueError):
        best_of_k([1.0, 2.0], [0.0, 1.0], 3)


def test_estimates_oracle_random_and_the_gain_recovered():
    pools = [([0.9, 0.1, 0.5, 0.2], [1.0, 0.0, 0.0, 0.0]),  # the reward model ranks the correct one first
             ([0.1, 0.9, 0.5, 0.2], [1.0, 0.0, 0.0, 0.0])]  # ... and last
    table = estimates(pools, ks=(1, 2, 4))
    assert table["random"] == {1: 0.25, 2: 0.25, 4: 0.25}
    assert table["oracle"] == {1: 0.25, 2: pytest.approx(0.5), 4: 1.0}
    assert table["reward model"][4] == pytest.approx(0.5) and table["reward model"][1] == pytest.approx(0.25)
    assert gain_recovered(table) == pytest.approx((0.5 - 0.25) / (1.0 - 0.25))
    assert gain_recovered(estimates([([1.0, 0.0], [0.0, 0.0])], ks=(1, 2))) is None  # k=4 not measured
    assert estimates(pools, ks=(1,), reward=False)["reward model"] == {}
    text = format_best_of({"pool": 4, "questions": 2, "ks": [1, 2, 4], "oracle_gain_recovered_at_4": 1 / 3,
                           "accuracy": {s: {str(k): v for k, v in row.items()} for s, row in table.items()}})
    assert "reward model" in text and "0.33 of the oracle's gain" in text and text.count("\n") == 5


# --- expert iteration's filters ----------------------------------------------------------------------------


def episode(actions, end="Answer", answer="The Danube [1].", quotes=(VIENNA,), question="Q?"):
    return Episode(question=question, steps=[Step("obs", a) for a in actions], quotes=list(quotes), end=end,
                   answer=answer)


def test_only_clean_answered_episodes_are_imitated():
    good = ["Search Vienna", "Clicked on link 0", "Quote: Vienna", "End: Answer"]
    assert is_clean(episode(good))
    assert not is_clean(episode(good[:2] + ["clicks on it!"] + good[2:]))
    assert not is_clean(episode(good[:3], end="out of actions"))
    assert not is_clean(episode(good, quotes=()))


def test_new_demonstrations_are_one_per_question(tmp_path):
    path = tmp_path / "demos.jsonl.gz"
    for question, answer in (("Q1", "a"), ("Q2", "b"), ("Q1", "again")):
        demo = Demonstration.from_dict(episode(["End: Answer"], answer=answer, question=question).to_dict()
                                       | {"producer": "policy"})
        demo.settings = {"question_id": question}
        append_demonstration(path, demo)
    demos = new_demonstrations(path)
    assert [(d.question, d.answer) for d in demos] == [("Q1", "a"), ("Q2", "b")]


def test_a_picked_episode_becomes_a_policy_demonstration_that_teaches_every_step_and_the_answer():
    picked = episode(["Search Vienna", "Clicked on link 0", "Quote: Vienna", "End: Answer"])
    demo = demonstration_of(picked, {"id": "q7", "answers": ["Danube"]}, "runs/bc")
    assert (demo.producer, demo.model, demo.gold_answers) == ("policy", "runs/bc", ["Danube"])
    assert demo.settings["question_id"] == "q7" and demo.actions == picked.actions
    pairs = examples_from_demonstration(Demonstration.from_dict(demo.to_dict()))
    assert len(pairs) == 5 and pairs[-1][1] == "The Danube [1]."


def test_greedy_first_estimator_matches_brute_force_enumeration():
    rng = random.Random(1)
    for trial in range(60):
        n = rng.randint(1, 6)
        scores = [None if rng.random() < 0.2 else float(rng.randint(0, 3)) for _ in range(n)]
        values = [float(rng.random() < 0.4) for _ in range(n)]
        greedy_score = None if trial % 5 == 0 else float(rng.randint(0, 3))
        greedy_value = float(trial % 3 == 0)
        for k in range(1, n + 2):
            picks = []
            for subset in itertools.combinations(range(n), k - 1):
                pick = choose([greedy_score] + [scores[i] for i in subset])
                picks.append(greedy_value if pick in (None, 0) else values[subset[pick - 1]])
            expected = sum(picks) / len(picks)
            assert greedy_first_best_of_k(greedy_score, greedy_value, scores, values, k) == pytest.approx(expected)
    with pytest.raises(ValueError):
        greedy_first_best_of_k(1.0, 1.0, [1.0, 2.0], [0.0, 1.0], 4)
