"""The answer step that follows browsing: the prompt and the citation check.

After `End: Answer`, the model sees the question and the numbered quotes it
collected, and writes an answer that cites them as `[n]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from webqa.types import Quote

CITATION = re.compile(r"\[(\d+)\]")  # an answer's citation of quote n


def answer_prompt(question: str, quotes: list[Quote]) -> str:
    """The question and the numbered quotes, ending where the answer begins."""
    if not quotes:
        raise ValueError("an answer needs at least one quote")
    parts = ["♦Question", question, "♦Quotes"]
    for number, quote in enumerate(quotes, start=1):
        parts += [f"[{number}] {quote.title} ({quote.domain})", quote.text]
    parts.append("♦Answer")
    return "\n".join(parts)


@dataclass
class CitationCheck:
    """Which quotes an answer cites, and which of its citations point at no quote."""

    cited: list[int] = field(default_factory=list)
    invalid: list[int] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """At least one citation, and every citation names a collected quote."""
        return bool(self.cited) and not self.invalid

    @property
    def message(self) -> str:
        if self.invalid:
            return f"citation {', '.join(f'[{n}]' for n in self.invalid)} refers to no quote"
        if not self.cited:
            return "the answer cites no quote; cite the quotes it rests on as [1], [2], ..."
        return "ok"


def check_citations(answer: str, quotes: list[Quote]) -> CitationCheck:
    """Check every `[n]` in `answer` against the numbered quotes (1-based)."""
    check = CitationCheck()
    for number in dict.fromkeys(int(m) for m in CITATION.findall(answer)):
        (check.cited if 1 <= number <= len(quotes) else check.invalid).append(number)
    return check
