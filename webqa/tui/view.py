"""What the screen shows of a browser, copied out of it at one moment.

The agent's browsers change on a worker thread; the UI thread draws later. So a
step is turned into a `BrowserView` on the thread that took it, and only that
immutable copy crosses over.
"""

from __future__ import annotations

from dataclasses import dataclass

from webqa.env.browser import Browser
from webqa.types import Quote


@dataclass(frozen=True)
class BrowserView:
    """The browser's state as a person sees it: the page window, quotes, actions and the observation."""

    question: str
    title: str = ""
    url: str = ""
    first_line: int = 0  # page line number (1-based) of lines[0]; 0 before the first page
    lines: tuple[str, ...] = ()  # the visible window, with link markup 【id†text】
    total_lines: int = 0
    quotes: tuple[Quote, ...] = ()
    actions: tuple[str, ...] = ()  # every action taken, as written
    deciders: tuple[str, ...] = ()  # who chose each action (`Step.by`): model, reader, rule:..., human
    actions_left: int = 0
    error: str | None = None  # the last step's message, if it failed
    end: str | None = None  # how the episode ended, once it has
    observation: str = ""  # exactly what the model reads

    @classmethod
    def of(cls, browser: Browser) -> BrowserView:
        """Copy what is on `browser`'s screen now."""
        episode, page = browser.episode, browser.page
        lines: tuple[str, ...] = ()
        if page is not None:
            lines = tuple(page.lines[browser.cursor : browser.cursor + browser.settings.window_lines])
        return cls(
            question=episode.question,
            title=page.title if page else "",
            url=page.url if page else "",
            first_line=browser.cursor + 1 if page and page.lines else 0,
            lines=lines,
            total_lines=len(page.lines) if page else 0,
            quotes=tuple(browser.quotes),
            actions=tuple(episode.actions),
            deciders=tuple(step.by for step in episode.steps),
            actions_left=browser.actions_left,
            error=episode.steps[-1].error if episode.steps else None,
            end=episode.end,
            observation=browser.observation(),
        )

    @property
    def scrollbar(self) -> str:
        """`lines 1-12 of 40`, as the observation's scrollbar says it."""
        if not self.total_lines:
            return "no page yet" if not self.url else "empty page"
        return f"lines {self.first_line}-{self.first_line + len(self.lines) - 1} of {self.total_lines}"
