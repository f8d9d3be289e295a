"""The record mode's dialogs: resume an unfinished episode, end an episode, write the answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static, TextArea

from webqa.tui.recording import Progress
from webqa.tui.widgets import StatusLine, heading, quote_lines, steady_cursors
from webqa.types import Quote


class ResumeDialog(ModalScreen[str]):
    """An earlier session left an episode unfinished: resume it or discard it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "dismiss('resume')", "Resume"), Binding("d", "dismiss('discard')", "Discard")]

    def __init__(self, progress: Progress):
        super().__init__()
        self.progress = progress

    def compose(self) -> ComposeResult:
        actions = len(self.progress.actions)
        text = Text.assemble(("An unfinished episode was found.\n\n", "bold"), "Question: ", self.progress.question,
                             f"\nActions taken: {actions}",
                             "\nAn answer draft was saved." if self.progress.answer_draft else "",
                             "\n\nR resumes it where it stopped; D discards it.")
        with Vertical(classes="dialog"):
            yield Static(text)
        yield Footer(compact=True)


class EndDialog(ModalScreen[str | None]):
    """How the episode ends: with an answer, or the question is nonsense or controversial."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "dismiss('Answer')", "Answer"),
        Binding("n", "dismiss('Nonsense')", "Nonsense"),
        Binding("c", "dismiss('Controversial')", "Controversial"),
        Binding("escape", "dismiss(None)", "Keep browsing"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text.assemble(("End the episode\n\n", "bold"),
                                       "A  End: Answer (then write the answer from the quotes)\n"
                                       "N  End: Nonsense (the question makes no sense)\n"
                                       "C  End: Controversial (no answer without taking sides)\n"
                                       "Esc  keep browsing"))
        yield Footer(compact=True)


class AnswerArea(TextArea):
    """The answer's text area; it takes its own citation and save keys, in the order they were typed.

    As screen bindings, F1 after `Danube` could run before `Danube` is in the text, since the
    screen's bindings are looked up only after the area has passed the key on.
    """

    KEYS: ClassVar[dict[str, str]] = {"f1": "[1]", "f2": "[2]", "f3": "[3]", "f4": "[4]"}

    async def _on_key(self, event: events.Key) -> None:
        if event.key in self.KEYS or event.key == "ctrl+s":
            event.stop()
            event.prevent_default()
            editor = self.screen
            if event.key == "ctrl+s":
                editor.action_save()
            else:
                editor.action_cite(int(event.key[1:]))
            return
        await super()._on_key(event)


class AnswerEditor(ModalScreen[str | None]):
    """Write the answer from the numbered quotes; F1-F4 cite them. Refuses an answer that cites no
    quote, or cites one that does not exist."""

    # Shown in the footer; while the answer area has focus, it handles these keys itself (AnswerArea).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save answer"),
        Binding("f1", "cite(1)", "Cite [1]"),
        Binding("f2", "cite(2)", "[2]"),
        Binding("f3", "cite(3)", "[3]"),
        Binding("f4", "cite(4)", "[4]"),
        Binding("escape", "dismiss(None)", "Back to browsing"),
    ]

    def __init__(self, question: str, quotes: list[Quote], draft: str, problem: Callable[[str], str | None],
                 on_change: Callable[[str], None]):
        super().__init__()
        self.question, self.quotes, self.draft = question, quotes, draft
        self.problem, self.on_change = problem, on_change

    def compose(self) -> ComposeResult:
        parts = [heading("Question"), Text(self.question), heading("Quotes")]
        for number, quote in enumerate(self.quotes, 1):
            parts += quote_lines(number, quote)
        with Vertical(id="editor"):
            with VerticalScroll(id="editor-quotes"):
                yield Static(Group(*parts))
            yield AnswerArea(self.draft, id="answer-text", soft_wrap=True, show_line_numbers=False)
            yield StatusLine(id="answer-check")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#editor-quotes").border_title = "Write the answer from these quotes"
        self.query_one("#answer-text").border_title = "Answer (cite quotes as [1], [2]…)"
        area = self.query_one(TextArea)
        area.move_cursor(area.document.end)
        area.focus()
        steady_cursors(self)
        self._check(self.draft)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        text = event.text_area.text
        self.on_change(text)
        self._check(text)

    def _check(self, text: str) -> str | None:
        problem = self.problem(text)
        self.query_one("#answer-check", StatusLine).say(
            f"Not yet: {problem}" if problem else "Ready: Ctrl+S saves the demonstration.")
        return problem

    def action_cite(self, number: int) -> None:
        if number > len(self.quotes):
            self.query_one("#answer-check", StatusLine).say(f"There is no quote [{number}].")
            return
        self.query_one(TextArea).insert(f"[{number}]")

    def action_save(self) -> None:
        text = self.query_one(TextArea).text
        if self._check(text) is None:
            self.dismiss(text)
