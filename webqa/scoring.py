"""The one scoring function used everywhere: normalized answer match.

An answer is correct when any gold alias, normalized, occurs as whole words in
the first 40 words (`answer_words`) of the normalized answer (SQuAD-style normalization:
lowercase, no punctuation, no articles, accents folded). `score_record` gives one answered
question's figures (correct, supported, citations valid, words, actions) as `webqa eval` counts them.
"""

from __future__ import annotations

import re
import string
import unicodedata

from webqa.env.answering import check_citations
from webqa.env.commands import InvalidCommand, parse

MAX_ANSWER_WORDS = 40

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CITATIONS = re.compile(r"\[\d+\]")
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation + "‘’“”–—…«»"})


def normalize(text: str) -> str:
    """Lowercase, fold accents, drop punctuation and articles, collapse spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_words(answer: str) -> list[str]:
    """The answer's words, as everything that counts them does: citations dropped, split at spaces,
    and pieces of punctuation alone (a lone "-" or ".") left out, as `normalize` drops them."""
    return [word for word in _CITATIONS.sub(" ", answer).split() if word.translate(_PUNCTUATION).strip()]


def is_correct(answer: str, aliases: list[str]) -> bool:
    """Whether any alias occurs in the answer's first 40 words (citations ignored)."""
    words = answer_words(answer)[:MAX_ANSWER_WORDS]
    padded = f" {normalize(' '.join(words))} "
    for alias in aliases:
        target = normalize(alias)
        if target and f" {target} " in padded:
            return True
    return False


def is_supported(quotes_text: list[str], aliases: list[str]) -> bool:
    """Whether any alias occurs in any of the quotes (no length cut)."""
    padded = [f" {normalize(text)} " for text in quotes_text]
    return any(f" {normalize(a)} " in text for a in aliases if normalize(a) for text in padded)


def score_record(record: dict, answers: list[str]) -> dict:
    """Per-question figures: correct, supported, citations valid, words, actions, invalid actions."""
    text, quotes = record["answer"], record["quotes"]
    check = check_citations(text, quotes)  # only the number of quotes matters to the check
    cited = [quotes[n - 1] for n in check.cited]
    invalid = 0
    for action in record["actions"]:
        try:
            parse(action)
        except InvalidCommand:
            invalid += 1
    return {
        "correct": bool(text) and is_correct(text, answers),
        "supported": bool(text) and is_supported(cited, answers),
        "citations_valid": bool(text) and check.valid,
        "answered": bool(text),
        "words": len(answer_words(text)),
        "actions": len(record["actions"]),
        "invalid_actions": invalid,
    }
