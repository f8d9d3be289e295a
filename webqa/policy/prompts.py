"""The text the policy reads and writes: one place, shared by training and rollouts.

The policy is a plain causal language model. For a browsing step it reads the
browser's observation (which ends with `♦Next action`) and writes one command
line; for the answer step it reads the answer prompt (which ends with
`♦Answer`) and writes the answer. Each target ends with the end-of-sequence
token, so sampling stops at the end of the line. The observations are made
for one browser window, `POLICY_BROWSER`: the policy drives it, the expert's
demonstrations and the evaluation use it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from webqa.env.answering import answer_prompt
from webqa.env.browser import BrowserSettings
from webqa.env.local import STOPWORDS
from webqa.scoring import normalize
from webqa.types import Demonstration

SEPARATOR = "\n"  # between a prompt and its target
FORMAT_FILE = "prompt.json"  # in a policy's folder: the PromptFormat it was trained with

# The browser the small policy drives: a short window keeps observations short.
POLICY_BROWSER = BrowserSettings(window_lines=12, max_actions=16)


@dataclass(frozen=True)
class PromptFormat:
    """How the policy is shown an observation. A policy reads only the format it was trained on,
    so training saves it next to the weights (`prompt.json`) and loading reads it back."""

    # Bold the question's words (**word**) in the page title and text, as search engines bold a
    # query's words: the overlap a reader scans for, in plain sight for a small model.
    mark_question_words: bool = False

    def save(self, folder: str | Path) -> None:
        (Path(folder) / FORMAT_FILE).write_text(json.dumps(asdict(self)) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path | None) -> PromptFormat:
        """The format saved in `folder`; the plain one where none was saved (older policies, base models)."""
        path = Path(folder) / FORMAT_FILE if folder else None
        if path is None or not path.is_file():
            return cls()
        fields = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{name: value for name, value in fields.items() if name in cls.__dataclass_fields__})

    def show(self, observation: str) -> str:
        """The observation as the policy reads it."""
        return mark_question_words(observation) if self.mark_question_words else observation


PLAIN = PromptFormat()


def action_example(observation: str, action: str, prompt_format: PromptFormat = PLAIN) -> tuple[str, str]:
    """(prompt, target) for one browsing step."""
    return prompt_format.show(observation) + SEPARATOR, action.strip()


def answer_example(question: str, quotes, answer: str) -> tuple[str, str]:
    """(prompt, target) for the answer step."""
    return answer_prompt(question, quotes) + SEPARATOR, answer.strip()


def examples_from_demonstration(demo: Demonstration, prompt_format: PromptFormat = PLAIN) -> list[tuple[str, str]]:
    """Every (prompt, target) pair a demonstration teaches: each action worth imitating, then the answer."""
    undone = undone_clicks(demo)
    pairs = [action_example(step.observation, step.action, prompt_format) for index, step in enumerate(demo.steps)
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


# --- marking the question's words ------------------------------------------------------

_WORD = re.compile(r"\w+(?:['’]\w+)*")
_LINK = re.compile(r"(【\d+†)([^†】]*)((?:†[^】]*)?】)")  # id, link text, domain: only the text is marked
_MARKED_SECTIONS = ("♦Title", "♦Text")


def _word_key(word: str) -> str:
    """A word as it is matched: normalized, apostrophes dropped, a plural `s` cut (Nabokov's, novels)."""
    key = normalize(word).replace(" ", "")
    return key[:-1] if len(key) > 3 and key.endswith("s") else key


def question_keys(question: str) -> set[str]:
    """The keys of the question's words that are worth marking (no stopwords)."""
    return {_word_key(w) for w in _WORD.findall(question) if normalize(w) not in STOPWORDS} - {""}


def _mark_text(text: str, keys: set[str]) -> str:
    return _WORD.sub(lambda m: f"**{m[0]}**" if _word_key(m[0]) in keys else m[0], text)


def _mark_line(line: str, keys: set[str]) -> str:
    parts, last = [], 0
    for link in _LINK.finditer(line):
        parts += [_mark_text(line[last:link.start()], keys), link[1], _mark_text(link[2], keys), link[3]]
        last = link.end()
    parts.append(_mark_text(line[last:], keys))
    return "".join(parts)


def mark_question_words(observation: str) -> str:
    """The observation with the question's words in bold where they occur in the page's title and text.

    `Quote` and `Find in page` still read the page's own text: the marks exist only in the prompt.
    """
    lines = observation.split("\n")
    if len(lines) < 2 or lines[0] != "♦Question":
        return observation
    keys = question_keys(lines[1])
    section = ""
    for index, line in enumerate(lines[2:], start=2):
        if line.startswith("♦"):
            section = line
        elif keys and section in _MARKED_SECTIONS:
            lines[index] = _mark_line(line, keys)
    return "\n".join(lines)
