"""The text the policy reads and writes: one place, shared by training and rollouts.

The policy is a plain causal language model. For a browsing step it reads the
browser's observation (which ends with `♦Next action`) and writes one command
line; for the answer step it reads the answer prompt (which ends with
`♦Answer`) and writes the answer. Each target ends with the end-of-sequence
token, so sampling stops at the end of the line.
"""

from __future__ import annotations

from webqa.env.answering import answer_prompt
from webqa.types import Demonstration

SEPARATOR = "\n"  # between a prompt and its target


def action_example(observation: str, action: str) -> tuple[str, str]:
    """(prompt, target) for one browsing step."""
    return observation + SEPARATOR, action.strip()


def answer_example(question: str, quotes, answer: str) -> tuple[str, str]:
    """(prompt, target) for the answer step."""
    return answer_prompt(question, quotes) + SEPARATOR, answer.strip()


def examples_from_demonstration(demo: Demonstration) -> list[tuple[str, str]]:
    """Every (prompt, target) pair a demonstration teaches: each action worth imitating, then the answer."""
    undone = undone_clicks(demo)
    pairs = [action_example(step.observation, step.action) for index, step in enumerate(demo.steps)
             if index not in undone]
    if teaches_answer(demo):
        pairs.append(answer_example(demo.question, demo.quotes, demo.answer))
    return pairs


def teaches_answer(demo: Demonstration) -> bool:
    """Whether the demonstration ends with an answer to learn (its last example is then the answer)."""
    return bool(demo.answer and demo.quotes and demo.end == "Answer")


def undone_clicks(demo: Demonstration) -> set[int]:
    """Indices of clicks that the very next action, `Back`, undid: a page left without reading it.

    The expert clicks a plausible wrong result on purpose now and then (and people do by accident)
    so that the policy sees the `Back` that recovers; the `Back` is worth imitating, the wrong click
    is not. In a DAgger-labelled demonstration every action is the expert's label for the state,
    so none is left out there.
    """
    if "dagger" in demo.settings:
        return set()
    actions = [step.action.strip() for step in demo.steps]
    return {index for index, (action, after) in enumerate(zip(actions, actions[1:]))
            if action.startswith("Clicked on link") and after == "Back"}
