"""The quote reader: replaying demonstrations, fitting, saving, and quoting in episodes."""

import json
import statistics
from dataclasses import replace

import pytest
import torch

from webqa.demos import EXPERT_FILE, read_demonstrations
from webqa.env import Browser, BrowserSettings
from webqa.policy.constraints import QUOTE
from webqa.policy.extractor import extract_answer
from webqa.policy.reader import (
    FEATURES,
    READER_FILE,
    QuoteReader,
    features,
    fit_reader,
    load_reader,
    reader_figures,
    reading_states,
    unquoted_in_view,
)
from webqa.policy.config import SamplingConfig
from webqa.policy.rollout import run_episodes
from webqa.policy.rules import quotable_sentences, reader_click, reader_quote
from webqa.policy.sampler import Sampler
from webqa.text import quote_action, sentences_in_view


@pytest.fixture(scope="module")
def demos():
    return read_demonstrations(EXPERT_FILE)[:240]


@pytest.fixture(scope="module")
def states(demos):
    """The shipped demonstrations replayed on the ranking they were recorded with (their clicks name results
    by number)."""
    from webqa.env import LocalCorpus
    from webqa.env.local import recorded_ranking

    assert {recorded_ranking(demo.settings) for demo in demos} == {"pages"}
    return list(reading_states(demos, LocalCorpus(ranking="pages")))


def test_replayed_states_hold_the_quoted_sentence_and_the_steps_around_it(demos, states):
    quotes = {demo.question: [q.text for q in demo.quotes] for demo in demos}
    chosen = [s for s in states if s.chosen is not None]
    assert chosen and len(chosen) < len(states)  # states that quote, and states that read on
    for state in chosen:
        sentence = state.sentences[state.chosen]
        assert any(text in sentence or sentence in text for text in quotes[state.question])
    assert all(len(row) == len(FEATURES) for s in states[:20] for row in features(s.question, s.title, s.sentences))


def test_the_fitted_reader_agrees_with_the_expert_far_above_chance(states):
    fitting, held_out = states[: len(states) * 4 // 5], states[len(states) * 4 // 5 :]
    reader = fit_reader(fitting)
    figures = reader_figures(reader, held_out)
    ranked = [s for s in held_out if s.chosen is not None and len(s.sentences) > 1]
    chance = statistics.mean(1 / len(s.sentences) for s in ranked)
    base_rate = figures["quote_states"] / figures["states"]
    assert figures["ranker_accuracy"] > chance + 0.3
    assert figures["decision_precision"] > base_rate + 0.2 and figures["decision_recall"] > 0.3


def test_fitting_needs_a_choice_to_learn(states):
    with pytest.raises(ValueError, match="no states"):
        fit_reader([s for s in states if s.chosen is None])


def test_a_saved_reader_loads_with_the_same_scores_and_an_old_one_is_refused(states, tmp_path):
    reader = fit_reader(states)
    reader.save(tmp_path / READER_FILE)
    loaded = load_reader(tmp_path)
    state = next(s for s in states if len(s.sentences) > 2)
    assert loaded.scores(state.question, state.title, state.sentences) == pytest.approx(
        reader.scores(state.question, state.title, state.sentences))
    assert load_reader(tmp_path / "elsewhere") is None
    data = json.loads((tmp_path / READER_FILE).read_text())
    data["features"] = data["features"][:-1]
    (tmp_path / READER_FILE).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="other features"):
        load_reader(tmp_path)
    (tmp_path / READER_FILE).write_text(json.dumps({"features": list(FEATURES), "weights": [1.0]}))
    with pytest.raises(ValueError, match="not a quote reader"):
        load_reader(tmp_path)


def eager_reader(**weights: float) -> QuoteReader:
    """A reader that ranks by the given features and always decides to quote."""
    zeros = [0.0] * len(FEATURES)
    return QuoteReader([weights.get(name, 0.0) for name in FEATURES], zeros, [1.0] * len(FEATURES), zeros, 10.0)


def open_danube(corpus) -> Browser:
    browser = Browser(corpus, BrowserSettings(window_lines=12))
    browser.reset("Which river flows through Vienna?")
    assert browser.step("Search Danube").error is None and browser.step("Clicked on link 0").error is None
    return browser


def test_reader_quote_takes_the_best_ranked_sentence_and_never_one_quoted_already(corpus):
    browser = open_danube(corpus)
    reader = eager_reader(shared=1.0)
    quotable = quotable_sentences(browser, partial=True)
    assert len(quotable) >= 3
    scores = reader.scores(browser.episode.question, browser.page.title, [s for s, _ in quotable])
    first = reader_quote(reader, browser)
    assert first == quotable[scores.index(max(scores))][1]
    assert browser.step(first).error is None and len(browser.quotes) == 1
    assert reader_quote(reader, browser) != first
    assert all(s not in browser.quotes[0].text for s in unquoted_in_view(browser))
    # A reader that never decides to quote leaves the step to the model, unless the model wrote a quote.
    shy = QuoteReader(reader.weights, reader.mean, reader.scale, reader.quote_weights, -10.0)
    assert reader_quote(shy, browser) is None
    # Sampled (temperature > 0): the decision is drawn with its probability, the sentence from the scores.
    lines = {line for _, line in quotable_sentences(browser, partial=True)}
    drawn = {reader_quote(reader, browser, None, 1.0, torch.Generator().manual_seed(seed)) for seed in range(12)}
    assert drawn <= lines and len(drawn) > 1
    assert all(reader_quote(shy, browser, None, 1.0, torch.Generator().manual_seed(seed)) is None for seed in range(12))
    assert reader_quote(shy, browser, written="Quote: The Danube") in {
        line for _, line in quotable_sentences(browser, partial=True)}


def test_sentences_cut_by_the_windows_edge_are_read_whole_and_the_browser_takes_them(corpus):
    browser = Browser(corpus, BrowserSettings(window_lines=12))
    browser.reset("What ended the need for ABC to maintain interests in other countries?")
    for action in ("Search American Broadcasting Company", "Clicked on link 0", "Find in page: satellite television"):
        assert browser.step(action).error is None
    # `Find` put the line with the words on top; the sentence holding them starts on the line above.
    whole, cut = sentences_in_view(browser), sentences_in_view(browser, partial=True)
    assert set(whole) < set(cut)
    assert any("satellite television ended the need" in s for s in cut)
    assert not any("satellite television ended the need" in s for s in whole)
    page_text = " ".join(browser.page.plain_lines)
    window_text = " ".join(browser.page.plain_lines[browser.cursor: browser.cursor + browser.settings.window_lines])
    edge = next(s for s in cut if s not in whole)
    assert edge in page_text and edge not in window_text
    assert browser.step(quote_action(edge, page_text)).error is None and browser.quotes[-1].text == edge


def test_episodes_quote_with_the_policys_reader_without_asking_the_model(tiny_policy, corpus, monkeypatch):
    model, tokenizer = tiny_policy
    sampler = Sampler(model, tokenizer, reader=eager_reader(shared=1.0))
    asked = []
    script = iter(["Search Danube", "Clicked on link 0", "End: Answer"])

    def scripted(prompts, *args, **kwargs):
        asked.extend(prompts)
        return ["The Danube [1]." if p.rstrip().endswith("♦Answer") else next(script) for p in prompts]

    monkeypatch.setattr(sampler, "sample", scripted)
    episode, = run_episodes(sampler, [Browser(corpus, BrowserSettings(window_lines=12))],
                            "Which river flows through Vienna?", SamplingConfig(temperature=0.0, floor=False, clicks="model"))
    actions = [step.action for step in episode.steps]
    assert actions[:2] == ["Search Danube", "Clicked on link 0"] and actions[-1] == "End: Answer"
    assert actions[2] == reader_quote(sampler.reader, open_danube(corpus))
    assert all(a.startswith("Quote: ") for a in actions[2:-1]) and len(episode.quotes) == len(actions) - 3
    # The model wrote the search, the click and the end; the reader every quote, and the answer from them.
    assert len(asked) == 3 and episode.answer == extract_answer(sampler.reader, episode.question, episode.quotes)
    # Told to, the model writes the answer.
    script = iter(["Search Danube", "Clicked on link 0", "End: Answer"])
    config = SamplingConfig(temperature=0.0, floor=False, answers="model", clicks="model")
    episode, = run_episodes(sampler, [Browser(corpus, BrowserSettings(window_lines=12))],
                            "Which river flows through Vienna?", config)
    assert episode.quotes and episode.answer == "The Danube [1]." and len(asked) == 7

    # With quotes as written, the reader stays out of it.
    script = iter(["Search Danube", "Clicked on link 0", "Scrolled down 1", "End: Nonsense"])
    episode, = run_episodes(sampler, [Browser(corpus, BrowserSettings(window_lines=12))],
                            "Which river flows through Vienna?", SamplingConfig(temperature=0.0, floor=False, quotes="written"))
    assert [step.action for step in episode.steps] == ["Search Danube", "Clicked on link 0", "Scrolled down 1",
                                                       "End: Nonsense"]
    assert not episode.quotes


def test_the_shipped_reader_loads_and_agrees_with_the_expert(states):
    from webqa.loading import SHIPPED_POLICY

    reader = load_reader(SHIPPED_POLICY)
    assert reader is not None
    figures = reader_figures(reader, states)
    assert figures["ranker_accuracy"] > 0.8 and figures["decision_precision"] > 0.6


def test_webqa_train_reader_fits_and_saves_into_a_policy_folder(demos, tmp_path, capsys):
    from webqa.cli import main
    from webqa.demos import append_demonstration

    path = tmp_path / "demos.jsonl"
    for demo in demos[:80]:
        append_demonstration(path, demo)
    assert main(["train", "reader", "--demos", str(path), "--out", str(tmp_path / "policy"), "--held-out", "20"]) == 0
    out = capsys.readouterr().out
    assert "held out" in out and "ranker" in out
    reader = load_reader(tmp_path / "policy")
    assert reader is not None and len(reader.weights) == len(FEATURES)


def test_a_last_look_quotes_before_the_model_leaves_a_page_the_reader_was_unsure_of(tiny_policy, corpus,
                                                                                      monkeypatch):
    model, tokenizer = tiny_policy
    unsure = eager_reader(shared=1.0)
    unsure.quote_bias = 0.0  # with no quote weights, a probability of quoting of exactly 0.5: not above it
    sampler = Sampler(model, tokenizer, reader=unsure)
    lines = ["Search Danube", "Clicked on link 0", "Back", "Back", "Back", "End: Nonsense"]

    def browse(last_look: float | None):
        script = iter(lines)
        monkeypatch.setattr(sampler, "sample", lambda prompts, *args, **kwargs: [next(script) for _ in prompts])
        config = SamplingConfig(temperature=0.0, floor=False, last_look=last_look, clicks="model")
        episode, = run_episodes(sampler, [Browser(corpus, BrowserSettings(window_lines=12))],
                                "Which river flows through Vienna?", config)
        return episode, [step.action for step in episode.steps]

    episode, actions = browse(None)
    assert actions == lines and not episode.quotes
    # Leaving a page it quoted nothing from, the reader quotes its best sentence first: above a
    # threshold of 0.25, 0.5 is enough. In its place the model's next leaving goes through.
    episode, actions = browse(0.25)
    assert actions == lines[:2] + [reader_quote(unsure, open_danube(corpus), threshold=0.25)] + lines[3:]
    assert len(episode.quotes) == 1
    # Greedy, the threshold decides; sampled, the odds are shifted so that the threshold counts as even.
    browser = open_danube(corpus)
    assert reader_quote(unsure, browser, threshold=0.25) and reader_quote(unsure, browser, threshold=0.9) is None

    def quotes_drawn(threshold: float) -> int:
        return sum(reader_quote(unsure, browser, None, 1.0, torch.Generator().manual_seed(seed), (), None,
                                threshold) is not None for seed in range(40))
    assert quotes_drawn(0.25) > 20 > quotes_drawn(0.9)  # likely 0.75 against 0.1


def test_the_model_is_stopped_at_quote_where_the_reader_chooses_what_it_quotes(tiny_policy, corpus, monkeypatch):
    model, tokenizer = tiny_policy
    shy = eager_reader(shared=1.0)
    shy.quote_bias = -10.0  # never quotes unasked: the model decides when
    sampler = Sampler(model, tokenizer, reader=shy)
    script, told = iter(["Search Danube", "Clicked on link 0", "Quote: Th", "End: Answer"]), []

    def scripted(prompts, max_new_tokens, temperature, top_p, generator, grammars=None, stop_at=None):
        told.append(stop_at)
        return [next(script) for _ in prompts]

    monkeypatch.setattr(sampler, "sample", scripted)
    config = SamplingConfig(temperature=0.0, floor=False, clicks="model", last_look=None)
    episode, = run_episodes(sampler, [Browser(corpus, BrowserSettings(window_lines=12))],
                            "Which river flows through Vienna?", config)
    # No sentence to quote before the article opens; on it, the model's line may stop at `Quote: `,
    # and the reader quotes its best sentence whatever the model began to write.
    assert told[:2] == [[None], [None]] and told[2] == [QUOTE]
    assert episode.actions[2] == reader_quote(shy, open_danube(corpus), written="Quote: Th")
    assert len(episode.quotes) == 1
    script, told = iter(["Search Danube", "Clicked on link 0", "End: Nonsense"]), []
    run_episodes(sampler, [Browser(corpus, BrowserSettings(window_lines=12))], "Which river flows through Vienna?",
                 replace(config, quotes="written"))
    assert told == [[None]] * 3  # quotes as written: the model's words are the quote


def test_reader_clicks_open_the_result_it_ranks_first_and_not_one_left_already(corpus):
    from webqa.env.render import result_texts

    reader = eager_reader(shared=1.0, shared_rare=1.0)
    browser = Browser(corpus, BrowserSettings(window_lines=12))
    browser.reset("Which capital city does the Danube flow through, besides Vienna?")
    assert reader_click(reader, browser) is None  # no page yet
    assert browser.step("Search rivers of Europe capital cities").error is None
    texts = result_texts(browser.page)
    assert len(texts) == len(browser.page.links) > 2
    scores = reader.scores(browser.episode.question, "", texts)
    first = reader_click(reader, browser)
    assert first == f"Clicked on link {scores.index(max(scores))}"
    assert browser.step(first).error is None and reader_click(reader, browser) is None  # not on results
    assert browser.step("Back").error is None
    second = reader_click(reader, browser)  # the page left without a quote is not offered again
    assert second is not None and second != first
    drawn = {reader_click(reader, browser, 1.0, torch.Generator().manual_seed(seed)) for seed in range(20)}
    assert first not in drawn and len(drawn) > 1
    assert drawn <= {f"Clicked on link {i}" for i in range(len(texts))}


def test_episodes_click_where_the_reader_says_when_told_to(tiny_policy, corpus, monkeypatch):
    model, tokenizer = tiny_policy
    reader = eager_reader(shared=1.0, shared_rare=1.0)
    reader.quote_bias = -10.0  # never quotes unasked
    sampler = Sampler(model, tokenizer, reader=reader)
    question = "Which capital city does the Danube flow through, besides Vienna?"
    lines = ["Search rivers of Europe capital cities", "Clicked on link 0", "End: Nonsense"]
    for clicks in ("model", "reader"):
        script = iter(lines)
        monkeypatch.setattr(sampler, "sample", lambda prompts, *args, **kwargs: [next(script) for _ in prompts])
        episode, = run_episodes(sampler, [Browser(corpus, BrowserSettings(window_lines=12))], question,
                                SamplingConfig(temperature=0.0, floor=False, clicks=clicks))
        browser = Browser(corpus, BrowserSettings(window_lines=12))
        browser.reset(question)
        browser.step(lines[0])
        expected = lines[1] if clicks == "model" else reader_click(reader, browser)
        assert (expected == lines[1]) == (clicks == "model")  # the reader prefers another result here
        assert [step.action for step in episode.steps] == [lines[0], expected, lines[2]]


def test_the_readers_choices_can_be_sampled_while_the_model_navigates_greedily(tiny_policy, corpus, monkeypatch):
    model, tokenizer = tiny_policy
    sampler = Sampler(model, tokenizer, reader=eager_reader(shared=1.0, length=0.5))
    temperatures = []

    def scripted(prompts, max_new_tokens, temperature=0.7, *args, **kwargs):
        temperatures.extend(temperature if isinstance(temperature, list) else [temperature] * len(prompts))
        return ["Search Danube" if "Search Danube" not in p else "Clicked on link 0" if "Click 0" not in p
                else "End: Answer" for p in prompts]

    monkeypatch.setattr(sampler, "sample", scripted)
    question = "Which river flows through Vienna?"

    def episodes(n, config):
        browsers = [Browser(corpus, BrowserSettings(window_lines=12, max_actions=8)) for _ in range(n)]
        return run_episodes(sampler, browsers, question, config)

    [greedy] = episodes(1, SamplingConfig.best_of(1, floor=False))
    runs = [episodes(4, SamplingConfig.best_of(4, temperature=0.0, reading_temperature=0.7, seed=seed, floor=False))
            for seed in range(4)]
    assert temperatures and set(temperatures) == {0.0}  # the model is always asked for its likeliest line
    assert greedy.quotes and all(run[0].quotes == greedy.quotes and run[0].answer == greedy.answer for run in runs)
    sampled = {tuple(q.text for q in e.quotes) for run in runs for e in run[1:]}
    assert len(sampled - {tuple(q.text for q in greedy.quotes)}) >= 1  # the reader's sampled choices differ
    assert all(e.actions[:2] == ["Search Danube", "Clicked on link 0"] for run in runs for e in run)
