"""Record mode: a person drives the policy's browser and writes the answer; each episode becomes a demonstration.

The command box does most of it: Enter searches the typed words, opens a link
given by its number, or runs a typed command (`Scrolled down 2`, `End: Answer`).
F2 finds the typed text in the page; F3 quotes it (exact text, `first ... last`,
or page line numbers `3-5` as shown beside the page). Browser steps run on a
worker thread: the live web can be slow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Header, Input, Static

from webqa.tui.dialogs import AnswerEditor, EndDialog, ResumeDialog
from webqa.tui.recording import Progress, Recorder, command_for
from webqa.tui.view import BrowserView
from webqa.tui.widgets import PageView, SidePanel, StatusLine, steady_cursors

SCROLL = Binding.Group("Scroll ")  # the footer puts the next key right after a group's label
HELP = "Enter: search words, a link number or a command · F2 finds · F3 quotes text or lines 3-5"


class RecordScreen(Screen):
    """The browser as the model sees it, a command box, and a counter of recorded demonstrations."""

    # Keys that read the typed text are not priority bindings: those could run before the last
    # keys typed have reached the input.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "find", "Find"),
        Binding("f3", "quote", "Quote"),
        # Priority, or a scrolling container's own page keys would take them; they read no typed
        # text, so their order cannot matter.
        Binding("pageup", "step('Scrolled up 1')", "Scroll up", key_display="PgUp", group=SCROLL, priority=True),
        Binding("pagedown", "step('Scrolled down 1')", "Scroll down", key_display="PgDn", group=SCROLL,
                priority=True),
        Binding("f4", "step('Top')", "Top"),
        Binding("f5", "step('Back')", "Back"),
        Binding("f6", "end", "End…"),
        Binding("ctrl+z", "undo", "Undo"),
        Binding("f7", "observation", "Raw"),
        Binding("f8", "skip", "Skip"),
    ]

    def __init__(self, recorder: Recorder):
        super().__init__()
        self.recorder = recorder
        self.busy = False  # a browser step is running on the worker thread

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            with ContentSwitcher(initial="page-pane", id="left"):
                with VerticalScroll(id="page-pane"):
                    yield PageView(id="page")
                with VerticalScroll(id="observation-pane"):
                    yield Static(id="observation")
            with VerticalScroll(id="side-pane"):
                yield SidePanel(id="side")
        yield StatusLine(HELP, id="status")
        with Horizontal(id="command-bar"):
            yield Static(">", id="prompt")
            yield Input(id="command", compact=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#page-pane").border_title = "Page"
        self.query_one("#observation-pane").border_title = "Observation: exactly what the model reads"
        self.query_one("#side-pane").border_title = "Browser"
        self.query_one("#command", Input).focus()
        steady_cursors(self)
        pending = self.recorder.pending()
        if pending is not None:
            self.app.push_screen(ResumeDialog(pending), lambda choice: self._after_resume(choice, pending))
        else:
            self.next_question()

    # --- questions and episodes -------------------------------------------------------

    def _after_resume(self, choice: str, pending: Progress) -> None:
        if choice == "resume":
            self._in_worker(lambda: self.recorder.resume(pending), after=self._resumed)
        else:
            self.recorder.discard(pending)
            self.say("Discarded the unfinished episode.")
            self.next_question()

    def _resumed(self, problem: str | None) -> None:
        self.say(problem or f"Resumed: {len(self.recorder.progress.actions)} actions replayed.")
        self._after_step()

    def next_question(self) -> None:
        """Open the next question of the questions file, or ask for one to be typed."""
        record = self.recorder.next_question()
        if record is not None:
            self.recorder.start(record)
        self.draw()

    def draw(self) -> None:
        recorder = self.recorder
        left = f" · questions left: {recorder.remaining}" if recorder.questions else ""
        counter = f"Recorded: {recorder.recorded} ({recorder.recorded_now} this session){left}"
        side = self.query_one("#side", SidePanel)
        if recorder.progress is None:
            view = BrowserView(question="")
            side.update(Text.assemble((counter, "reverse"), "\n\nNo episode open: type a question below."))
        else:
            view = BrowserView.of(recorder.browser)
            side.show(view, counter)
        self.query_one("#page", PageView).show(view)
        self.query_one("#observation", Static).update(Text(view.observation))
        self.query_one("#command", Input).placeholder = (
            "Search words, a link number, or a command; Enter" if recorder.progress
            else "Type a question to answer and press Enter")

    def say(self, message: str) -> None:
        self.query_one("#status", StatusLine).say(message)

    # --- actions ---------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if self.recorder.progress is None:
            self.recorder.start({"question": text})
            event.input.value = ""
            self.say(HELP)
            self.draw()
            return
        self._run(lambda: self.recorder.act(command_for(text)))

    def action_find(self) -> None:
        text = self.query_one("#command", Input).value.strip()
        if not text:
            self.say("Type the words to find, then F2.")
            return
        self._run(lambda: self.recorder.act(f"Find in page: {text}"))

    def action_quote(self) -> None:
        text = self.query_one("#command", Input).value.strip()
        if not text:
            self.say("Type the text to quote (or page lines like 3-5), then F3.")
            return
        self._run(lambda: self.recorder.quote(text))

    def action_step(self, action: str) -> None:
        self._run(lambda: self.recorder.act(action), keep_input=True)

    def action_end(self) -> None:
        if self.recorder.progress is not None and not self.busy:
            self.app.push_screen(EndDialog(), self._ended)

    def _ended(self, reason: str | None) -> None:
        if reason is not None:
            self._run(lambda: self.recorder.act(f"End: {reason}"), keep_input=True)

    def action_undo(self) -> None:
        if self.busy or self.recorder.progress is None:
            return
        self.say("Took back the last action." if self.recorder.undo() else "Nothing to take back.")
        self.draw()

    def action_observation(self) -> None:
        switcher = self.query_one("#left", ContentSwitcher)
        switcher.current = "observation-pane" if switcher.current == "page-pane" else "page-pane"

    def action_skip(self) -> None:
        if self.busy or self.recorder.progress is None:
            return
        self.recorder.discard()
        self.say("Skipped the question; nothing was recorded for it.")
        self.next_question()

    def _run(self, act: Callable[[], str | None], keep_input: bool = False) -> None:
        """Take an action off the UI thread; a refused one leaves the typed text, to be corrected."""
        if self.recorder.progress is None:
            self.say("Type a question first.")
            return

        def after(problem: str | None) -> None:
            if problem:
                self.say(f"Refused: {problem}")
            else:
                if not keep_input:
                    self.query_one("#command", Input).value = ""
                self.say(HELP)
            self._after_step()

        self._in_worker(act, after)

    def _in_worker(self, job: Callable[[], str | None], after: Callable[[str | None], None]) -> None:
        if self.busy:
            self.say("Busy: one action at a time.")
            return
        self.busy = True
        self._work(job, after)

    @work(thread=True, exit_on_error=False, group="browser")
    def _work(self, job: Callable[[], str | None], after: Callable[[str | None], None]) -> None:
        try:
            problem = job()
        except Exception as exc:  # noqa: BLE001 - a failing backend must not end the recording
            problem = f"{type(exc).__name__}: {exc}"
        self.app.call_from_thread(self._done, problem, after)

    def _done(self, problem: str | None, after: Callable[[str | None], None]) -> None:
        self.busy = False
        after(problem)

    def _after_step(self) -> None:
        """Draw the browser; when the episode has ended, write the answer or record it as it is."""
        self.draw()
        browser = self.recorder.browser
        if self.recorder.progress is None or not browser.done:
            return
        if browser.episode.end == "Answer":
            editor = AnswerEditor(browser.episode.question, browser.quotes, self.recorder.progress.answer_draft,
                                  self.recorder.answer_problem, self.recorder.save_draft)
            self.app.push_screen(editor, self._answered)
        else:
            self._record(None)

    def _answered(self, answer: str | None) -> None:
        if answer is None:  # back to browsing: take back End: Answer
            self.recorder.undo()
            self.say("Back to browsing; End: Answer was taken back.")
            self.draw()
            return
        self._record(answer)

    def _record(self, answer: str | None) -> None:
        demo = self.recorder.finish(answer)
        self.say(f"Recorded demonstration {self.recorder.recorded} ({demo.end}, {len(demo.steps)} actions) "
                 f"in {self.recorder.demos.name}.")
        self.query_one("#command", Input).value = ""
        self.next_question()
