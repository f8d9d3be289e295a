"""Helpers for the terminal UI tests: waiting for workers, typing, and a scripted stand-in for the agent."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from webqa.tui.scripted import scripted_agent

QUESTION = "Which river flows through Vienna?"
QUOTE = "the most populous of the cities on the river Danube"
ACTIONS = ["Search Vienna river", "Clicked on link 0", f"Quote: {QUOTE}", "End: Answer"]
ANSWER = "The Danube flows through Vienna [1]."


async def settle(pilot) -> None:
    """Let every worker finish and the UI take in what they sent."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def text_of(widget) -> str:
    """The plain text a Static widget shows (wide enough that nothing wraps)."""
    content = widget.content
    if isinstance(content, str):
        return content
    console = Console(width=300, file=io.StringIO(), record=True, color_system=None)
    console.print(content)
    return console.export_text().rstrip("\n")


async def type_text(pilot, text: str) -> None:
    """Type `text` key by key, as a person would."""
    await pilot.press(*["space" if char == " " else char for char in text])


def scripted_answer(corpus, actions=ACTIONS, answers=(ANSWER,), scores=None, gate: threading.Event | None = None,
                    calls: list | None = None):
    """`webqa.tui.scripted.scripted_agent` over the real corpus; `calls` collects how it was called, and
    `gate`, when given, is waited on after the first step (a test cancels meanwhile)."""
    agent = scripted_agent(corpus, list(actions), list(answers), scores)

    def answer_fn(question, *, n=1, backend="local", on_step=None):
        if calls is not None:
            calls.append({"question": question, "n": n, "backend": backend})
        steps = []

        def step(index, action, result, browser):
            steps.append(action)
            if on_step is not None:
                on_step(index, action, result, browser)
            if gate is not None and len(steps) == 1:
                gate.wait(timeout=30)

        return agent(question, n=n, backend=backend, on_step=step)

    return answer_fn
