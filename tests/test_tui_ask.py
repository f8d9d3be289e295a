"""Ask mode: the live view of the agent's browsing, the answer, candidates, cancelling and the history.

The agent is a scripted stand-in driving real browsers over the real corpus (the
real model is far too slow here); `webqa.agent.answer` passing `on_step` on is
tested with a scripted sampler in place of the model.
"""

import asyncio
import threading

from tests.tui_helpers import (
    ACTIONS,
    ANSWER,
    QUESTION,
    QUOTE,
    scripted_answer,
    settle,
    text_of,
    type_text,
)
from webqa.policy.prompts import PLAIN
from webqa.tui import TuiOptions, WebQAApp
from webqa.tui.ask import AskScreen, HistoryScreen


def ask_app(answer_fn, n: int = 1) -> WebQAApp:
    return WebQAApp(TuiOptions(mode="ask", n=n), answer_fn=answer_fn)


async def ask(pilot, question: str) -> None:
    await pilot.click("#question")
    await type_text(pilot, question)
    await pilot.press("enter")
    await settle(pilot)


def test_ask_shows_each_step_live_then_the_answer_with_references(corpus):
    calls = []
    app = ask_app(scripted_answer(corpus, calls=calls))

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await ask(pilot, QUESTION)
            screen: AskScreen = app.screen
            assert calls == [{"question": QUESTION, "n": 1, "backend": "local"}]
            # Every step reached the screen: the last view of the episode is its final state.
            view = screen.current.views[0]
            assert view.actions == tuple(ACTIONS)
            assert view.url == "https://en.wikipedia.org/wiki/Vienna" and view.title == "Vienna"
            assert [q.text for q in view.quotes] == [QUOTE] and view.end == "Answer"
            answer = text_of(screen.query_one("#answer"))
            assert ANSWER in answer and "References" in answer
            assert "[1] Vienna (en.wikipedia.org)" in answer and QUOTE in answer
            assert "Candidates" not in answer  # one episode: nothing to choose between
            assert screen.query_one("#left").current == "answer-pane"
            await pilot.press("f3")  # the page the agent ended on
            assert screen.query_one("#left").current == "page-pane"
            page = text_of(screen.query_one("#page"))
            assert "URL:   https://en.wikipedia.org/wiki/Vienna" in page and "【3†Danube】" in page
            side = text_of(screen.query_one("#side"))
            assert "4. End: Answer" in side and "Quotes (1)" in side
            assert "Answered in 1.0 s" in text_of(screen.query_one("#status"))

    asyncio.run(scenario())


def test_ask_with_n_and_backend_from_the_screen_shows_candidates_and_scores(corpus):
    calls = []
    answers = ("The Danube [1].", "Vienna lies on the Danube [1].")
    app = ask_app(scripted_answer(corpus, answers=answers, scores=[-0.5, 1.25], calls=calls), n=1)

    async def scenario():
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            screen: AskScreen = app.screen
            screen.query_one("#n").value = "2"
            screen.query_one("#backend").value = "web"
            await ask(pilot, QUESTION)
            assert calls[-1] == {"question": QUESTION, "n": 2, "backend": "web"}
            answer = text_of(screen.query_one("#answer"))
            assert answer.startswith("Answer\nVienna lies on the Danube [1].")  # the higher score wins
            assert "  1. [-0.50] The Danube [1]." in answer
            assert "* 2. [+1.25] Vienna lies on the Danube [1]." in answer
            assert "Episode 1 of 2" in text_of(screen.query_one("#side"))
            await pilot.press("f5")
            assert screen.shown == 1 and "Episode 2 of 2" in text_of(screen.query_one("#side"))
            screen.query_one("#n").value = "0"
            await ask(pilot, QUESTION)
            assert "n must be a whole number" in text_of(screen.query_one("#status"))
            assert len(calls) == 1

    asyncio.run(scenario())


def test_a_question_can_be_cancelled_and_earlier_questions_stay_in_the_history(corpus):
    gate = threading.Event()
    app = ask_app(scripted_answer(corpus, gate=gate))

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            screen: AskScreen = app.screen
            await pilot.click("#question")
            await type_text(pilot, QUESTION)
            await pilot.press("enter")
            while not screen.current.views:  # the first step is on screen; the agent waits at the gate
                await pilot.pause(0.05)
            assert screen.busy
            await pilot.press("escape")
            await ask(pilot, "another question")  # refused while the first is still stopping
            assert "Still working" in text_of(screen.query_one("#status"))
            gate.set()
            await settle(pilot)
            assert not screen.busy
            assert text_of(screen.query_one("#status")) == "Cancelled."
            assert screen.history[-1].result is None and screen.current.views[0].actions == (ACTIONS[0],)

            screen.query_one("#question").value = ""
            await ask(pilot, "Who wrote Hamlet?")
            assert [a.question for a in screen.history] == [QUESTION, "Who wrote Hamlet?"]
            assert screen.history[-1].result.text == ANSWER
            await pilot.press("f2")
            assert isinstance(app.screen, HistoryScreen)
            await pilot.press("up", "enter")
            await settle(pilot)
            assert screen.current is screen.history[0]
            assert screen.query_one("#question").value == QUESTION
            assert text_of(screen.query_one("#answer")) == "Cancelled."

    asyncio.run(scenario())


def test_an_agent_failure_is_shown_and_the_app_goes_on(corpus):
    def failing(question, **kwargs):
        raise RuntimeError("no policy model")

    app = ask_app(failing)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await ask(pilot, QUESTION)
            assert text_of(app.screen.query_one("#status")) == "Failed: RuntimeError: no policy model"
            assert app.is_running and not app.screen.busy

    asyncio.run(scenario())


class ScriptedSampler:
    """Stands in for the model: each browsing prompt gets the next scripted action, each answer prompt the answer."""

    device = "cpu"
    prompt_format = PLAIN
    reader = None  # quotes as the script writes them

    def __init__(self, actions):
        self.actions = list(actions)

    def sample(self, prompts, max_new_tokens, temperature, top_p, generator, grammars=None, stop_at=None):
        if prompts[0].rstrip().endswith("♦Answer"):
            return [ANSWER for _ in prompts]
        action = self.actions.pop(0)
        return [action for _ in prompts]


def test_agent_answer_calls_on_step_after_every_browser_step(corpus, monkeypatch):
    import webqa.agent
    from webqa.policy.config import SamplingConfig

    monkeypatch.setattr(webqa.agent, "load_sampler", lambda policy=None: ScriptedSampler(ACTIONS))
    seen = []

    def on_step(index, action, result, browser):
        seen.append((index, action, result.error, len(browser.episode.steps), browser.observation()))

    # Without the floor and the answerer: the script's own steps and the extractor's answer.
    sampling = SamplingConfig.best_of(1, floor=False, answers="extract")
    result = webqa.agent.answer(QUESTION, n=1, backend=corpus, on_step=on_step, sampling=sampling)
    assert [(index, action, error, steps) for index, action, error, steps, _ in seen] == [
        (0, action, None, number) for number, action in enumerate(ACTIONS, 1)]
    # What the callback saw is what the next step was taken on.
    assert [s[4] for s in seen[:-1]] == [step.observation for step in result.trajectory.steps[1:]]
    assert result.text == ANSWER


def test_the_default_agent_is_webqa_answer_with_the_live_view(corpus, monkeypatch):
    """No answer function given: the app runs `webqa.agent.answer` (its model replaced by a script)."""
    import webqa.agent

    import webqa.policy.reading

    monkeypatch.setattr(webqa.policy.reading, "load_answerer", lambda path=None: None)  # the extractor answers
    monkeypatch.setattr(webqa.agent, "load_sampler", lambda policy=None: ScriptedSampler(ACTIONS))
    app = WebQAApp(TuiOptions(mode="ask", n=1))

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await ask(pilot, QUESTION)
            screen: AskScreen = app.screen
            assert screen.current.views[0].actions == (f"Search {QUESTION}", *ACTIONS)  # the floor first
            text = screen.current.result.text
            assert screen.current.result.found and "[" in text and text[:30] in text_of(screen.query_one("#answer"))

    asyncio.run(scenario())
