"""Recording demonstrations by hand: the session behind `webqa record`, with no UI in it.

A person drives the browser the policy drives (`POLICY_BROWSER`), so each
observation in the demonstration is one the model would see. Actions the
browser refuses are taken back, so a demonstration holds no wasted action.

After every action the unfinished episode (its question and actions, and any
answer draft) is written atomically to `<demos file>.partial.json`; a killed
recorder loses at most the action being typed, and the next start replays the
actions to resume. A finished episode is appended to the demonstrations file
in the format behavior cloning reads, and the sidecar goes.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from webqa.demos import append_demonstration, read_demonstrations
from webqa.env.answering import check_citations
from webqa.env.backend import Backend
from webqa.env.browser import QUOTE_SEPARATOR, Browser, BrowserSettings
from webqa.env.commands import InvalidCommand, parse
from webqa.types import Demonstration, Episode

LINES = re.compile(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*")  # a quote given as page line numbers: `12` or `12-14`
ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…)\s*")  # `first words ... last words`
QUOTE_HINT = "type it as shown, as 'first words ... last words', or as line numbers like 3-5"


def partial_path(demos: str | Path) -> Path:
    """Where the unfinished episode of a demonstrations file is kept."""
    return Path(f"{demos}.partial.json")


@dataclass
class Progress:
    """An unfinished episode: enough to replay it."""

    record: dict  # the question's record: "question", and "id", "answers", "dataset" from a questions file
    actions: list[str] = field(default_factory=list)
    answer_draft: str = ""

    @property
    def question(self) -> str:
        return self.record["question"]


def save_progress(path: Path, progress: Progress) -> None:
    """Write the sidecar atomically: a temporary file, fsynced, renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump(asdict(progress), out, ensure_ascii=False)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def load_progress(path: Path) -> Progress | None:
    """The unfinished episode in the sidecar, or None when there is none."""
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return Progress(record=data["record"], actions=list(data["actions"]), answer_draft=data.get("answer_draft", ""))


def _key(question: str, question_id) -> str:
    """What makes two episodes the same question: its id, or else its words."""
    return f"id:{question_id}" if question_id is not None else "q:" + " ".join(question.lower().split())


def command_for(text: str) -> str:
    """What Enter does with the typed text: a number opens that link, a command runs, anything else is searched."""
    text = text.strip()
    if text.isdigit():
        return f"Clicked on link {text}"
    try:
        parse(text)
        return text
    except InvalidCommand:
        return f"Search {text}"


class Recorder:
    """One person's recording session over a demonstrations file."""

    def __init__(self, demos: str | Path, backend: Backend, settings: BrowserSettings | None = None,
                 questions: list[dict] | None = None, recorder: str = ""):
        from webqa.policy.prompts import POLICY_BROWSER  # the policy's browser; importing it loads no model

        self.demos = Path(demos)
        self.partial = partial_path(self.demos)
        self.browser = Browser(backend, BrowserSettings(**vars(settings or POLICY_BROWSER)))
        self.questions = list(questions or [])
        self.recorder = recorder
        existing = read_demonstrations(self.demos) if self.demos.exists() else []
        self.recorded = len(existing)  # in the file, this session's included
        self.recorded_now = 0
        self._used = {_key(d.question, d.settings.get("question_id")) for d in existing}
        self.progress: Progress | None = None
        self._checkpoints: list[object] = []  # the browser before each accepted action, for undo

    # --- questions ------------------------------------------------------------

    def pending(self) -> Progress | None:
        """An episode an earlier session left unfinished."""
        return load_progress(self.partial)

    def next_question(self) -> dict | None:
        """The next question of the questions file that has no demonstration (nor was skipped)."""
        for record in self.questions:
            if _key(record["question"], record.get("id")) not in self._used:
                return record
        return None

    @property
    def remaining(self) -> int:
        return sum(_key(r["question"], r.get("id")) not in self._used for r in self.questions)

    # --- the episode ------------------------------------------------------------

    def start(self, record: dict, save: bool = True) -> None:
        """Begin an episode on `record` (a dict with `question`), saved at once unless told not to."""
        record = dict(record, question=" ".join(record["question"].split()))
        self.browser.reset(record["question"])
        self.progress, self._checkpoints = Progress(record), []
        if save:
            save_progress(self.partial, self.progress)

    def resume(self, progress: Progress) -> str | None:
        """Replay an unfinished episode; returns a message if an action fails now (a changed web page).

        The sidecar is rewritten only once the replay is done, so a crash meanwhile loses nothing.
        """
        self.start(progress.record, save=False)
        problem = None
        for number, action in enumerate(progress.actions, 1):
            error = self._step(action)
            if error:
                problem = f"action {number} ({action}) fails now: {error}; resumed before it"
                break
        else:
            self.progress.answer_draft = progress.answer_draft
        save_progress(self.partial, self.progress)
        return problem

    def act(self, action: str) -> str | None:
        """Take one action and save the episode; returns why it was refused (then nothing changed), or None."""
        if self.progress is None or self.browser.done:
            return "no episode is open"
        if self.browser.actions_left <= 1 and not action.strip().startswith("End:"):
            # Running out leaves an episode behavior cloning cannot use; the last action must end it.
            return "one action left: end the episode (End: Answer, End: Nonsense or End: Controversial)"
        error = self._step(action)
        if error is None:
            save_progress(self.partial, self.progress)
        return error

    def _step(self, action: str) -> str | None:
        """One browser step, taken back if the browser refuses it."""
        before = self.browser.checkpoint()
        result = self.browser.step(action, by="human")
        if result.error:
            self.browser.restore(before)
            return result.error
        self._checkpoints.append(before)
        self.progress.actions.append(action)
        return None

    def quote(self, text: str) -> str | None:
        """Quote typed text, `first ... last`, or page lines `12-14`; returns why it was refused, or None."""
        page = self.browser.page
        match = LINES.fullmatch(text)
        if match and page is not None:
            first, last = int(match.group(1)), int(match.group(2) or match.group(1))
            if not 1 <= first <= last <= len(page.plain_lines):
                return f"no lines {first}-{last}: this page has lines 1-{len(page.plain_lines)}"
            text = " ".join(page.plain_lines[first - 1 : last])
        elif ELLIPSIS.search(text):
            start, end = ELLIPSIS.split(text, maxsplit=1)
            text = f"{start}{QUOTE_SEPARATOR}{end}"
        error = self.act(f"Quote: {text}")
        if error and "not on the current page" in error:
            return f"not quoted: that text is not on this page; {QUOTE_HINT}"
        return error

    def undo(self) -> bool:
        """Take back the last action; False when there is none."""
        if not self._checkpoints:
            return False
        self.browser.restore(self._checkpoints.pop())
        self.progress.actions.pop()
        self.progress.answer_draft = ""
        save_progress(self.partial, self.progress)
        return True

    def save_draft(self, text: str) -> None:
        """Keep the answer being written, so that a crash does not lose it."""
        if self.progress is not None and text != self.progress.answer_draft:
            self.progress.answer_draft = text
            save_progress(self.partial, self.progress)

    def answer_problem(self, text: str) -> str | None:
        """Why `text` cannot be the answer (none, no citation, a citation to no quote), or None."""
        if not text.strip():
            return "write an answer first"
        check = check_citations(text, self.browser.quotes)
        return None if check.valid else check.message

    def finish(self, answer: str | None = None) -> Demonstration:
        """Append the ended episode to the demonstrations file; `answer` is needed after End: Answer."""
        episode = self.browser.episode
        if self.progress is None or not self.browser.done:
            raise ValueError("the episode has not ended")
        if episode.end == "Answer":
            problem = self.answer_problem(answer or "")
            if problem:
                raise ValueError(problem)
            episode.answer, episode.answered_by = " ".join(answer.split()), "human"
        record = self.progress.record
        demo = Demonstration(**{f.name: getattr(episode, f.name) for f in fields(Episode)}, producer="human",
                             created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             gold_answers=list(record.get("answers", [])))
        extra = {name: record[key] for name, key in (("question_id", "id"), ("dataset", "dataset")) if key in record}
        demo.settings = {**episode.settings, **extra, **({"recorder": self.recorder} if self.recorder else {})}
        append_demonstration(self.demos, demo)
        self._close(record)
        self.recorded += 1
        self.recorded_now += 1
        return demo

    def discard(self, progress: Progress | None = None) -> None:
        """Drop the open episode, or an unfinished one left by an earlier session; its question is not
        offered again this session."""
        progress = progress or self.progress
        self._close(progress.record if progress else None)

    def _close(self, record: dict | None) -> None:
        if record is not None:
            self._used.add(_key(record["question"], record.get("id")))
        self.progress, self._checkpoints = None, []
        self.partial.unlink(missing_ok=True)
