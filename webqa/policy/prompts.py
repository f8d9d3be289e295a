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
    """Every (prompt, target) pair a demonstration teaches: each action, then the answer."""
    pairs = [action_example(step.observation, step.action) for step in demo.steps]
    if demo.answer and demo.quotes and demo.end == "Answer":
        pairs.append(answer_example(demo.question, demo.quotes, demo.answer))
    return pairs
