"""The browser's commands and observation text, on the real embedded encyclopedia."""

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from webqa.env import Browser, BrowserSettings, replay
from webqa.env.browser import QUOTE_SEPARATOR, normalize_text, normalize_with_map
from webqa.types import Episode

SECTIONS = ["♦Question", "♦Quotes", "♦Past actions", "♦Title", "♦Scrollbar:", "♦Text", "♦Actions left:", "♦Next action"]


@pytest.fixture
def browser(corpus):
    browser = Browser(corpus)
    browser.reset("Which river flows through Vienna?")
    return browser


def open_page(browser, title):
    """Search for a title and click the result that has it."""
    browser.step(f"Search {title}")
    titles = [link.text for link in browser.page.links]
    assert title in titles, titles
    result = browser.step(f"Clicked on link {titles.index(title)}")
    assert result.error is None and browser.page.title == title
    return browser.page


def test_observation_has_webgpt_sections_in_order(browser):
    observation = browser.observation()
    positions = [observation.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert observation.endswith("♦Next action")
    assert "♦Actions left: 20" in observation
    assert "♦Scrollbar: 0-0 of 0 lines" in observation


def test_search_page_lists_numbered_results_with_domain_and_snippet(browser):
    result = browser.step("Search Which river flows through Vienna?")
    assert result.error is None and not result.done
    assert browser.page.title == "Search results for: Which river flows through Vienna?"
    assert re.search(r"【0†[^†】]+†en\.wikipedia\.org】", result.observation)
    titles = [link.text for link in browser.page.links]
    assert "Danube" in titles[:3]
    assert len(titles) == BrowserSettings().search_results
    assert "♦Past actions\nSearch Which river flows through Vienna?" in result.observation


def test_click_opens_the_page_and_same_site_links_omit_the_domain(browser):
    page = open_page(browser, "Vienna")
    assert page.url == "https://en.wikipedia.org/wiki/Vienna"
    assert page.links, "the Vienna page links to other pages"
    text = "\n".join(page.lines)
    assert re.search(r"【\d+†[^†】]+】", text)
    assert "†en.wikipedia.org】" not in text
    first, last = 1, min(25, len(page.lines))
    assert f"♦Scrollbar: {first}-{last} of {len(page.lines)} lines" in browser.observation()


def test_click_on_a_missing_link_is_an_error_that_changes_nothing(browser):
    browser.step("Search Vienna")
    before = browser.page
    result = browser.step("Clicked on link 999")
    assert "no link 999" in result.error
    assert browser.page is before
    assert "♦Error: there is no link 999" in result.observation
    assert browser.actions_left == 18


def test_find_jumps_to_the_next_occurrence_and_wraps(corpus):
    browser = Browser(corpus, max_actions=100)
    browser.reset("q")
    page = open_page(browser, "Danube")
    hits = [i for i, line in enumerate(page.plain_lines) if "river" in line.lower()]
    assert len(hits) >= 2
    cycle = [h for h in hits if h > 0] + [h for h in hits if h == 0]
    positions = []
    for _ in range(len(hits) + 1):
        assert browser.step("Find in page: RIVER").error is None
        positions.append(browser.cursor)
    assert positions == cycle + cycle[:1]


def test_find_with_no_match_keeps_the_cursor(browser):
    open_page(browser, "Danube")
    browser.step("Scrolled down 1")
    cursor = browser.cursor
    result = browser.step("Find in page: xylophone quartz zebra")
    assert "not found" in result.error
    assert browser.cursor == cursor


def test_scrolling_moves_by_windows_and_stops_at_the_ends(corpus):
    browser = Browser(corpus, window_lines=5, max_actions=1000)
    browser.reset("q")
    page = open_page(browser, "Istanbul")
    assert len(page.lines) > 20
    browser.step("Scrolled down 2")
    assert browser.cursor == 10
    assert "♦Scrollbar: 11-15 of" in browser.observation()
    browser.step("Scrolled up 1")
    assert browser.cursor == 5
    assert browser.step("Scrolled up 3").error is None and browser.cursor == 0
    assert "already at the top" in browser.step("Scrolled up 1").error
    for _ in range(len(page.lines)):
        if browser.step("Scrolled down 3").error:
            break
    assert browser.cursor == len(page.lines) - 5
    assert "already at the bottom" in browser.step("Scrolled down 1").error
    browser.step("Top")
    assert browser.cursor == 0


def test_back_returns_to_the_previous_page_and_its_scroll_position(corpus):
    browser = Browser(corpus, window_lines=3)
    browser.reset("q")
    browser.step("Search Vienna")
    browser.step("Scrolled down 1")
    results = browser.page
    browser.step("Clicked on link 0")
    assert browser.page is not results
    assert browser.step("Back").error is None
    assert browser.page is results and browser.cursor == 3


def test_back_on_the_first_page_is_an_error(browser):
    assert "no previous page" in browser.step("Back").error
    browser.step("Search Vienna")
    assert "no previous page" in browser.step("Back").error


def test_page_commands_before_any_page_explain_what_to_do(browser):
    for action in ["Clicked on link 0", "Find in page: x", "Quote: x", "Scrolled down 1", "Top"]:
        assert "Search <query>" in browser.step(action).error


def test_quote_is_case_and_whitespace_insensitive_and_keeps_the_page_wording(browser):
    page = open_page(browser, "Vienna")
    line = page.plain_lines[1]
    words = line.split()[:8]
    sloppy = "  ".join(w.upper() for w in words)
    result = browser.step(f"Quote: {sloppy}")
    assert result.error is None
    quote = browser.quotes[0]
    assert quote.text == " ".join(words)
    assert quote.title == "Vienna" and quote.url == page.url
    assert f"From Vienna (en.wikipedia.org) > {quote.text}" in result.observation


def test_quote_strips_link_markup(browser):
    page = open_page(browser, "Vienna")
    marked = next(line for line in page.lines if "【" in line)
    plain = page.plain_lines[page.lines.index(marked)]
    assert browser.step(f"Quote: {marked}").error is None
    assert browser.quotes[0].text == plain


def test_quote_not_on_the_page_is_refused(browser):
    open_page(browser, "Vienna")
    result = browser.step("Quote: Vienna is the capital of Mars and has seven moons.")
    assert "not on the current page" in result.error
    assert browser.quotes == []


def test_short_quote_form_takes_the_span_between_start_and_end(browser):
    page = open_page(browser, "Danube")
    text = " ".join(page.plain_lines)
    words = text.split()
    start, end = " ".join(words[3:6]), " ".join(words[20:23])
    assert browser.step(f"Quote: {start}{QUOTE_SEPARATOR}{end}").error is None
    quote = browser.quotes[0].text
    assert quote.startswith(start) and quote.endswith(end)
    assert len(quote.split()) == 20
    assert "not on the current page" in browser.step(f"Quote: {end}{QUOTE_SEPARATOR}{start}").error


def test_quotes_are_limited_in_number_and_length(corpus):
    browser = Browser(corpus, max_quotes=2, max_quote_chars=150)
    browser.reset("q")
    page = open_page(browser, "Danube")
    words = " ".join(page.plain_lines).split()
    assert browser.step("Quote: " + " ".join(words[0:5])).error is None
    assert browser.step("Quote: " + " ".join(words[0:5])).error == "that passage is already quoted"
    long_error = browser.step("Quote: " + " ".join(words[10:60])).error
    assert "quote too long" in long_error
    assert browser.step("Quote: " + " ".join(words[10:14])).error is None
    assert "at most 2 quotes" in browser.step("Quote: " + " ".join(words[20:23])).error
    assert len(browser.quotes) == 2


@pytest.mark.parametrize("action", [
    "search vienna", "Search", "Search   ", "Clicked on link", "Clicked on link x", "Scrolled down 4",
    "Scrolled down", "Scrolled up 0", "End: Maybe", "End:", "Quote:", "top", "Back please", "", "\n",
    "Find in page:", "x" * 5000,
])
def test_invalid_actions_use_one_action_and_change_nothing(browser, action):
    browser.step("Search Vienna")
    page, left = browser.page, browser.actions_left
    result = browser.step(action)
    assert result.error and not result.done
    assert browser.page is page and browser.actions_left == left - 1
    assert "♦Error:" in result.observation
    assert browser.observation().split("♦Past actions\n")[1].split("\n")[1] == "(invalid action)"


def test_end_answer_needs_a_quote_and_other_endings_do_not(browser):
    assert "at least one quote" in browser.step("End: Answer").error
    assert not browser.done
    result = browser.step("End: Nonsense")
    assert result.done and browser.episode.end == "Nonsense"
    after = browser.step("Search Vienna")
    assert after.done and "episode is over" in after.error
    assert len(browser.episode.steps) == 2


def test_the_episode_ends_when_actions_run_out(corpus):
    browser = Browser(corpus, max_actions=3)
    browser.reset("q")
    results = [browser.step("Search Vienna") for _ in range(3)]
    assert [r.done for r in results] == [False, False, True]
    assert browser.episode.end == "out of actions"
    assert "♦Actions left: 0" in results[-1].observation


def test_overrides_apply_to_a_copy_of_shared_settings(corpus):
    shared = BrowserSettings(window_lines=12, max_actions=16)
    short = Browser(corpus, shared, max_actions=2)
    plain = Browser(corpus, shared)
    assert (short.settings.max_actions, short.settings.window_lines) == (2, 12)
    assert shared.max_actions == 16 and plain.settings == shared
    plain.reset("q")
    assert plain.actions_left == 16
    with pytest.raises(TypeError, match="unknown browser setting 'max_pages'"):
        Browser(corpus, shared, max_pages=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=st.lists(st.one_of(
    st.text(max_size=200),
    st.sampled_from(["Search Vienna", "Clicked on link 1", "Scrolled down 3", "Back", "Top", "Quote: Vienna",
                     "Find in page: the", "End: Answer"]),
    st.builds(lambda n: f"Clicked on link {n}", st.integers(min_value=-5, max_value=10**7)),
), max_size=8))
def test_step_never_raises_on_any_string(corpus, actions):
    browser = Browser(corpus, max_actions=6)
    browser.reset("fuzz")
    for action in actions:
        left = browser.actions_left
        result = browser.step(action)
        assert isinstance(result.observation, str)
        assert result.done == browser.done
        if not result.done or left > 0:
            assert browser.actions_left <= left
    assert len(browser.episode.steps) <= 6


def test_episode_serializes_to_json_and_replays_identically(corpus):
    browser = Browser(corpus)
    browser.reset("Which river flows through Vienna?")
    for action in ["Search Vienna river", "Clicked on link 0", "Find in page: Danube", "Scrolled down 1", "Back",
                   "Clicked on link 99", "nonsense", "Clicked on link 1", "Quote: the", "End: Answer"]:
        browser.step(action)
    original = Episode.from_dict(json.loads(json.dumps(browser.episode.to_dict())))
    assert original == browser.episode
    assert original.end == "Answer" and len(original.quotes) == 1
    again = replay(original, Browser(corpus))
    assert again.to_dict() == original.to_dict()


def test_fast_normalization_is_the_mapped_one_without_the_map():
    import random
    import sys

    # Every character alone and between others: whitespace, multi-character lowercase (İ), final sigma.
    for code in range(0, sys.maxunicode + 1, 7):
        for text in (chr(code), f"A{chr(code)}b", f" {chr(code)}  Σ"):
            assert normalize_text(text) == normalize_with_map(text)[0], hex(code)
    rng = random.Random(0)
    alphabet = "aBΣσς İẞß\t\n\u00a0\u2003.x"
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert normalize_text(text) == normalize_with_map(text)[0], repr(text)
    # Character by character, as the browser maps quotes: σ even at a word's end, İ kept (its lowercase is two).
    assert normalize_text("  The  ΟΔΟΣ\n İstanbul ") == "the οδοσ İstanbul "
