"""Answers extracted from the quotes: the run of clauses that the quote reader ranks first.

Writing the answer from its quotes, the small model mostly copies the start of
the first quote and stops after a clause or two, wherever it likes; when the
answer sits in a later clause of a long sentence, the copy misses it although
the quote holds it (on the 200 dev questions: 34 answers correct, 49 episodes
with a quote holding the answer). Here the answer is a run of whole clauses of one quoted
sentence, at most MAX_WORDS words: of all such runs, the one the quote reader
(`webqa.policy.reader`) ranks first, as it ranks sentences in view for a quote.

    extract_answer(reader, question, quotes)   # "Presbyterian, such as Saint Kentigern College ... [1]."

(A ranker of runs fitted to the expert's answers did worse on the dev questions,
36 against 41: the expert quotes short passages, whose first clauses mostly hold
the answer, so it learned to prefer a sentence's start.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from webqa.policy.reader import QuoteReader, draw
from webqa.text import sentence_spans, tidy
from webqa.types import Quote

MAX_WORDS = 30  # the expert's answers are one sentence of at most about 30 words
# Between clauses: a semicolon, colon or dash, or a comma that does not sit inside a date or number ("5, 1985").
CLAUSE_BREAK = re.compile(r"[;:]\s|,\s(?!\d)|\s[–—]\s")
_LEADING_CONJUNCTION = re.compile(r"^(?:and|or|but|so|thus|while|whereas|although|though)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Run:
    """A run of whole clauses of one quoted sentence."""

    quote: int  # the quote's number, from 1
    text: str


def clause_runs(quotes: list[Quote], max_words: int = MAX_WORDS) -> list[Run]:
    """Every run of consecutive whole clauses within a sentence of a quote, of at most `max_words` words
    (a single clause longer than that counts too, whole)."""
    runs = []
    for number, quote in enumerate(quotes, start=1):
        for a, b in sentence_spans(quote.text):
            sentence = quote.text[a:b]
            cuts = sorted({0, len(sentence)} | {m.end() for m in CLAUSE_BREAK.finditer(sentence)})
            for i, start in enumerate(cuts[:-1]):
                for j in range(i + 1, len(cuts)):
                    text = sentence[start : cuts[j]]
                    if j > i + 1 and len(text.split()) > max_words:
                        break
                    runs.append(Run(number, text))
    return runs


def run_answer(run: Run) -> str:
    """The run as an answer: one tidy line, capitalized, without a leading conjunction, cited."""
    body = tidy(_LEADING_CONJUNCTION.sub("", tidy(run.text, capital=False)))
    return f"{body} [{run.quote}]."


def extract_answer(reader: QuoteReader, question: str, quotes: list[Quote], temperature: float = 0.0,
                   generator: torch.Generator | None = None, max_words: int = MAX_WORDS) -> str | None:
    """The run of the quotes' clauses that `reader` ranks first, as a cited answer (drawn from a softmax
    of its scores when temperature > 0); None without quotes."""
    runs = clause_runs(quotes, max_words)
    if not runs:
        return None
    # One title for all runs, as the reader reads one page at a time: the first quote's page, where the
    # episode's quotes mostly come from (1.03 quotes per episode on the dev questions).
    scores = torch.tensor(reader.scores(question, quotes[0].title, [run.text for run in runs]))
    if temperature <= 0:
        return run_answer(runs[int(scores.argmax())])  # the first of equals
    return run_answer(runs[draw(torch.softmax(scores / temperature, 0).float(), generator)])
