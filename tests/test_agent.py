"""`webqa.answer()` and `webqa ask` with the shipped behavior-cloned policy (slow: loads the real model)."""

import json

import pytest

import webqa
from webqa.agent import DEFAULT_N
from webqa.cli import main
from webqa.env.commands import parse
from webqa.types import Answer


@pytest.mark.slow
def test_answer_with_the_shipped_policy(corpus):
    result = webqa.answer("Which river flows through Vienna?", n=4)  # best-of-4 with the shipped reward model
    assert isinstance(result, Answer) and result.seconds > 0
    assert len(result.candidates) == 4
    scored = [c for c in result.candidates if c.score is not None]
    assert scored and all(c.found for c in scored)
    assert result.trajectory is max(scored, key=lambda c: c.score).episode
    greedy = webqa.answer("Which river flows through Vienna?")  # the default: one greedy episode
    assert DEFAULT_N == 1 and len(greedy.candidates) == 1 and greedy.trajectory is greedy.candidates[0].episode
    # The floor: the question searched as asked, its top result's passage read by the answerer, which
    # writes a short cited answer.
    assert greedy.trajectory.steps[0].by == "rule:floor" and greedy.trajectory.quotes[0].by == "floor"
    assert greedy.found and greedy.trajectory.answered_by == "model" and len(greedy.text.split()) <= 20
    assert greedy.trajectory.actions == result.candidates[0].episode.actions  # best-of-n's first episode is greedy
    actions = result.trajectory.actions
    assert 1 <= len(actions) <= 16
    assert parse(actions[0]).kind == "search"  # the trained policy starts by searching
    if result.found:
        assert [r.quote for r in result.references] == [q.text for q in result.trajectory.quotes]
    else:
        assert result.text.startswith("No answer found") and result.references == []


@pytest.mark.slow
def test_ask_json_has_the_answer_fields(corpus, capsys):
    assert main(["ask", "--json", "Who painted the Mona Lisa?"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"question", "text", "references", "trajectory", "candidates", "seconds", "found"} <= set(data)
    assert data["question"] == "Who painted the Mona Lisa?"
    steps = data["trajectory"]["steps"]
    assert all(set(step) == {"action", "error", "by", "proposed"} for step in steps)  # no observations
    assert {step["by"] for step in steps} <= {"model", "reader", "rule:specific-find", "rule:last-look",
                                              "rule:shared-search", "rule:floor"} and steps[0]["by"] == "rule:floor"


@pytest.mark.slow
def test_the_shipped_reward_model_prefers_the_answer_its_quote_supports():
    from webqa.loading import load_reward
    from webqa.types import Quote

    model = load_reward()
    assert model is not None and model.reading is not None  # shipped, with its reading term
    question = "Which river flows through Vienna?"
    vienna = Quote("Vienna", "https://en.wikipedia.org/wiki/Vienna",
                   "Vienna is the capital of Austria. The Danube flows through Vienna.")
    basel = Quote("Basel", "https://en.wikipedia.org/wiki/Basel", "Basel is a city in Switzerland.")
    right, wrong, off = model.score([(question, [vienna], "The Danube flows through Vienna [1]."),
                                     (question, [vienna], "Vienna is the capital of Austria [1]."),
                                     (question, [basel], "Basel is a city in Switzerland [1].")])
    assert right > wrong and right > off
