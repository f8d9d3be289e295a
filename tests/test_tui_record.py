"""Record mode: a person's episode becomes a demonstration that behavior cloning takes as it is."""

import asyncio
import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

from tests.tui_helpers import (
    ACTIONS,
    ANSWER,
    QUESTION,
    QUOTE,
    settle,
    text_of,
    type_text,
)
from webqa.demos import read_demonstrations
from webqa.env import Browser
from webqa.policy.prompts import POLICY_BROWSER, examples_from_demonstration
from webqa.tui import TuiOptions, WebQAApp
from webqa.tui.dialogs import AnswerEditor, ResumeDialog
from webqa.tui.recording import Progress, Recorder, partial_path, save_progress

QUESTIONS = [{"question": QUESTION, "id": "q-vienna", "answers": ["Danube"], "dataset": "hand"},
             {"question": "What is the capital of Austria?", "id": "q-capital", "answers": ["Vienna"]}]


def write_questions(path: Path) -> Path:
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    return path


def record_app(corpus, tmp_path: Path, questions: bool = True) -> WebQAApp:
    options = TuiOptions(mode="record", backend=corpus, demos=tmp_path / "demos.jsonl", recorder="tester",
                         questions=write_questions(tmp_path / "questions.jsonl") if questions else None)
    return WebQAApp(options)


def status(app) -> str:
    return text_of(app.screen.query_one("#status"))


async def browse_to_quote(pilot) -> None:
    """Search, open the first result and quote the sentence with the answer, as a person would type it."""
    await type_text(pilot, "Vienna river")
    await pilot.press("enter")
    await settle(pilot)
    await type_text(pilot, "0")
    await pilot.press("enter")
    await settle(pilot)
    await type_text(pilot, QUOTE)
    await pilot.press("f3")
    await settle(pilot)


def expected_observations(corpus, actions):
    """The observations the policy would see for these actions: a fresh browser of its own settings."""
    browser = Browser(corpus, POLICY_BROWSER)
    seen = [browser.reset(QUESTION)]
    for action in actions:
        seen.append(browser.step(action).observation)
    return seen


def test_recording_a_full_episode_writes_a_demonstration_bc_accepts(corpus, tmp_path):
    app = record_app(corpus, tmp_path)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert app.recorder.progress.question == QUESTION  # the questions file's first question
            await browse_to_quote(pilot)
            assert [q.text for q in app.recorder.browser.quotes] == [QUOTE]
            await pilot.press("f6")
            await pilot.press("a")
            await settle(pilot)
            assert isinstance(app.screen, AnswerEditor)
            await type_text(pilot, "The Danube flows through Vienna ")
            await pilot.press("f1")
            await type_text(pilot, ".")
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert "Recorded demonstration 1" in status(app)
            # The next question of the file is open at once, and the counter shows the one recorded.
            assert app.recorder.progress.question == QUESTIONS[1]["question"]
            assert "Recorded: 1 (1 this session)" in text_of(app.screen.query_one("#side"))

    asyncio.run(scenario())
    demos = read_demonstrations(tmp_path / "demos.jsonl")
    assert len(demos) == 1
    demo = demos[0]
    assert demo.question == QUESTION and demo.producer == "human" and demo.end == "Answer"
    assert demo.actions == ACTIONS
    assert demo.answer == ANSWER
    assert [q.text for q in demo.quotes] == [QUOTE]
    assert demo.gold_answers == ["Danube"] and demo.created
    assert demo.settings["question_id"] == "q-vienna" and demo.settings["recorder"] == "tester"
    assert demo.settings["dataset"] == "hand" and demo.settings["backend"] == corpus.name
    assert demo.settings["window_lines"] == POLICY_BROWSER.window_lines
    assert demo.settings["max_actions"] == POLICY_BROWSER.max_actions
    # Each step shows exactly what the policy would have seen.
    observations = expected_observations(corpus, ACTIONS)
    assert [step.observation for step in demo.steps] == observations[:-1]
    assert all(step.error is None for step in demo.steps)
    # Behavior cloning's own reading: one pair per action and one for the answer.
    from webqa.policy.train import pairs_of, read_demos

    assert pairs_of(read_demos([tmp_path / "demos.jsonl"])) == examples_from_demonstration(demo)
    assert len(examples_from_demonstration(demo)) == len(ACTIONS) + 1
    assert examples_from_demonstration(demo)[-1][1] == ANSWER
    # The sidecar now holds the next question's episode, just opened.
    assert json.loads(partial_path(tmp_path / "demos.jsonl").read_text())["actions"] == []


def test_quoting_text_that_is_not_on_the_page_is_refused(corpus, tmp_path):
    app = record_app(corpus, tmp_path)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await browse_to_quote(pilot)
            before = list(app.recorder.progress.actions)
            await pilot.press("ctrl+u")  # clear the box
            await type_text(pilot, "the Rhine flows through Vienna")
            await pilot.press("f3")
            await settle(pilot)
            assert "not on this page" in status(app)
            # Nothing happened: no quote, no action used up, nothing saved, and the text stays to be corrected.
            assert [q.text for q in app.recorder.browser.quotes] == [QUOTE]
            assert app.recorder.progress.actions == before
            assert json.loads(partial_path(tmp_path / "demos.jsonl").read_text())["actions"] == before
            assert app.recorder.browser.actions_left == POLICY_BROWSER.max_actions - len(before)
            assert app.screen.query_one("#command").value == "the Rhine flows through Vienna"
            # Page lines by number are quoted as they stand on the page.
            await pilot.press("ctrl+u")
            await type_text(pilot, "1-2")
            await pilot.press("f3")
            await settle(pilot)
            page = app.recorder.browser.page
            assert app.recorder.browser.quotes[-1].text == " ".join(page.plain_lines[:2])

    asyncio.run(scenario())


def test_answer_editor_refuses_answers_without_valid_citations(corpus, tmp_path):
    app = record_app(corpus, tmp_path)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await browse_to_quote(pilot)
            await pilot.press("ctrl+u")
            await type_text(pilot, "End: Answer")  # typed commands work too
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, AnswerEditor)
            check = app.screen.query_one("#answer-check")
            await pilot.press("f2")
            assert "There is no quote [2]" in text_of(check)
            assert app.screen.query_one("#answer-text").text == ""
            await type_text(pilot, "The Danube [2].")
            await pilot.press("ctrl+s")
            assert isinstance(app.screen, AnswerEditor)
            assert "[2] refers to no quote" in text_of(check)
            app.screen.query_one("#answer-text").text = "The Danube."
            await pilot.press("ctrl+s")
            assert isinstance(app.screen, AnswerEditor)
            assert "cites no quote" in text_of(check)
            await pilot.press("escape")  # back to browsing takes End: Answer back
            await settle(pilot)
            assert not isinstance(app.screen, AnswerEditor)
            assert app.recorder.progress.actions == ACTIONS[:3] and not app.recorder.browser.done

    asyncio.run(scenario())
    assert not (tmp_path / "demos.jsonl").exists()


def test_scroll_undo_and_ending_as_nonsense(corpus, tmp_path):
    app = record_app(corpus, tmp_path, questions=False)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert app.recorder.progress is None  # no questions file: a question is typed
            await type_text(pilot, "How many legs does a river have?")
            await pilot.press("enter")
            await type_text(pilot, "river legs")
            await pilot.press("enter")
            await settle(pilot)
            await pilot.press("pagedown")
            await settle(pilot)
            assert app.recorder.progress.actions == ["Search river legs", "Scrolled down 1"]
            assert app.recorder.browser.cursor == POLICY_BROWSER.window_lines
            await pilot.press("pageup")
            await settle(pilot)
            assert app.recorder.browser.cursor == 0
            await pilot.press("pagedown")
            await settle(pilot)
            await pilot.press("f4")  # Top
            await settle(pilot)
            assert app.recorder.progress.actions[-2:] == ["Scrolled down 1", "Top"]
            assert app.recorder.browser.cursor == 0
            for _ in range(4):
                await pilot.press("ctrl+z")
            assert app.recorder.progress.actions == ["Search river legs"]
            assert app.recorder.browser.cursor == 0
            # F7: the observation exactly as the model reads it.
            await pilot.press("f7")
            assert app.screen.query_one("#left").current == "observation-pane"
            assert text_of(app.screen.query_one("#observation")) == app.recorder.browser.observation()
            await pilot.press("f7")
            assert app.screen.query_one("#left").current == "page-pane"
            await pilot.press("f5")  # Back: there is no earlier page, so it is refused
            await settle(pilot)
            assert "no previous page" in status(app)
            assert app.recorder.progress.actions == ["Search river legs"]
            await pilot.press("f6", "escape")  # the end dialog, left without ending
            assert app.recorder.progress.actions == ["Search river legs"]
            await pilot.press("f6", "n")
            await settle(pilot)
            assert "Recorded demonstration 1 (Nonsense" in status(app)

    asyncio.run(scenario())
    (demo,) = read_demonstrations(tmp_path / "demos.jsonl")
    assert demo.end == "Nonsense" and demo.answer is None
    assert demo.actions == ["Search river legs", "End: Nonsense"]
    assert len(examples_from_demonstration(demo)) == 2  # the actions only: there is no answer to learn


KILL_SCRIPT = textwrap.dedent("""
    import asyncio, os, signal, sys
    from tests.tui_helpers import QUOTE, settle, type_text
    from webqa.env import LocalCorpus
    from webqa.tui import TuiOptions, WebQAApp

    app = WebQAApp(TuiOptions(mode="record", backend=LocalCorpus.default(), demos=sys.argv[1]))

    async def main():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            for text, key in [("Which river flows through Vienna?", "enter"), ("Vienna river", "enter"),
                              ("0", "enter"), (QUOTE, "f3")]:
                await type_text(pilot, text)
                await pilot.press(key)
                await settle(pilot)
            await pilot.press("f6", "a")
            await settle(pilot)
            await type_text(pilot, "The Danube")
            await pilot.pause()
            os.kill(os.getpid(), signal.SIGKILL)  # no clean exit: what is on disk is all there is

    asyncio.run(main())
""")


def test_killed_mid_episode_resumes_with_nothing_lost(corpus, tmp_path):
    demos = tmp_path / "demos.jsonl"
    root = Path(__file__).resolve().parent.parent
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(demos)], cwd=root, capture_output=True,
                            text=True, timeout=300, check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    saved = json.loads(partial_path(demos).read_text())
    assert saved["actions"] == ACTIONS and saved["answer_draft"] == "The Danube"

    app = WebQAApp(TuiOptions(mode="record", backend=corpus, demos=demos))

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, ResumeDialog)
            await pilot.press("r")
            await settle(pilot)
            # Back where it stopped: the answer editor, with the draft, over the same browser state.
            assert isinstance(app.screen, AnswerEditor)
            assert app.screen.query_one("#answer-text").text == "The Danube"
            assert app.recorder.browser.observation() == expected_observations(corpus, ACTIONS)[-1]
            await pilot.press("f1")
            await type_text(pilot, ".")
            await pilot.press("ctrl+s")
            await settle(pilot)

    asyncio.run(scenario())
    (demo,) = read_demonstrations(demos)
    assert demo.actions == ACTIONS and demo.answer == "The Danube[1]."
    assert [step.observation for step in demo.steps] == expected_observations(corpus, ACTIONS)[:-1]
    assert not partial_path(demos).exists()


def test_an_unfinished_episode_can_be_discarded(corpus, tmp_path):
    demos = tmp_path / "demos.jsonl"
    save_progress(partial_path(demos), Progress({"question": QUESTION}, ["Search Vienna river"]))
    app = WebQAApp(TuiOptions(mode="record", backend=corpus, demos=demos))

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, ResumeDialog)
            await pilot.press("d")
            await settle(pilot)
            assert "Discarded" in status(app)
            assert app.recorder.progress is None

    asyncio.run(scenario())
    assert not partial_path(demos).exists() and not demos.exists()


def test_recorder_keeps_the_last_action_for_ending_and_reads_first_dots_last(corpus, tmp_path):
    settings = replace(POLICY_BROWSER, max_actions=4)
    recorder = Recorder(tmp_path / "demos.jsonl", corpus, settings)
    recorder.start({"question": QUESTION})
    assert recorder.act("Search Vienna river") is None
    assert recorder.act("Clicked on link 0") is None
    assert "at least one quote" in recorder.act("End: Answer")  # refused, and nothing is used up
    assert recorder.browser.actions_left == 2
    assert recorder.quote("Vienna is the capital ... two million inhabitants") is None
    assert recorder.browser.quotes[0].text.startswith("Vienna is the capital")
    assert recorder.browser.quotes[0].text.endswith("two million inhabitants")
    assert "no lines 90-91" in recorder.quote("90-91")
    assert "one action left" in recorder.act("Scrolled down 1")
    assert recorder.act("End: Answer") is None and recorder.browser.done
    try:
        recorder.finish("Vienna is a capital.")
        raise AssertionError("an answer citing no quote was recorded")
    except ValueError as exc:
        assert "cites no quote" in str(exc)
    demo = recorder.finish("Vienna  is a capital [1].")
    assert demo.answer == "Vienna is a capital [1]." and demo.end == "Answer"
    assert read_demonstrations(tmp_path / "demos.jsonl") == [demo]


def test_resuming_stops_before_an_action_that_fails_now(corpus, tmp_path):
    """A page that changed since (the live web) can make a saved action fail: the episode resumes before it."""
    demos = tmp_path / "demos.jsonl"
    saved = Progress({"question": QUESTION}, ["Search Vienna river", "Clicked on link 99", "Top"], "draft")
    save_progress(partial_path(demos), saved)
    recorder = Recorder(demos, corpus)
    problem = recorder.resume(recorder.pending())
    assert problem.startswith("action 2 (Clicked on link 99) fails now: there is no link 99")
    assert recorder.progress.actions == ["Search Vienna river"] and recorder.progress.answer_draft == ""
    assert json.loads(partial_path(demos).read_text())["actions"] == ["Search Vienna river"]
