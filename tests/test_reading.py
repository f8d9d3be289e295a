"""The answer step: passages around quotes, the floor, the reading prompt, the examples that train it."""

import json
import random

import pytest

from webqa.env import Browser, BrowserSettings, LocalCorpus
from webqa.env.answering import CITATION, READ_WORDS, passage_around
from webqa.policy.reading import MAX_PASSAGES, floor_quote, reading_prompt, reading_quotes, reading_text
from webqa.policy.reading_data import build_example, quotes_of
from webqa.policy.config import SamplingConfig
from webqa.policy.rollout import run_episodes
from webqa.policy.sampler import Sampler
from webqa.scoring import normalize
from webqa.types import Quote, SearchResult

QUESTION = "Which river flows through Vienna?"


@pytest.fixture(scope="module")
def passages_corpus(corpus):
    return LocalCorpus(corpus.corpus_path, corpus.index_path, ranking="passages")


def test_passage_around_centres_the_quote_within_the_budget():
    text = " ".join(f"w{i}" for i in range(400))
    assert passage_around(text, "w200 w201", 10) == " ".join(f"w{i}" for i in range(196, 206))
    assert passage_around(text, "w1 w2", 10) == " ".join(f"w{i}" for i in range(10))  # no room before: after
    assert passage_around(text, "w398 w399", 10) == " ".join(f"w{i}" for i in range(390, 400))
    long_quote = " ".join(f"w{i}" for i in range(100, 130))
    assert passage_around(text, long_quote, 10) == long_quote  # the quote stays whole
    assert passage_around("a b c", "not there") == "not there"


def test_a_quote_keeps_the_passage_of_its_page_around_it(corpus):
    browser = Browser(corpus, BrowserSettings(window_lines=12))
    browser.reset(QUESTION)
    browser.step("Search Danube")
    browser.step("Clicked on link 0")
    sentence = next(s for s in browser.page.plain_lines if len(s.split()) > 6).split(".")[0]
    assert browser.step(f"Quote: {sentence}").error is None
    quote = browser.quotes[-1]
    assert quote.text in quote.context and quote.by == ""
    assert len(quote.context.split()) <= max(READ_WORDS, len(quote.text.split())) + 1
    assert len(quote.context.split()) > len(quote.text.split())


def test_the_floor_is_the_top_results_passage_and_comes_first():
    results = [SearchResult("Danube", "https://en.wikipedia.org/wiki/Danube", "snip", " ".join(["word"] * 300)),
               SearchResult("Vienna", "https://en.wikipedia.org/wiki/Vienna", "snip", "Vienna text")]
    floor = floor_quote(results)
    assert floor.by == "floor" and floor.title == "Danube" and len(floor.text.split()) == READ_WORDS
    assert floor_quote([]) is None
    agent = [Quote("Danube", floor.url, "word word"),  # inside the floor: not read twice
             *[Quote(f"Page {i}", f"https://x.org/{i}", f"quote {i}") for i in range(5)]]
    read = reading_quotes(floor, agent)
    assert read[0] is floor and len(read) == MAX_PASSAGES and [q.title for q in read[1:]] == ["Page 0", "Page 1", "Page 2"]
    assert reading_quotes(None, agent[1:3]) == agent[1:3]


def test_the_reading_prompt_numbers_passages_with_their_context_and_budget(tiny_policy):
    _, tokenizer = tiny_policy
    quotes = [Quote("Danube", "u1", "short quote", context="before short quote after"),
              Quote("Vienna", "u2", " ".join(["long"] * 400))]  # no context: the quote, cut to the budget
    prompt = reading_prompt(tokenizer, QUESTION, quotes)
    assert "[1] Danube: before short quote after" in prompt and "[2] Vienna: long" in prompt
    assert prompt.count("long") == READ_WORDS and prompt.rstrip().endswith("♦Answer")
    assert reading_text(QUESTION, [("T", "p")]).endswith(f"Question: {QUESTION}")
    with pytest.raises(ValueError):
        reading_prompt(tokenizer, QUESTION, [])


def test_every_episode_searches_the_question_and_its_answer_reads_the_floor_first(tiny_policy, corpus):
    sampler = Sampler(*tiny_policy)
    browsers = [Browser(corpus, BrowserSettings(window_lines=8, max_actions=3)) for _ in range(2)]
    episodes = run_episodes(sampler, browsers, QUESTION,
                            SamplingConfig(temperature=1.0, max_action_tokens=8, seed=0, floor=True, answers="read"),
                            answerer=sampler)
    top = corpus.search(QUESTION, k=1)[0]
    for episode in episodes:
        assert episode.actions[0] == f"Search {QUESTION}" and episode.steps[0].by == "rule:floor"
        assert all(step.by in ("model", "reader", "rule:specific-find", "rule:last-look", "rule:shared-search")
                   for step in episode.steps[1:])
        if episode.end in ("Answer", "out of actions"):
            assert episode.answered_by in ("model", "extractor")
            assert episode.quotes[0].by == "floor" and episode.quotes[0].url == top.url
            cited = [int(n) for n in CITATION.findall(episode.answer)]
            assert cited and all(1 <= n <= len(episode.quotes) for n in cited)  # the grammar keeps them valid
    assert any(e.end in ("Answer", "out of actions") for e in episodes)
    restored = type(episodes[0]).from_dict(json.loads(json.dumps(episodes[0].to_dict())))
    assert restored.quotes == episodes[0].quotes  # the floor's `by` and the contexts survive JSON
    assert restored.steps == episodes[0].steps and restored.answered_by == episodes[0].answered_by


def test_an_example_holds_the_gold_passage_distractors_and_a_cited_target(passages_corpus):
    record = {"question": QUESTION, "answers": ["Danube"], "dataset": "triviaqa"}
    example = build_example(passages_corpus, record, random.Random(0))
    assert example is not None and 2 <= len(example["passages"]) <= 4
    gold = example["gold"]
    assert example["target"] == f"Danube [{gold}]"
    texts = [normalize(text) for _, text in example["passages"]]
    assert "danube" in texts[gold - 1]
    assert all("danube" not in text for i, text in enumerate(texts) if i != gold - 1)  # distractors hold none
    top = passages_corpus.search(QUESTION, k=1)[0]
    assert example["passages"][0][0] == top.title  # [1] is always the floor's page
    assert [q.text for q in quotes_of(example)] == [text for _, text in example["passages"]]
    assert build_example(passages_corpus, {"question": QUESTION, "answers": ["zzqx unfindable"]},
                         random.Random(0)) is None
