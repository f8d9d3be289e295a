"""Parse WebGPT's browsing commands (Nakano et al. 2021, Table 1).

One command per step, written exactly as in the paper. `parse` turns a line
into a `Command`, or raises `InvalidCommand` whose message tells the model
what a valid command looks like.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

END_REASONS = ("Answer", "Nonsense", "Controversial")

COMMAND_HELP = (
    "valid commands: Search <query> | Clicked on link <id> | Find in page: <text> | "
    "Quote: <text> | Scrolled down <1-3> | Scrolled up <1-3> | Top | Back | "
    "End: Answer | End: Nonsense | End: Controversial"
)

MAX_COMMAND_CHARS = 1000


class InvalidCommand(ValueError):
    """The action is not one of the browser's commands."""


@dataclass(frozen=True)
class Command:
    """A parsed command: its kind and its argument (query, link id, text, amount)."""

    kind: str  # search, click, find, quote, scroll_down, scroll_up, top, back, end
    arg: str = ""

    @property
    def amount(self) -> int:
        return int(self.arg)


_PATTERNS = [
    ("search", re.compile(r"Search (.+)")),
    ("click", re.compile(r"Clicked on link (\d{1,6})")),
    ("find", re.compile(r"Find in page: ?(.+)")),
    ("quote", re.compile(r"Quote: ?(.+)", re.S)),
    ("scroll_down", re.compile(r"Scrolled down ([123])")),
    ("scroll_up", re.compile(r"Scrolled up ([123])")),
    ("top", re.compile(r"Top")),
    ("back", re.compile(r"Back")),
    ("end", re.compile(r"End: (Answer|Nonsense|Controversial)")),
]


def parse(action: str) -> Command:
    """Parse one action line; surrounding whitespace is ignored."""
    if not isinstance(action, str):
        raise InvalidCommand(f"an action must be text, got {type(action).__name__}")
    text = action.strip()
    if not text:
        raise InvalidCommand(f"empty action; {COMMAND_HELP}")
    if len(text) > MAX_COMMAND_CHARS:
        raise InvalidCommand(f"action longer than {MAX_COMMAND_CHARS} characters")
    for kind, pattern in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            arg = match.group(1).strip() if match.groups() else ""
            if kind in ("search", "find", "quote") and not arg:
                break
            return Command(kind, arg)
    shown = text if len(text) <= 60 else text[:57] + "..."
    raise InvalidCommand(f"unknown command {shown!r}; {COMMAND_HELP}")


def abbreviate(command: Command) -> str:
    """The short form shown under ♦Past actions."""
    if command.kind == "search":
        return f"Search {command.arg}"
    if command.kind == "click":
        return f"Click {command.arg}"
    if command.kind == "find":
        return f"Find {command.arg}"
    if command.kind == "quote":
        return "Quote"
    if command.kind in ("scroll_down", "scroll_up"):
        return f"Scroll {command.kind.split('_')[1]} {command.arg}"
    if command.kind == "end":
        return f"End: {command.arg}"
    return command.kind.capitalize()
