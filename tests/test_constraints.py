"""Constrained sampling: the grammars agree with the real browser, and the sampler obeys them."""

import pytest
import torch

from tests.tiny import tiny_policy_folder
from webqa.env import Browser, BrowserSettings
from webqa.policy.constraints import ActionGrammar, AnswerGrammar, CitationEnding, action_grammar
from webqa.policy.model import load_model
from webqa.policy.config import SamplingConfig
from webqa.policy.rollout import finish_answers, run_episodes
from webqa.policy.sampler import Sampler
from webqa.scoring import MAX_ANSWER_WORDS, answer_words, is_correct


@pytest.fixture()
def article(corpus):
    """A browser on the Danube article, after a search."""
    browser = Browser(corpus, BrowserSettings(window_lines=8, max_actions=20))
    browser.reset("Which river flows through Vienna?")
    assert browser.step("Search Danube").error is None
    assert browser.step("Clicked on link 0").error is None
    assert browser.page.title == "Danube"
    return browser


def window_words(browser, start, count):
    lines = browser.page.plain_lines[browser.cursor : browser.cursor + browser.settings.window_lines]
    return " ".join(" ".join(lines).split()[start : start + count])


def accepted(browser, action):
    """Whether the browser takes `action` without an error (the browser is left as it was)."""
    saved = browser.checkpoint()
    error = browser.step(action).error
    browser.restore(saved)
    return error is None


def test_before_any_search_only_search_and_giving_up_are_allowed(corpus):
    browser = Browser(corpus)
    browser.reset("Who wrote Hamlet?")
    grammar = action_grammar(browser)
    assert grammar.allows("Sea") and grammar.allows("Search Hamlet author")
    assert grammar.complete("Search Hamlet") and not grammar.complete("Search ")
    assert grammar.complete("End: Nonsense") and not grammar.allows("End: Answer")  # no quotes yet
    for action in ("Clicked on link 0", "Quote: Hamlet", "Find in page: Hamlet", "Back", "Scrolled down 1", "Top"):
        assert not grammar.allows(action), action


def test_every_whole_command_the_grammar_offers_is_accepted_by_the_browser(article):
    for browser_state in ("article", "results"):
        if browser_state == "results":
            assert article.step("Back").error is None
        grammar = action_grammar(article)
        assert grammar.fixed
        for action in grammar.fixed:
            assert grammar.complete(action)
            assert accepted(article, action), (browser_state, action)


def test_links_must_be_on_the_screen_and_exist(article):
    article.step("Back")
    grammar = action_grammar(article)
    assert grammar.complete("Clicked on link 1")
    assert not grammar.allows(f"Clicked on link {len(article.page.links) + 5}")
    assert not grammar.allows("Quote: Danube")  # a results page has no passages to quote


def test_quotes_must_be_words_on_the_screen(article):
    grammar = action_grammar(article)
    quote = window_words(article, 2, 8)
    assert grammar.allows("Quote: " + quote[:10]) and grammar.complete("Quote: " + quote)
    assert accepted(article, "Quote: " + quote)
    assert not grammar.allows("Quote: " + quote + " zzzqx")  # a word that is not there
    assert not grammar.complete("Quote: " + quote[:-2])  # stops inside a word
    assert not grammar.complete("Quote: " + window_words(article, 2, 2))  # too short
    # The short form: first words, the separator, then words found after them.
    short = f"{window_words(article, 2, 4)}━{window_words(article, 12, 3)}"
    assert grammar.allows("Quote: " + short) and grammar.complete("Quote: " + short)
    assert accepted(article, "Quote: " + short)
    assert not grammar.allows(f"Quote: {window_words(article, 12, 3)}━{window_words(article, 2, 4)}")  # end first


def test_a_passage_is_quoted_once_and_quotes_stop_when_full(article):
    quote = window_words(article, 2, 8)
    assert article.step("Quote: " + quote).error is None
    grammar = action_grammar(article)
    assert not grammar.complete("Quote: " + quote)
    assert grammar.complete("End: Answer")
    article.settings.max_quotes = 1
    assert not action_grammar(article).allows("Quote: " + window_words(article, 10, 1))


def test_find_in_page_needs_text_that_is_on_the_page(article):
    grammar = action_grammar(article)
    word = article.page.plain_lines[-1].split()[-1].strip(".,;")  # far below the window
    assert grammar.complete(f"Find in page: {word}") and accepted(article, f"Find in page: {word}")
    assert not grammar.allows("Find in page: qqzzxv")


def test_a_page_left_without_a_quote_is_not_opened_again(article):
    danube = article.page.url
    # Quoted, then left: the page may be opened again (for a second passage).
    before_quoting = article.checkpoint()
    assert article.step(f"Quote: {window_words(article, 0, 6)}").error is None
    assert article.step("Back").error is None
    assert action_grammar(article).complete("Clicked on link 0")
    # Left unquoted: judged useless, so not offered again; the other results still are.
    article.restore(before_quoting)
    assert article.step("Back").error is None
    assert article.pages_left == [danube]
    grammar = action_grammar(article)
    assert not grammar.allows("Clicked on link 0") and grammar.complete("Clicked on link 1")
    assert accepted(article, "Clicked on link 0")  # the browser itself still takes it


def test_a_query_searched_before_is_not_searched_again(article):
    grammar = action_grammar(article)
    assert not grammar.complete("Search Danube") and not grammar.complete("Search  danube.")
    assert grammar.allows("Search Danube") and grammar.complete("Search Danube river")  # it may go on


def test_a_command_repeated_twice_in_a_row_is_not_offered_a_third_time(article):
    word = article.page.plain_lines[-1].split()[-1].strip(".,;")
    find = f"Find in page: {word}"
    assert article.step(find).error is None
    assert action_grammar(article).complete(find)  # once: fine
    assert article.step(find).error is None
    grammar = action_grammar(article)
    assert not grammar.complete(find) and grammar.complete(f"Find in page: {word[:-1]}")
    assert article.step("Scrolled up 1").error is None
    assert action_grammar(article).complete(find)  # something else came between
    once = action_grammar(article, max_repeats=1)  # no command twice in a row
    assert not once.complete("Scrolled up 1") and once.complete("Back") and once.complete(find)


def test_a_kind_of_command_is_given_at_most_four_times_in_a_row(article):
    words = [w.strip(".,;()") for w in " ".join(article.page.plain_lines).split() if len(w) > 6][:4]
    for word in words:
        assert action_grammar(article).complete(f"Find in page: {word}")
        assert article.step(f"Find in page: {word}").error is None
    grammar = action_grammar(article)
    assert not grammar.allows("Find in page: ") and not grammar.complete(f"Find in page: {words[0]}")
    assert grammar.complete("Search Danube delta") and grammar.complete("End: Nonsense")


def test_the_action_grammar_forces_what_every_command_it_allows_goes_on_with():
    grammar = ActionGrammar(fixed=["Clicked on link 1", "Clicked on link 12", "Scrolled down 1", "Scrolled up 2",
                                   "Back", "End: Answer", "End: Nonsense"], free=["Search ", "Find in page: "])
    assert grammar.forced("Cl") == "icked on link 1"  # both links start with 1
    assert grammar.forced("Sc") == "rolled"  # the space and the direction are the model's
    assert grammar.forced("F") == "ind in page:" and grammar.forced("E") == "nd:"
    assert grammar.forced("S") == ""  # Search or Scrolled: a choice
    assert grammar.forced("Clicked on link 1") == ""  # it may end here or go on to 12
    assert grammar.forced("Find in page: Dan") == "" and grammar.forced("Back") == "" and grammar.forced("X") == ""
    for start in ("Cl", "Sc", "F", "E", "B"):
        assert grammar.allows(start + grammar.forced(start))


def test_answer_citations_must_name_collected_quotes():
    two = AnswerGrammar(2)
    assert two.complete("Vienna lies on the Danube [1][2].")
    assert two.allows("Vienna lies on the Danube [") and two.allows("It is 1985 [2")
    assert not two.complete("Vienna lies on the Danube [1")  # open bracket
    assert not two.complete("Vienna lies on the Danube.")  # no citation
    for bad in ("Vienna [3]", "Vienna [0", "Vienna [1a", "Vienna ]"):
        assert not two.allows(bad), bad
    assert AnswerGrammar(12).allows("Vienna [1") and AnswerGrammar(12).complete("Vienna [12].")


def test_an_answer_that_reaches_the_word_limit_can_only_cite_and_end():
    grammar = AnswerGrammar(1, max_words=6)
    full = "The answer is the answer is"
    assert grammar.allows(full) and not grammar.complete(full)
    assert not grammar.allows(full + " the")  # a seventh word
    assert grammar.allows(full + ".") and grammar.allows(full + " [") and grammar.complete(full + " [1].")
    assert grammar.complete("The river [1] is the Danube [1].")  # citations are not words


def test_the_grammar_and_the_scorer_count_the_same_words():
    # 39 words, a lone dash and a citation (neither is a word), then the gold answer: the 40th word.
    answer = " ".join(["word"] * 39) + " - [1] Danube"
    assert len(answer_words(answer)) == MAX_ANSWER_WORDS and is_correct(answer, ["Danube"])
    grammar = AnswerGrammar(1)
    assert grammar.allows(answer) and grammar.complete(answer + " [1].")
    assert not grammar.allows(answer + " flows")  # the 41st word, which the scorer would not read
    assert not is_correct(answer.replace("Danube", "the Danube"), ["Danube"])


@pytest.fixture(scope="module")
def tiny_sampler(corpus, tmp_path_factory):
    texts = [corpus.plain_text(t) for t in ["Danube", "Vienna", "Istanbul", "Albert Einstein"]]
    folder = tiny_policy_folder(tmp_path_factory.mktemp("tiny-policy"), texts)
    return Sampler(*load_model(str(folder), device="cpu"))


class OneOf:
    """A grammar of a few whole lines."""

    def __init__(self, options):
        self.options = options

    def allows(self, text):
        return any(option.startswith(text) for option in self.options)

    def complete(self, text):
        return text in self.options

    def wide_characters(self):
        return {char for option in self.options for char in option if ord(char) > 127}


def test_a_random_model_writes_only_what_the_grammar_allows(tiny_sampler):
    options = ["Clicked on link 3", "Clicked on link 12", "Back", "Scrolled down 2", "Quote: a━b"]
    grammar = OneOf(options)
    lines = tiny_sampler.sample(["Vienna"] * 6, 24, 1.0, 1.0, torch.Generator().manual_seed(0), [grammar] * 6)
    assert all(line in options for line in lines), lines
    free = tiny_sampler.sample(["Vienna"] * 6, 24, 1.0, 1.0, torch.Generator().manual_seed(0))
    assert not all(line in options for line in free)  # without the grammar it writes anything
    searches = tiny_sampler.sample(["Vienna"] * 6, 16, 1.0, 1.0, torch.Generator().manual_seed(0),
                                   [ActionGrammar(fixed=[])] * 6)  # only Search is possible
    assert all(line.startswith("Search ") and line.isprintable() and "\ufffd" not in line for line in searches)


def greedy_ids(model, ids, steps, stop, valid):
    """The model's greedy next tokens among `valid` ones after `ids`, read whole each time (no cache), up to a
    stop token."""
    out = []
    with torch.no_grad():
        for _ in range(steps):
            token = int(model(torch.tensor([ids + out])).logits[0, -1].masked_fill(~valid, float("-inf")).argmax())
            out.append(token)
            if token in stop:
                break
    return out


def test_forced_tokens_are_read_in_one_pass_and_decoding_goes_on_as_if_read_one_by_one(tiny_sampler, monkeypatch):
    sampler, tokenizer = tiny_sampler, tiny_sampler.tokenizer
    forced = tokenizer(" flows through Vienna", add_special_tokens=False)["input_ids"]
    anything = OneOf([])  # allows any line of whole characters
    anything.allows = anything.complete = lambda text: True
    # Force those tokens after the first one drawn in row 0; row 1 is not forced, so its chunk is padded.
    monkeypatch.setattr(sampler, "_forced", lambda grammar, ids: forced if grammar is anything and len(ids) == 1 else [])
    ended = []
    monkeypatch.setattr(sampler, "_line", lambda ids: ended.append(list(ids)) or Sampler._line(sampler, ids))
    prompts = ["The Danube", "In 1453 the city of Istanbul was taken by"]
    before = sampler.stats.forced_tokens
    lines = sampler.sample(prompts, 24, temperature=0, grammars=[anything, None])
    assert sampler.stats.forced_tokens - before == len(forced)
    row0, row1 = ended[-2:]
    prompt0 = tokenizer(prompts[0], add_special_tokens=False)["input_ids"]
    assert row0[1 : 1 + len(forced)] == forced
    stop = set(sampler.stop_ids.tolist())
    whole = torch.tensor(["\ufffd" not in tokenizer.decode([t]) for t in range(len(tokenizer))])
    rest = greedy_ids(sampler.model, prompt0 + row0[: 1 + len(forced)], 24 - 1 - len(forced), stop, whole)
    assert len(rest) > 3  # the check reaches well past the forced tokens
    assert row0[1 + len(forced) :] == [t for t in rest if t != tokenizer.eos_token_id]
    assert lines[1] == Sampler._line(sampler, row1) == sampler.sample(prompts[1:], 24, temperature=0)[0]


def test_a_grammar_with_one_line_left_is_written_in_one_pass(tiny_sampler):
    before = tiny_sampler.stats.decode_tokens
    lines = tiny_sampler.sample(["Vienna"], 24, temperature=0, grammars=[ActionGrammar(fixed=["Clicked on link 12"],
                                                                                        free=[])])
    assert lines == ["Clicked on link 12"]
    assert tiny_sampler.stats.decode_tokens - before <= 3  # the first token, maybe the space, the end


def test_constrained_answers_cite_only_collected_quotes(tiny_sampler):
    lines = tiny_sampler.sample(["Vienna"] * 6, 40, 1.0, 1.0, torch.Generator().manual_seed(1), [AnswerGrammar(2)] * 6)
    for line in lines:
        assert AnswerGrammar(2).allows(line), line


def test_constrained_episodes_take_far_fewer_invalid_actions(tiny_sampler, corpus):
    def errors(constrained):
        browsers = [Browser(corpus, BrowserSettings(window_lines=8, max_actions=6)) for _ in range(3)]
        config = SamplingConfig(temperature=1.0, max_action_tokens=48, seed=0, constrained=constrained)
        episodes = run_episodes(tiny_sampler, browsers, "Which river flows through Vienna?", config)
        steps = [step for episode in episodes for step in episode.steps]
        return sum(step.error is not None for step in steps) / len(steps)

    free, constrained = errors(False), errors(True)
    assert free > 0.5  # a random model writes garbage
    assert constrained < free / 2, (free, constrained)


def test_citation_ending_allows_a_citation_and_no_new_word():
    ending = CitationEnding("The river is the Danube", quotes=2)
    assert ending.allows(" [") and ending.allows(" [2") and ending.complete(" [2].") and ending.complete("[1][2]")
    assert not ending.complete("") and not ending.complete(" [3].") and not ending.allows(" and")
    assert not ending.allows("s [1]")  # letters would grow the last word
    assert CitationEnding("isthattheansweris[", quotes=1).complete("1]")


def test_answers_cut_by_the_token_cap_get_a_citation(tiny_sampler):
    answers = ["The Danube flows", "The Danube [", "isthattheansweristhat", "Vienna [1]."]
    quotes = [2, 2, 1, 1]
    finished = finish_answers(tiny_sampler, ["Question: Which river?\n"] * 4, answers, quotes)
    assert finished[3] == "Vienna [1]."  # a complete answer is left as it is
    for answer, count, text in zip(answers, quotes, finished):
        assert text.startswith(answer) and AnswerGrammar(count).complete(text), text
        assert answer_words(text) == answer_words(answer)



def test_answer_cites_each_quote_at_most_once():
    grammar = AnswerGrammar(2)
    assert grammar.complete("The Danube [1] [2].")
    assert not grammar.allows("The Danube [1] [1]") and not grammar.allows("The Danube [2][1][2]")
    assert grammar.complete("The river [1] is the Danube [1].")  # the same quote again, later on
    assert not grammar.allows("The Danube [1] [1")  # no digit that only repeats a citation
    assert grammar.allows("The Danube [1] [2")
    assert not AnswerGrammar(1).allows("The Danube [1] [")  # nothing left to cite

