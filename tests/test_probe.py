"""The reading probe, run with a tiny random model on real train questions and the real encyclopedia."""

import json

import pytest

from tests.tiny import tiny_policy_folder
from webqa.demos import mixed_questions
from webqa.env import Browser
from webqa.policy.model import load_model
from webqa.policy.prompts import POLICY_BROWSER
from webqa.policy.sampler import Sampler
from webqa.probe import CHOOSERS, MAX_ACTIONS, format_summary, probe
from webqa.scoring import is_supported
from webqa.text import sentences_in_view


@pytest.fixture(scope="module")
def sampler(corpus, tmp_path_factory):
    texts = [corpus.plain_text(t) for t in ["Danube", "Vienna", "Super Bowl 50"]]
    return Sampler(*load_model(str(tiny_policy_folder(tmp_path_factory.mktemp("tiny-probe"), texts)), device="cpu"))


def test_sentences_in_view_are_whole_sentences_on_the_screen(corpus):
    browser = Browser(corpus, POLICY_BROWSER)
    browser.reset("Which river flows through Vienna?")
    browser.step("Search Danube")
    browser.step("Clicked on link 0")
    browser.step("Scrolled down 1")
    window = " ".join(browser.page.plain_lines[browser.cursor : browser.cursor + browser.settings.window_lines])
    sentences = sentences_in_view(browser)
    assert len(sentences) >= 3
    assert all(sentence in window and sentence[0].isupper() for sentence in sentences)


def test_the_probe_puts_an_answer_in_view_and_asks_every_chooser(sampler, corpus, tmp_path):
    questions = mixed_questions("train", seed=0)["squad"][:40]
    summary = probe(sampler, corpus, POLICY_BROWSER, questions, tmp_path / "probe.json")
    states = json.loads((tmp_path / "probe.json").read_text())["states"]
    assert summary["questions"] == 40 and summary["states"] == len(states) >= 3
    gold = {q["question"]: q["answers"] for q in questions}
    for state in states:
        sentences, holds = state["sentences"], state["holds_answer"]
        assert any(holds) and holds == [is_supported([s], gold[state["question"]]) for s in sentences]
        assert 0 <= state["likelihood_pick"] < len(sentences) and 0 <= state["overlap_pick"] < len(sentences)
        assert 1 <= len(state["policy_actions"]) <= MAX_ACTIONS
        assert state["policy_hit"] == (state["policy_quote"] is not None
                                       and is_supported([state["policy_quote"]], gold[state["question"]]))
    assert summary["chance"] == pytest.approx(sum(sum(s["holds_answer"]) / len(s["sentences"]) for s in states)
                                              / len(states))
    table = format_summary(summary)
    assert all(f"{name} picks an answer sentence" in table for name in CHOOSERS)
