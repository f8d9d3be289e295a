"""A scripted expert that browses like a careful reader, steered by the gold answer.

Every action it takes is one a reader without the gold answer could justify
from the screen: search with (a reformulation of) the question, click a result
whose title or snippet shares words with the question, find a word of the
question, scroll, quote a sentence, go back. The gold answer only decides
which of those actions is the right one: which result holds the answer, which
sentence to quote.

There is one decision procedure, `Expert.label`: given any live browser it
names the right next action. It labels states a policy reached (DAgger), and
`Expert.demonstrate` generates whole episodes by calling it repeatedly, with
seeded random choices and some injected mistakes (a wrong click, then `Back`),
so a cloned policy sees recovery rather than one fixed script.

    expert = Expert(LocalCorpus.default())
    demo = expert.demonstrate(question, gold_answers, random.Random(0))
    demo.episode, demo.answer          # demo is None when the answer was not reached
    label(browser, question, gold)     # the next action for any live browser

Its gold-steered text work (the passages to quote, the answer sentence) is in
`expert_text`, its moves on a page (finds, scrolls) in `expert_moves`, and the
gold-free text helpers it shares with the policy (queries, finds, sentences, the
quote command) in `webqa.text`; the browser it drives by default, `POLICY_BROWSER`,
is the policy's (`webqa.policy.prompts`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from webqa.env.backend import Backend, BackendError
from webqa.env.browser import Browser, BrowserSettings
from webqa.env.local import fts_query
from webqa.env.render import Page, render, search_page
from webqa.policy.expert_moves import link_lines, plan_moves
from webqa.policy.expert_text import Passage, compose_answer, passages
from webqa.policy.prompts import POLICY_BROWSER
from webqa.scoring import is_supported
from webqa.text import find_needles, fits, question_stems, quote_action, rarity_weights, reformulations
from webqa.types import Episode, Quote

# How often generation departs from the straight path (and P_DETOUR, in expert_moves).
P_WRONG_CLICK = 0.25  # click a plausible result without the answer, then go back
P_TWO_QUOTES = 0.3  # back up and quote a second page (or a second passage of the same page)
P_QUERY_STYLE = (0.45, 0.35, 0.2)  # first search: the question / its keywords / its names


@dataclass
class Demo:
    """What `Expert.demonstrate` produces: the episode, its final answer, and its detours."""

    episode: Episode
    answer: str
    wrong_clicks: int = 0


@dataclass
class _Result:
    """A search result as the expert sees it."""

    link: int
    line: int
    url: str
    fits: bool  # title or snippet shares a word with the question
    score: int  # the best reachable passage behind it, 0 if none


class Expert:
    """Labels browser states with the right next action, and generates demonstrations."""

    def __init__(self, backend: Backend, settings: BrowserSettings | None = None):
        self.backend = backend
        self.settings = settings or POLICY_BROWSER
        self._pages: dict[tuple[str, int], Page | None] = {}
        self._passages: dict[tuple, list[Passage]] = {}
        self._idf: dict[str, dict[str, float]] = {}

    def _page(self, url: str, width: int) -> Page | None:
        """A result's page as the browser will render it (cached: labels revisit the same pages)."""
        if (url, width) not in self._pages:
            if len(self._pages) > 256:
                self._pages.clear()
            try:
                self._pages[url, width] = render(self.backend.fetch(url), width=width)
            except BackendError:
                self._pages[url, width] = None
        return self._pages[url, width]

    def _weights(self, question: str) -> dict[str, float] | None:
        """Each content word of the question (stemmed) weighted by its rarity in the encyclopedia (IDF).

        A word no page contains weighs most: a passage cannot cover it, and a question about something
        the encyclopedia lacks must not be answered from a page about something else.
        Only the local corpus can count; elsewhere None.
        """
        frequency = getattr(self.backend, "document_frequency", None)
        if frequency is None:
            return None
        if question not in self._idf:
            if len(self._idf) > 256:
                self._idf.clear()
            self._idf[question] = rarity_weights(question, frequency)
        return self._idf[question]

    def _candidates(self, page: Page, question: str, gold: list[str], settings: BrowserSettings) -> list[Passage]:
        """Passages of `page` worth quoting that can be brought into view from its top."""
        key = (page.url, question, tuple(gold), settings.line_width, settings.window_lines)
        if key not in self._passages:
            if len(self._passages) > 256:
                self._passages.clear()
            needles = find_needles(question)
            found = passages(page, question, gold, settings.line_width, self._weights(question))
            self._passages[key] = [p for p in found
                                   if plan_moves(page, 0, p.first_line, p.last_line, settings, needles) is not None]
        return self._passages[key]

    # --- the decision procedure -------------------------------------------------------

    def label(self, browser: Browser, question: str | None = None, gold: list[str] | None = None, *,
              want_quotes: int = 1, rng: random.Random | None = None) -> str | None:
        """The right next action in `browser`'s state, or None when the expert sees no way to the answer.

        With `rng`, equally good options are chosen at random (generation); without, deterministically.
        """
        question = question if question is not None else browser.episode.question
        gold = list(gold or [])
        page = browser.page
        supported = [q for q in browser.quotes if is_supported([q.text], gold)]
        if supported and (len(supported) >= want_quotes or browser.actions_left <= 2):
            return "End: Answer"
        if page is None:
            return self._search(browser, question, rng)
        if page.is_search_results:
            return self._on_results(browser, page, question, gold, supported, rng)
        return self._on_article(browser, page, question, gold, supported, rng)

    def _search(self, browser: Browser, question: str, rng: random.Random | None) -> str | None:
        """Search with a reformulation whose words differ from every query tried so far."""
        tried = {fts_query(a[len("Search "):]) for a in browser.episode.actions if a.startswith("Search ")}
        queries = reformulations(question)
        if not tried and rng is not None:
            style = rng.choices(range(len(P_QUERY_STYLE)), weights=P_QUERY_STYLE)[0]
            queries = queries[style:] + queries[:style]
        for query in queries:
            if fts_query(query) and fts_query(query) not in tried:
                return f"Search {query}"
        return None

    def _results(self, page: Page, question: str, gold: list[str], settings: BrowserSettings) -> list[_Result]:
        stems = question_stems(question)
        lines = link_lines(page)
        results = []
        for link_id, link in enumerate(page.links):
            if link_id not in lines:
                continue
            # A result's snippet runs from its title line to the next result's title line.
            end = min((n for n in lines.values() if n > lines[link_id]), default=len(page.lines))
            snippet = " ".join(page.plain_lines[lines[link_id] : end])
            target = self._page(link.url, settings.line_width)
            score = max((p.score for p in self._candidates(target, question, gold, settings)), default=0) \
                if target else 0
            results.append(_Result(link_id, lines[link_id], link.url, fits(stems, snippet), score))
        return results

    def _right_results(self, page: Page, question: str, gold: list[str], settings: BrowserSettings,
                       quotes: list[Quote]) -> list[_Result]:
        """Results that fit the question and hold a quotable answer not quoted yet, best first."""
        quoted = {q.url for q in quotes}
        right = [r for r in self._results(page, question, gold, settings) if r.fits and r.score
                 and r.url not in quoted]
        return sorted(right, key=lambda r: (-r.score, r.link))

    def _on_results(self, browser: Browser, page: Page, question: str, gold: list[str], supported: list[Quote],
                    rng: random.Random | None) -> str | None:
        """Open the result that holds the answer (scrolling to it first), or search again."""
        right = self._right_results(page, question, gold, browser.settings, browser.quotes)
        if not right:
            return "End: Answer" if supported else self._search(browser, question, rng)
        moves = plan_moves(page, browser.cursor, right[0].line, right[0].line, browser.settings, needles=[])
        if moves is None:
            return "End: Answer" if supported else self._search(browser, question, rng)
        return moves[0] if moves else f"Clicked on link {right[0].link}"

    def _on_article(self, browser: Browser, page: Page, question: str, gold: list[str], supported: list[Quote],
                    rng: random.Random | None) -> str | None:
        """Quote the best passage with the answer (bringing it into view first), or go back."""
        settings = browser.settings
        used = sum(len(q.text) for q in browser.quotes)
        fresh = [p for p in self._candidates(page, question, gold, settings)
                 if len(p.text) <= settings.max_quote_chars - used and not _already_quoted(p, page, browser.quotes)]
        if len(browser.quotes) >= settings.max_quotes:
            fresh = []
        for passage in fresh:
            moves = plan_moves(page, browser.cursor, passage.first_line, passage.last_line, settings,
                          find_needles(question), rng)
            # Bringing it into view, quoting and ending must fit in the actions left.
            if moves is None or len(moves) + (1 if supported else 2) > browser.actions_left:
                continue
            return moves[0] if moves else quote_action(passage.text, " ".join(page.plain_lines))
        if supported and not (browser.actions_left >= 5 and self._another_page(browser, question, gold)):
            return "End: Answer"
        return "Back"

    def _another_page(self, browser: Browser, question: str, gold: list[str]) -> bool:
        """Whether the last search listed another page with the answer, worth going back for."""
        searches = [a[len("Search "):] for a in browser.episode.actions if a.startswith("Search ")]
        if not searches:
            return False
        settings = browser.settings
        results = self.backend.search(searches[-1], k=settings.search_results)
        page = render_search(searches[-1], results, self.backend)
        return bool(self._right_results(page, question, gold, settings, browser.quotes))

    # --- generation ---------------------------------------------------------------------

    def demonstrate(self, question: str, gold: list[str], rng: random.Random) -> Demo | None:
        """One episode on `question`, ending with a checked answer; None when the answer was not reached."""
        browser = Browser(self.backend, replace(self.settings))
        browser.reset(question)
        want = 2 if rng.random() < P_TWO_QUOTES else 1
        wrong_click, wrong_clicks = rng.random() < P_WRONG_CLICK, 0
        while not browser.done:
            action = None
            if wrong_click and browser.page is not None and browser.page.is_search_results:
                action = self._wrong_click(browser, question, gold, rng)
                wrong_click, wrong_clicks = action is None, wrong_clicks + (action is not None)
            action = action or self.label(browser, question, gold, want_quotes=want, rng=rng)
            if action is None:
                return None
            browser.step(action, by="expert")
        episode = browser.episode
        if episode.end != "Answer" or not is_supported([q.text for q in episode.quotes], gold):
            return None
        episode.answer, episode.answered_by = compose_answer(episode.quotes, gold, question, rng), "expert"
        return Demo(episode, episode.answer, wrong_clicks) if episode.answer else None

    def _wrong_click(self, browser: Browser, question: str, gold: list[str], rng: random.Random) -> str | None:
        """A visible result that fits the question but holds no answer, when a right one is listed too."""
        page, settings = browser.page, browser.settings
        window = range(browser.cursor, browser.cursor + settings.window_lines)
        results = self._results(page, question, gold, settings)
        if browser.quotes or not any(r.fits and r.score for r in results):
            return None
        wrong = [r.link for r in results if r.fits and not r.score and r.line in window
                 and self._page(r.url, settings.line_width) is not None]
        return f"Clicked on link {rng.choice(wrong)}" if wrong else None


def label(browser: Browser, question: str | None = None, gold: list[str] | None = None, *,
          want_quotes: int = 1, rng: random.Random | None = None) -> str | None:
    """The expert's next action for any live browser (see `Expert.label`); None when it sees no way on."""
    return Expert(browser.backend, browser.settings).label(browser, question, gold, want_quotes=want_quotes, rng=rng)


def render_search(query: str, results, backend: Backend) -> Page:
    """The search page the browser shows for `results` (always at the default width, as the browser does)."""
    return search_page(query, results, getattr(backend, "name", "search"))


def _already_quoted(passage: Passage, page: Page, quotes: list[Quote]) -> bool:
    return any(q.url == page.url and (passage.text in q.text or q.text in passage.text) for q in quotes)

