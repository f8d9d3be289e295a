"""The text browser a model (or a person) drives, one WebGPT command per step.

    browser = Browser(LocalCorpus.default())
    observation = browser.reset("Which river flows through Vienna?")
    result = browser.step("Search Vienna river")
    result = browser.step("Clicked on link 0")
    ...
    browser.episode  # every action, observation and quote, as JSON-ready data

The browser knows nothing about models: it takes strings and returns text.
`step()` never raises; a bad action uses up one action, changes nothing, and
the next observation says what was wrong.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

from webqa.env.answering import passage_around
from webqa.env.backend import Backend, BackendError, Offline
from webqa.env.commands import Command, InvalidCommand, abbreviate, parse
from webqa.env.render import LINE_WIDTH, Page, render, search_page, strip_markup
from webqa.types import Episode, Quote, SearchResult, Step, StepResult

QUOTE_SEPARATOR = "━"


@dataclass
class BrowserSettings:
    """Knobs of the browser; the defaults are sized for a small model."""

    window_lines: int = 25
    max_actions: int = 20
    max_quotes: int = 4
    max_quote_chars: int = 1000  # all quotes together
    search_results: int = 8
    line_width: int = LINE_WIDTH


@dataclass
class _View:
    """A page in the history, with where the reader was on it."""

    page: Page
    cursor: int = 0


@dataclass
class _State:
    question: str = ""
    history: list[_View] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)
    past_actions: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # URLs of the pages `Back` left, in order
    results: list[SearchResult] = field(default_factory=list)  # the latest search's results
    actions_left: int = 0
    done: bool = False
    end: str | None = None
    last_error: str | None = None


class Browser:
    """A `reset()` / `step()` environment over a search-and-fetch backend."""

    def __init__(self, backend: Backend, settings: BrowserSettings | None = None, **overrides):
        self.backend = backend
        unknown = [name for name in overrides if not hasattr(BrowserSettings, name)]
        if unknown:
            raise TypeError(f"unknown browser setting {unknown[0]!r}")
        # A copy: settings shared between browsers (the policy's) stay as they are.
        self.settings = replace(settings or BrowserSettings(), **overrides)
        self._state = _State()
        self.episode = Episode(question="")

    # --- the environment interface ------------------------------------------

    def reset(self, question: str) -> str:
        """Start a new episode on `question`; returns the first observation."""
        self._state = _State(question=" ".join(str(question).split()), actions_left=self.settings.max_actions)
        settings = asdict(self.settings) | {"backend": getattr(self.backend, "name", type(self.backend).__name__)}
        if getattr(self.backend, "ranking", None):  # replaying needs it: clicks name search results by number
            settings["ranking"] = self.backend.ranking
        self.episode = Episode(question=self._state.question, settings=settings)
        self.episode.final_observation = self.observation()
        return self.episode.final_observation

    def step(self, action: str, by: str = "", proposed: str | None = None) -> StepResult:
        """Take one command; returns the next observation, whether the episode is over, and any error.

        `by` and `proposed` only annotate the episode (`Step.by`, `Step.proposed`): who chose the action.
        """
        state = self._state
        if state.done:
            return StepResult(self.observation(), True, "the episode is over; call reset() to start another")
        shown = self.observation()
        fatal = False
        try:
            command = parse(action)
            message = self._execute(command)
            state.past_actions.append(abbreviate(command))
        except (InvalidCommand, BackendError) as exc:
            message = str(exc)
            fatal = isinstance(exc, Offline)
            state.past_actions.append("(invalid action)" if isinstance(exc, InvalidCommand) else "(failed action)")
        except Exception as exc:  # a backend bug must not kill the episode either
            message = f"the browser failed on this action: {type(exc).__name__}: {exc}"
            state.past_actions.append("(failed action)")
        state.last_error = message
        state.actions_left -= 1
        if state.actions_left <= 0 and not state.done:
            state.done, state.end = True, "out of actions"
        self.episode.steps.append(Step(observation=shown, action=str(action), error=message, by=by, proposed=proposed))
        self.episode.quotes = list(state.quotes)
        self.episode.end = state.end
        self.episode.final_observation = self.observation()
        return StepResult(self.episode.final_observation, state.done, message, fatal)

    def checkpoint(self) -> object:
        """An opaque copy of the whole state, for `restore()`.

        A person recording a demonstration takes back an action the browser refused, so that
        the demonstration teaches no wasted action.
        """
        return copy.deepcopy((self._state, self.episode))

    def restore(self, checkpoint: object) -> None:
        """Go back to a state saved by `checkpoint()`; the checkpoint stays usable."""
        self._state, self.episode = copy.deepcopy(checkpoint)

    # --- what the model sees --------------------------------------------------

    @property
    def done(self) -> bool:
        return self._state.done

    @property
    def results(self) -> list[SearchResult]:
        """The results of the latest search (empty before one)."""
        return list(self._state.results)

    @property
    def quotes(self) -> list[Quote]:
        return list(self._state.quotes)

    @property
    def can_go_back(self) -> bool:
        """Whether `Back` has a page to return to."""
        return len(self._state.history) >= 2

    @property
    def pages_left(self) -> list[str]:
        """URLs of the pages the reader went back from, in order (a page left twice is listed twice)."""
        return list(self._state.left)

    @property
    def actions_left(self) -> int:
        return self._state.actions_left

    @property
    def page(self) -> Page | None:
        return self._state.history[-1].page if self._state.history else None

    @property
    def cursor(self) -> int:
        return self._state.history[-1].cursor if self._state.history else 0

    def observation(self) -> str:
        """The observation text, in WebGPT's order."""
        state = self._state
        view = state.history[-1] if state.history else None
        parts = ["♦Question", state.question, "♦Quotes"]
        parts += [f"From {q.title} ({q.domain}) > {q.text}" for q in state.quotes] or ["None"]
        parts += ["♦Past actions"] + (state.past_actions or ["None"])
        if view is None:
            parts += ["♦Title", "", "♦Scrollbar: 0-0 of 0 lines", "♦Text", ""]
        else:
            total = len(view.page.lines)
            window = view.page.lines[view.cursor : view.cursor + self.settings.window_lines]
            first = view.cursor + 1 if total else 0
            parts += ["♦Title", view.page.title, f"♦Scrollbar: {first}-{view.cursor + len(window)} of {total} lines"]
            parts += ["♦Text"] + window
        if state.last_error:
            parts.append(f"♦Error: {state.last_error}")
        parts += [f"♦Actions left: {state.actions_left}", "♦Next action"]
        return "\n".join(parts)

    # --- the commands -----------------------------------------------------------

    def _execute(self, command: Command) -> str | None:
        """Run a parsed command; returns an error message, or None when it worked."""
        handler = getattr(self, f"_do_{command.kind}")
        return handler(command)

    def _view(self) -> _View:
        if not self._state.history:
            raise InvalidCommand("there is no page yet; start with Search <query>")
        return self._state.history[-1]

    def _do_search(self, command: Command) -> None:
        results = self.backend.search(command.arg, k=self.settings.search_results)
        self._state.results = list(results)
        engine = getattr(self.backend, "name", "search")
        page = search_page(command.arg, results, engine)
        self._state.history.append(_View(page))

    def _do_click(self, command: Command) -> None:
        view = self._view()
        link_id = int(command.arg)
        if link_id >= len(view.page.links):
            count = len(view.page.links)
            raise InvalidCommand(f"there is no link {link_id} on this page (links are numbered 0-{count - 1})"
                                 if count else f"there is no link {link_id}: this page has no links")
        document = self.backend.fetch(view.page.links[link_id].url)
        self._state.history.append(_View(render(document, width=self.settings.line_width)))

    def _do_find(self, command: Command) -> str | None:
        view = self._view()
        hits = matching_lines(view.page.plain_lines, command.arg)
        if not hits:
            return f"{command.arg!r} was not found on this page"
        below = [line for line in hits if line > view.cursor]
        view.cursor = below[0] if below else hits[0]  # the next match, wrapping around to the top
        return None

    def _do_quote(self, command: Command) -> None:
        view = self._view()
        state, settings = self._state, self.settings
        text = find_quote(strip_markup(command.arg), " ".join(view.page.plain_lines))
        if text is None:
            raise InvalidCommand("that text is not on the current page; quote it exactly as shown "
                                 f"(or as <start>{QUOTE_SEPARATOR}<end>)")
        if len(state.quotes) >= settings.max_quotes:
            raise InvalidCommand(f"at most {settings.max_quotes} quotes; end with End: Answer")
        used = sum(len(q.text) for q in state.quotes)
        if used + len(text) > settings.max_quote_chars:
            raise InvalidCommand(f"quote too long: {len(text)} characters, {settings.max_quote_chars - used} left "
                                 f"of {settings.max_quote_chars}; quote less")
        if any(q.text == text and q.url == view.page.url for q in state.quotes):
            raise InvalidCommand("that passage is already quoted")
        page_text = " ".join(view.page.plain_lines)
        state.quotes.append(Quote(title=view.page.title, url=view.page.url, text=text,
                                  context=passage_around(page_text, text)))

    def _scroll(self, lines: int) -> str | None:
        view = self._view()
        last_start = max(0, len(view.page.lines) - self.settings.window_lines)
        target = min(max(0, view.cursor + lines), last_start)
        if target == view.cursor:
            return "already at the bottom of the page" if lines > 0 else "already at the top of the page"
        view.cursor = target
        return None

    def _do_scroll_down(self, command: Command) -> str | None:
        return self._scroll(command.amount * self.settings.window_lines)

    def _do_scroll_up(self, command: Command) -> str | None:
        return self._scroll(-command.amount * self.settings.window_lines)

    def _do_top(self, command: Command) -> str | None:
        view = self._view()
        if view.cursor == 0:
            return "already at the top of the page"
        view.cursor = 0
        return None

    def _do_back(self, command: Command) -> None:
        if not self.can_go_back:
            raise InvalidCommand("there is no previous page to go back to")
        self._state.left.append(self._state.history.pop().page.url)

    def _do_end(self, command: Command) -> None:
        if command.arg == "Answer" and not self._state.quotes:
            raise InvalidCommand("an answer needs at least one quote: Quote: <text> first "
                                 "(or End: Nonsense / End: Controversial)")
        self._state.done, self._state.end = True, command.arg


def matching_lines(plain_lines: list[str], needle: str) -> list[int]:
    """The lines where `Find in page: needle` can stop: case-insensitive, and a match may straddle a line break."""
    needle = " ".join(needle.lower().split())
    lines = [line.lower() for line in plain_lines]
    return [i for i in range(len(lines))
            if needle in lines[i] or (i + 1 < len(lines) and needle not in lines[i + 1]
                                      and needle in f"{lines[i]} {lines[i + 1]}")]


def normalize_with_map(text: str) -> tuple[str, list[int]]:
    """Lowercase `text` and collapse whitespace, remembering where each character came from."""
    out: list[str] = []
    where: list[int] = []
    for index, char in enumerate(text):
        if char.isspace():
            if not out or out[-1] == " ":
                continue
            char = " "
        out.append(char.lower() if len(char.lower()) == 1 else char)
        where.append(index)
    return "".join(out), where


# Quoting looks one page up many times a step (each sentence in view, in its long and short forms), and
# a whole page takes about 15 ms: 8% of a greedy episode's time before this cache.
_normalized_page = lru_cache(maxsize=8)(normalize_with_map)


_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """`normalize_with_map(text)[0]` without the map, in C rather than a Python loop over characters.

    The constrained sampler normalizes the line written so far for every candidate token, so
    this runs tens of thousands of times an episode (213,000 calls for 8 profiled episodes). The
    whole-string `lower()` differs from the per-character one only where a character lowercases to
    several (a length change) or for final sigma, whose lowercase depends on the next character;
    those few strings take the slow path.
    """
    collapsed = _WHITESPACE.sub(" ", text)
    if collapsed.startswith(" "):
        collapsed = collapsed[1:]
    lowered = collapsed.lower()
    if len(lowered) != len(collapsed) or "\u03a3" in collapsed:
        return normalize_with_map(text)[0]
    return lowered


def find_quote(quote: str, page_text: str) -> str | None:
    """The passage of `page_text` that `quote` names (full text or `start━end`), in the page's own words."""
    haystack, where = _normalized_page(page_text)  # shared: read only
    if QUOTE_SEPARATOR in quote:
        start_text, _, end_text = quote.partition(QUOTE_SEPARATOR)
        start, end = normalize_text(start_text).strip(), normalize_text(end_text).strip()
        if not start or not end:
            return None
        begin = haystack.find(start)
        if begin < 0:
            return None
        finish = haystack.find(end, begin + len(start))
        if finish < 0:
            return None
        finish += len(end)
    else:
        needle = normalize_text(quote).strip()
        if not needle:
            return None
        begin = haystack.find(needle)
        if begin < 0:
            return None
        finish = begin + len(needle)
    return page_text[where[begin] : where[finish - 1] + 1]


def replay(episode: Episode, browser: Browser) -> Episode:
    """Run an episode's actions again in `browser`; the result matches the original on the local corpus."""
    browser.reset(episode.question)
    for action in episode.actions:
        if browser.done:
            break
        browser.step(action)
    browser.episode.answer = episode.answer
    return browser.episode

