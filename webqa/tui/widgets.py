"""The panels every mode shares: the page, the side panel (quotes, actions), answers and a status line.

Everything is plain text with bold, underline and reverse for emphasis, never
colour alone, so the screens read the same on a monochrome terminal.
"""

from __future__ import annotations

import itertools
import re

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual.screen import Screen
from textual.widgets import Input, Static, TextArea

from webqa.tui.view import BrowserView
from webqa.types import Answer, Candidate, ComparedAnswer, Quote, domain_of

LINK = re.compile(r"【\d+†[^】]*】")  # a numbered link in a rendered page line
CITATION = re.compile(r"\[\d+\]")


def heading(text: str) -> Text:
    return Text(text, style="bold underline")


def _with_links(line: str) -> Text:
    text = Text(line)
    text.highlight_regex(LINK, "bold")
    return text


def _with_citations(answer: str) -> Text:
    text = Text(answer)
    text.highlight_regex(CITATION, "bold")
    return text


def quote_lines(number: int, quote: Quote, url: bool = False) -> list[RenderableType]:
    """`[1] Title (domain)`, optionally the URL, and the quoted passage, indented under it."""
    lines: list[RenderableType] = [Text.assemble((f"[{number}] ", "bold"), f"{quote.title} ({domain_of(quote.url)})")]
    if url:
        lines.append(Padding(Text(quote.url, style="italic"), (0, 0, 0, 4)))
    lines.append(Padding(Text(f"\"{quote.text}\""), (0, 0, 0, 4)))
    return lines


class PageView(Static):
    """The page in the browser: title, URL, where the window is, and the window's lines numbered."""

    DEFAULT_CSS = """
    PageView { padding: 0 1; }
    """

    def show(self, view: BrowserView) -> None:
        self.update(page_renderable(view))


def page_renderable(view: BrowserView) -> RenderableType:
    if not view.url:
        return Text("No page yet: the first action is a search.", style="italic")
    head = Text.assemble(("Title: ", "bold"), view.title, "\n", ("URL:   ", "bold"), view.url, "\n",
                         (f"{view.scrollbar.capitalize()}", "italic"))
    # The page's own line numbers: a person quotes lines by them (`12-14`), and they survive wrapping.
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right", style="dim", no_wrap=True)
    table.add_column(ratio=1, overflow="fold")
    for offset, line in enumerate(view.lines):
        table.add_row(str(view.first_line + offset), _with_links(line))
    return Group(head, Text(""), table)


class SidePanel(Static):
    """The question, the quotes so far, the actions taken and how many are left."""

    DEFAULT_CSS = """
    SidePanel { padding: 0 1; }
    """

    def show(self, view: BrowserView, heading_line: str | None = None) -> None:
        self.update(side_renderable(view, heading_line))


def side_renderable(view: BrowserView, heading_line: str | None = None) -> RenderableType:
    parts: list[RenderableType] = []
    if heading_line:
        parts.append(Text(heading_line, style="reverse"))
    parts += [heading("Question"), Text(view.question or "-")]
    parts.append(heading(f"Quotes ({len(view.quotes)})"))
    for number, quote in enumerate(view.quotes, 1):
        parts += quote_lines(number, quote)
    if not view.quotes:
        parts.append(Text("none yet", style="italic"))
    parts.append(heading(f"Actions ({view.actions_left} left)"))
    for number, (action, by) in enumerate(itertools.zip_longest(view.actions, view.deciders, fillvalue=""), 1):
        line = Text(f"{number:>2}. {action}")
        if by and by != "human":  # who chose it, where the agent browsed: model, reader or a rule
            line.append(f" · {by}", style="dim")
        parts.append(line)
    if view.end:
        parts.append(Text(f"Ended: {view.end}", style="bold"))
    if view.error:
        parts.append(Text(f"! {view.error}", style="bold"))
    return Group(*parts)


def answer_renderable(result: Answer) -> RenderableType:
    """The answer with its numbered references; with several candidates, each with its reward score."""
    parts: list[RenderableType] = [heading("Answer"), _with_citations(result.text), Text("")]
    if result.references:
        parts.append(heading("References"))
        for number, ref in enumerate(result.references, 1):
            parts += quote_lines(number, Quote(title=ref.title, url=ref.url, text=ref.quote), url=True)
        parts.append(Text(""))
    if len(result.candidates) > 1:
        parts.append(heading("Candidates (reward score, * = chosen)"))
        for number, candidate in enumerate(result.candidates, 1):
            parts.append(candidate_line(number, candidate, candidate.episode is result.trajectory))
        parts.append(Text(""))
    parts.append(Text(f"{result.seconds:.1f} s, {len(result.trajectory.steps)} actions", style="italic"))
    return Group(*parts)


def candidate_line(number: int, candidate: Candidate, chosen: bool) -> Text:
    score = "  -  " if candidate.score is None else f"{candidate.score:+.2f}"
    line = Text.assemble(("* " if chosen else "  ", "bold"), f"{number}. [{score}] ")
    line.append_text(_with_citations(candidate.text or "(no answer)"))
    if chosen:
        line.stylize("bold")
    return line


def compared_renderable(answer: ComparedAnswer) -> RenderableType:
    """One side of a comparison: the answer, then each quote it cites by number."""
    parts: list[RenderableType] = [_with_citations(answer.text or "(no answer)"), Text(""), heading("Sources")]
    for number, quote in enumerate(answer.quotes, 1):
        parts += quote_lines(number, quote, url=True)
    if not answer.quotes:
        parts.append(Text("none", style="italic"))
    return Group(*parts)


class StatusLine(Static):
    """One line under the panels: progress, or the last message (a refusal, an error)."""

    DEFAULT_CSS = """
    StatusLine { height: auto; max-height: 3; padding: 0 1; text-style: bold; }
    """

    def say(self, message: str) -> None:
        self.update(Text(message))


def steady_cursors(screen: Screen) -> None:
    """Stop cursors blinking in headless runs, so that screenshots and snapshots are the same every time."""
    if screen.app.is_headless:
        for widget in screen.query(Input):
            widget.cursor_blink = False
        for widget in screen.query(TextArea):
            widget.cursor_blink = False
