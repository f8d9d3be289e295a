"""Ask mode: type a question, watch the agent browse, read the answer and its sources.

The agent runs on a worker thread. Its `on_step` callback copies each browser's
screen into a `BrowserView` and hands it to the UI thread; the same callback is
where a cancel takes effect (it raises, which stops the rollout at that step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    ContentSwitcher,
    Footer,
    Header,
    Input,
    OptionList,
    Select,
    Static,
)
from textual.worker import Worker, get_current_worker

from webqa.env.browser import Browser
from webqa.tui.view import BrowserView
from webqa.tui.widgets import (
    PageView,
    SidePanel,
    StatusLine,
    answer_renderable,
    steady_cursors,
)
from webqa.types import Answer, StepResult

# `webqa.agent.answer`'s shape: answer_fn(question, n=..., backend=..., on_step=...) -> Answer.
AnswerFn = Callable[..., Answer]
MAX_N = 16


class Cancelled(Exception):
    """Raised inside the agent's thread to stop it after the current step."""


@dataclass
class Asked:
    """One question of this session's history: what came back, and the last screen of each episode."""

    question: str
    result: Answer | None = None
    message: str = ""
    views: dict[int, BrowserView] = field(default_factory=dict)


class AskScreen(Screen):
    """The question box, the live browser, the answer; earlier questions under F2."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("f2", "history", "History"),
        Binding("f3", "flip", "Page/Answer"),
        Binding("f5", "next_episode", "Next episode"),
    ]

    def __init__(self, answer_fn: AnswerFn, backend: str = "local", n: int = 1):
        super().__init__()
        self.answer_fn = answer_fn
        self.backend, self.n = backend, n
        self.history: list[Asked] = []
        self.current: Asked | None = None  # the question shown (running, or picked from the history)
        self.shown = 0  # which episode's browser is on screen
        self.worker: Worker | None = None
        # Set until the agent's thread has returned: a cancelled worker reads as stopped at once,
        # but its thread only stops at its next step.
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="ask-bar"):
            yield Input(placeholder="Type a question and press Enter", id="question")
            yield Select([("local", "local"), ("web", "web")], value=self.backend, allow_blank=False, id="backend")
            yield Static("n", id="n-label")
            yield Input(str(self.n), type="integer", id="n", tooltip="episodes to sample (best-of-n)")
        with Horizontal(id="main"):
            with ContentSwitcher(initial="page-pane", id="left"):
                with VerticalScroll(id="page-pane"):
                    yield PageView(id="page")
                with VerticalScroll(id="answer-pane"):
                    yield Static(id="answer")
            with VerticalScroll(id="side-pane"):
                yield SidePanel(id="side")
        yield StatusLine("Ask a question. Options: backend (local or web) and n, the episodes to sample.",
                         id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#page-pane").border_title = "Page"
        self.query_one("#answer-pane").border_title = "Answer"
        self.query_one("#side-pane").border_title = "Browser"
        self.query_one("#page", PageView).show(BrowserView(question=""))
        self.query_one("#side", SidePanel).show(BrowserView(question=""))
        self.query_one("#question", Input).focus()
        steady_cursors(self)

    # --- asking ---------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.ask(self.query_one("#question", Input).value)

    def ask(self, question: str) -> None:
        """Start the agent on `question` with the options on screen."""
        status = self.query_one("#status", StatusLine)
        question = " ".join(question.split())
        if self.busy:
            status.say("Still working on the last question: Escape cancels it.")
            return
        if not question:
            status.say("Type a question first.")
            return
        n_text = self.query_one("#n", Input).value.strip()
        if not n_text.isdigit() or not 1 <= int(n_text) <= MAX_N:
            status.say(f"n must be a whole number from 1 to {MAX_N}.")
            return
        self.n, self.backend = int(n_text), str(self.query_one("#backend", Select).value)
        self.current, self.shown = Asked(question), 0
        self.query_one("#left", ContentSwitcher).current = "page-pane"
        self._draw_browser()
        plural = "s" if self.n > 1 else ""
        status.say(f"Working: {self.n} episode{plural} on the {self.backend} backend… (Escape cancels)")
        self.busy = True
        self.worker = self._run(question, self.n, self.backend, self.current)

    @work(thread=True, exclusive=True, exit_on_error=False, group="agent")
    def _run(self, question: str, n: int, backend: str, asked: Asked) -> None:
        worker = get_current_worker()

        def on_step(index: int, action: str, result: StepResult, browser: Browser) -> None:
            if worker.is_cancelled:
                raise Cancelled()
            view = BrowserView.of(browser)  # now, on this thread: the browser moves on after we return
            self.app.call_from_thread(self._stepped, asked, index, view)

        try:
            result = self.answer_fn(question, n=n, backend=backend, on_step=on_step)
        except Cancelled:
            self.app.call_from_thread(self._finished, asked, None, "Cancelled.")
            return
        except Exception as exc:  # noqa: BLE001 - any failure is shown, the app goes on
            self.app.call_from_thread(self._finished, asked, None, f"Failed: {type(exc).__name__}: {exc}")
            return
        if worker.is_cancelled:
            self.app.call_from_thread(self._finished, asked, None, "Cancelled.")
        elif result.error:  # the backend could not be reached (offline): say so, not "no answer"
            self.app.call_from_thread(self._finished, asked, None, result.error)
        else:
            self.app.call_from_thread(self._finished, asked, result, "")

    def _stepped(self, asked: Asked, index: int, view: BrowserView) -> None:
        asked.views[index] = view
        if asked is self.current and index == self.shown:
            self._draw_browser()
        steps = sum(len(v.actions) for v in asked.views.values())
        self.query_one("#status", StatusLine).say(f"Working: {steps} actions so far… (Escape cancels)")

    def _finished(self, asked: Asked, result: Answer | None, message: str) -> None:
        self.busy = False
        asked.result, asked.message = result, message
        self.history.append(asked)
        if asked is self.current:
            self._draw_answer()
        if result is not None:
            message = f"Answered in {result.seconds:.1f} s. F3 shows the pages, F2 earlier questions."
        self.query_one("#status", StatusLine).say(message)

    def action_cancel(self) -> None:
        if self.busy and self.worker is not None:
            self.worker.cancel()
            self.query_one("#status", StatusLine).say("Cancelling after the current step…")

    # --- what is on screen ---------------------------------------------------------------

    def _draw_browser(self) -> None:
        asked = self.current
        view = asked.views.get(self.shown, BrowserView(question=asked.question)) if asked else BrowserView("")
        episodes = len(asked.result.candidates) if asked and asked.result else self.n
        heading = f"Episode {self.shown + 1} of {episodes} (F5 next)" if episodes > 1 else None
        self.query_one("#page", PageView).show(view)
        self.query_one("#side", SidePanel).show(view, heading)

    def _draw_answer(self) -> None:
        asked = self.current
        answer = self.query_one("#answer", Static)
        if asked.result is None:
            answer.update(asked.message or "No answer.")
            return
        answer.update(answer_renderable(asked.result))
        self.query_one("#left", ContentSwitcher).current = "answer-pane"

    def action_flip(self) -> None:
        switcher = self.query_one("#left", ContentSwitcher)
        switcher.current = "answer-pane" if switcher.current == "page-pane" else "page-pane"

    def action_next_episode(self) -> None:
        if self.current is None:
            return
        episodes = len(self.current.result.candidates) if self.current.result else self.n
        self.shown = (self.shown + 1) % max(episodes, 1)
        self._draw_browser()
        self.query_one("#left", ContentSwitcher).current = "page-pane"

    def action_history(self) -> None:
        if not self.history:
            self.query_one("#status", StatusLine).say("No earlier questions yet.")
            return
        self.app.push_screen(HistoryScreen([asked.question for asked in self.history]), self._pick_history)

    def _pick_history(self, index: int | None) -> None:
        if index is None:
            return
        self.current, self.shown = self.history[index], 0
        self.query_one("#question", Input).value = self.current.question
        self._draw_browser()
        self._draw_answer()


class HistoryScreen(ModalScreen[int | None]):
    """This session's earlier questions; Enter shows one again."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Close")]

    def __init__(self, questions: list[str]):
        super().__init__()
        self.questions = questions

    def compose(self) -> ComposeResult:
        options = OptionList(*[f"{number}. {q}" for number, q in enumerate(self.questions, 1)], id="history")
        options.border_title = "Earlier questions (Enter shows one)"
        yield options
        yield Footer(compact=True)

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = len(self.questions) - 1
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_index)
