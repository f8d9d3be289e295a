"""The `webqa tui` application: one of three modes (ask, record, compare) in one screen layout.

    WebQAApp(TuiOptions(mode="ask")).run()
    WebQAApp(TuiOptions(mode="record", demos="demos.jsonl", questions="questions.jsonl")).run()
    WebQAApp(TuiOptions(mode="compare", pairs="pairs.json", comparisons="comparisons.jsonl")).run()

Every mode has the header, the main panels (the page or answers on the left,
the browser's state on the right), a status line and the footer of key bindings.
Each mode imports its parts when it starts, and the agent (torch and the model)
only on the first question, so the screen comes up at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from webqa.agent import DEFAULT_N
from webqa.env.backend import Backend
from webqa.tui.ask import AnswerFn

MODES = ("ask", "record", "compare")

CSS = """
#main { height: 1fr; }
#left { width: 2fr; }
#side-pane { width: 1fr; min-width: 24; }
#left-pane, #right-pane { width: 1fr; }
#page-pane, #answer-pane, #observation-pane, #side-pane, #left-pane, #right-pane {
    border: round $foreground 50%;
    border-title-style: bold;
    padding: 0;
}
#ask-bar { height: 3; }
#ask-bar #question { width: 1fr; }
#ask-bar #backend { width: 14; }
#ask-bar #n { width: 7; }
#ask-bar #n-label { width: 2; padding: 1 0 0 1; text-style: bold; }
#question { padding: 0 1; }
CompareScreen #question { height: auto; max-height: 3; }
#command-bar { height: 1; }
#prompt { width: 2; text-style: bold; }
#command { width: 1fr; }
.dialog {
    width: 70; max-width: 100%; height: auto;
    border: double $foreground; padding: 1 2; background: $surface;
}
ResumeDialog, EndDialog { align: center middle; }
#editor { height: 1fr; }
#editor-quotes { height: 1fr; border: round $foreground 50%; }
#answer-text { height: 8; border: round $foreground; }
#history { height: 1fr; border: round $foreground; }
"""


@dataclass
class TuiOptions:
    """What `webqa tui` was started with."""

    mode: str = "ask"
    backend: str | Backend = "local"  # ask: "local" or "web"; record: also a backend object
    n: int = DEFAULT_N  # ask: episodes to sample
    policy: str | None = None  # ask: a policy folder (default: the shipped one)
    demos: str | Path = "demos.jsonl"  # record: the demonstrations file to append to
    questions: str | Path | None = None  # record: JSONL with a `question` per line; none: type them
    recorder: str = ""  # record: who records, kept in each demonstration's settings
    pairs: str | Path | None = None  # compare: sampled candidates or comparisons to judge
    comparisons: str | Path = "comparisons.jsonl"  # compare: where judgements go
    labeller: str = ""  # compare: who judges
    seed: int = 0  # compare: which answer of a pair goes left


class WebQAApp(App):
    """The terminal UI; `answer_fn` replaces `webqa.agent.answer` in ask mode (tests pass a scripted one)."""

    TITLE = "webqa"
    CSS = CSS
    ENABLE_COMMAND_PALETTE = False  # every command has a key in the footer
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(self, options: TuiOptions | None = None, answer_fn: AnswerFn | None = None):
        super().__init__()
        self.options = options = options or TuiOptions()
        if options.mode not in MODES:
            raise ValueError(f"unknown mode {options.mode!r}: use one of {', '.join(MODES)}")
        self.sub_title = {"ask": "Ask", "record": "Record demonstrations", "compare": "Compare answers"}[options.mode]
        # Files are read here, before the terminal is taken over, so that a bad one is a one-line error.
        if options.mode == "record":
            from webqa.loading import make_backend
            from webqa.qa import read_questions
            from webqa.tui.recording import Recorder

            questions = read_questions(options.questions, answers=False) if options.questions else []
            self.recorder = Recorder(options.demos, make_backend(options.backend), questions=questions,
                                     recorder=options.recorder)
        elif options.mode == "compare":
            from webqa.tui.pairs import load_pairs

            if options.pairs is None:
                raise ValueError("compare needs a pairs file: webqa sample --n 4 --out FILE, "
                                 "or webqa ask QUESTION --n 4 --json >> FILE")
            self.pairs = load_pairs(options.pairs, options.seed)
        else:
            self.answer_fn = answer_fn or _agent(options.policy)

    def on_mount(self) -> None:
        options = self.options
        if options.mode == "record":
            from webqa.tui.record import RecordScreen

            self.push_screen(RecordScreen(self.recorder))
        elif options.mode == "compare":
            from webqa.tui.compare import CompareScreen

            self.push_screen(CompareScreen(self.pairs, options.comparisons, options.labeller))
        else:
            from webqa.tui.ask import AskScreen

            backend = options.backend if isinstance(options.backend, str) else "local"
            self.push_screen(AskScreen(self.answer_fn, backend, options.n))


def _agent(policy: str | None) -> AnswerFn:
    """`webqa.agent.answer` with the chosen policy; the model loads on the first question, not at start."""

    def answer_fn(question: str, **kwargs):
        from webqa.agent import answer

        return answer(question, policy=policy, **kwargs)

    return answer_fn
