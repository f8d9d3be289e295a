"""The answer step that follows browsing: the prompt and the citation check.

After `End: Answer`, the model sees the question and the numbered quotes it
collected, and writes an answer that cites them as `[n]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from webqa.types import Quote

CITATION = re.compile(r"\[(\d+)\]")  # an answer's citation of quote n
READ_WORDS = 150  # words of its page around a quote that the answer step reads


def passage_around(page_text: str, quote: str, words: int = READ_WORDS) -> str:
    """About `words` words of `page_text` centred on `quote` (whole words; the quote whole even when longer).
    A quote not found in the text is its own passage."""
    at = page_text.find(quote)
    if at < 0:
        return quote
    before, after = page_text[:at].split(), page_text[at + len(quote):].split()
    room = max(0, words - len(quote.split()))
    take_before = min(len(before), max(room // 2, room - len(after)))
    take_after = min(len(after), room - take_before)
    return " ".join(before[len(before) - take_before:] + [quote] + after[:take_after])


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
