"""Compare mode: two answers side by side; a key says which is better, and the judgement is saved at once.

Each judgement is appended (flushed and fsynced) to the comparisons file the
reward model trains on. Pairs already judged in that file are not shown again,
so quitting and starting over picks up where the person stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from webqa.comparisons import append_comparison, read_comparisons
from webqa.tui.pairs import Pair, judgement, pair_key
from webqa.tui.widgets import StatusLine, compared_renderable


class CompareScreen(Screen):
    """The question, the left and right answers with their sources, and the progress."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1,left", "judge('left')", "Left is better", key_display="1/←", priority=True),
        Binding("2,right", "judge('right')", "Right is better", key_display="2/→", priority=True),
        Binding("t", "judge('tie')", "Tie", priority=True),
        Binding("s", "skip", "Skip", priority=True),
    ]

    def __init__(self, pairs: list[Pair], out: str | Path, labeller: str = ""):
        super().__init__()
        self.out, self.labeller = Path(out), labeller
        judged = {pair_key(c.question, c.a, c.b) for c in read_comparisons(self.out)} if self.out.exists() else set()
        self.total = len(pairs)
        self.todo = [pair for pair in pairs if pair.key not in judged]
        self.done_before = self.total - len(self.todo)
        self.judged = self.skipped = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="question")
        with Horizontal(id="main"):
            with VerticalScroll(id="left-pane"):
                yield Static(id="answer-a")
            with VerticalScroll(id="right-pane"):
                yield Static(id="answer-b")
        yield StatusLine(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#left-pane").border_title = "1 · Left answer"
        self.query_one("#right-pane").border_title = "2 · Right answer"
        self.draw()

    @property
    def pair(self) -> Pair | None:
        return self.todo[0] if self.todo else None

    def draw(self) -> None:
        pair = self.pair
        position = self.done_before + self.judged + self.skipped + 1
        if pair is None:
            self.query_one("#question", Static).update(Text("No pairs left to judge.", style="bold"))
            self.query_one("#answer-a", Static).update("")
            self.query_one("#answer-b", Static).update("")
        else:
            self.query_one("#question", Static).update(
                Text.assemble((f"Pair {position} of {self.total}: ", "bold"), pair.question))
            self.query_one("#answer-a", Static).update(compared_renderable(pair.a))
            self.query_one("#answer-b", Static).update(compared_renderable(pair.b))
            for pane in ("#left-pane", "#right-pane"):
                self.query_one(pane, VerticalScroll).scroll_home(animate=False)
        self.query_one("#status", StatusLine).say(
            f"Judged {self.judged} this session, {self.done_before} before, {self.skipped} skipped; "
            f"saved to {self.out.name}. Which answer is more helpful and better supported by its sources?")

    def action_judge(self, choice: str) -> None:
        pair = self.pair
        if pair is None:
            return
        append_comparison(self.out, judgement(pair, choice, self.labeller))
        self.todo.pop(0)
        self.judged += 1
        self.draw()

    def action_skip(self) -> None:
        if self.pair is not None:
            self.todo.pop(0)
            self.skipped += 1
            self.draw()
