"""The expert's gold-steered text work: finding the passages worth quoting, writing the answer.

Plain functions of strings and rendered pages, with no browser state: which
sentences of a page hold a gold answer and are about the question (the
passages the expert quotes), and the short cited answer drawn from a quote.
The gold-free helpers they build on (the question's words, the sentences of a
page, `tidy`) are in `webqa.text`, which the policy shares.

    passages(page, question, gold, width)            # quotable sentences with the answer, best first
    compose_answer(quotes, gold, question)           # "Lolita was written by ... [1]."
"""

from __future__ import annotations

import bisect
import random
import re
import unicodedata
from dataclasses import dataclass

from webqa.env.answering import check_citations
from webqa.env.render import Page
from webqa.scoring import is_correct, normalize
from webqa.text import line_offsets, page_sentences, question_stems, stemmed_words, tidy
from webqa.types import Quote

MAX_ANSWER_WORDS = 30
MAX_QUOTE = 300  # characters of one quote
MIN_COVERAGE = 0.5  # share of the question's content (weighted by rarity) a quoted passage must cover
MIN_COVERAGE_SHORT = 0.75  # the same, when the answer is a number or at most 3 characters
MIN_COVERAGE_LONG = 0.3  # the same, when the answer is 3 words or more (rarely there by chance)

# --- reading a page ---------------------------------------------------------------------

_CLAUSE_BREAK = re.compile(r"[;:,]\s|\s[–—]\s")


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """Words of `text` normalized as the scorer does (accents folded, no articles), with their offsets."""
    out = []
    for match in re.finditer(r"[^\W_]+", text):
        folded = "".join(c for c in unicodedata.normalize("NFKD", match.group()) if not unicodedata.combining(c))
        out += [(token, match.start(), match.end()) for token in normalize(folded).split()]
    return out


def alias_span(text: str, gold: list[str], question: str = "") -> tuple[int, int] | None:
    """Where in `text` the longest gold alias occurs as whole words; aliases the question contains do not count."""
    tokens = _tokens(text)
    words = [t[0] for t in tokens]
    asked = f" {normalize(question)} "
    best = None
    for alias in gold:
        target = normalize(alias).split()
        if not target or f" {' '.join(target)} " in asked:
            continue
        for i in range(len(words) - len(target) + 1):
            if words[i : i + len(target)] == target:
                span = (tokens[i][1], tokens[i + len(target) - 1][2])
                if best is None or span[1] - span[0] > best[1] - best[0]:
                    best = span
                break
    return best


@dataclass
class Passage:
    """A quotable stretch of a page that holds a gold answer."""

    text: str
    first_line: int
    last_line: int
    score: int  # content words shared with the question


def passages(page: Page, question: str, gold: list[str], width: int,
             weights: dict[str, float] | None = None) -> list[Passage]:
    """Sentences (cut to MAX_QUOTE characters) that hold a gold answer and are about the question, best first.

    About the question: the sentence shares two content words with the question, and together with
    the page title it covers MIN_COVERAGE of the question's content, each word weighted by `weights`
    (its rarity; equal weights if not given). Less is too weak: pages mention answers in passing.
    """
    stems = question_stems(question)
    weights = weights or dict.fromkeys(stems, 1.0)
    total = sum(weights.values()) or 1.0
    title = set(stemmed_words(page.title))
    offsets = line_offsets(page)
    text = " ".join(page.plain_lines)
    found = []
    for a, b in page_sentences(page, width):
        span = alias_span(text[a:b], gold, question)
        if span is None:
            continue
        if b - a > MAX_QUOTE:  # too long: keep the clauses around the answer
            a, b = _shorten(text, a, b, a + span[0], a + span[1])
            if b - a > MAX_QUOTE:
                continue
        words = set(stemmed_words(text[a:b]))
        score = len(stems & words)
        covered = sum(weights.get(w, 0.0) for w in words | title) / total
        answer = text[a:b][slice(*alias_span(text[a:b], gold, question) or (0, 0))]
        needed = _coverage_needed(answer)
        if score >= min(2, len(stems)) and covered >= needed and answer:
            lines = bisect.bisect_right(offsets, a) - 1, bisect.bisect_right(offsets, b - 1) - 1
            found.append(Passage(text[a:b], *lines, score))
    return sorted(found, key=lambda p: -p.score)


def _coverage_needed(answer: str) -> float:
    """How much of the question a passage must cover: the likelier the answer turns up by chance, the more."""
    if len(answer) <= 3 or answer.replace(",", "").replace(".", "").isdigit():
        return MIN_COVERAGE_SHORT
    return MIN_COVERAGE_LONG if len(normalize(answer).split()) >= 3 else MIN_COVERAGE


def _shorten(text: str, a: int, b: int, answer_start: int, answer_end: int) -> tuple[int, int]:
    """The widest run of whole clauses of text[a:b] around the answer that fits in MAX_QUOTE characters."""
    breaks = sorted({a, b} | {m.end() for m in _CLAUSE_BREAK.finditer(text, a, b)})
    left = max(x for x in breaks if x <= answer_start)
    right = min(x for x in breaks if x >= answer_end)
    while True:
        wider = [(x, right) for x in breaks if x < left][-1:] + [(left, x) for x in breaks if x > right][:1]
        wider = [w for w in wider if w[1] - w[0] <= MAX_QUOTE]
        if not wider:
            break
        left, right = min(wider, key=lambda w: w[1] - w[0])
    while right > left and (text[right - 1].isspace() or text[right - 1] in ",;:–—"):
        right -= 1  # end on a word, not on the clause break
    return left, right


# --- the answer --------------------------------------------------------------------------

_PREPOSITIONS = frozenset("by in on at from during after before since until about around through".split())


def compose_answer(quotes: list[Quote], gold: list[str], question: str, rng: random.Random | None = None) -> str | None:
    """A short answer drawn from the first quote holding a gold answer, citing every quote that holds it.

    Forms: the whole sentence, the sentence cut after the answer's clause, the answer alone, or
    "The answer is ...";
    tried in a (random) order of preference, the first that is correct, cited and short enough wins.
    """
    found = [(n, span) for n, q in enumerate(quotes, start=1) if (span := alias_span(q.text, gold, question))]
    if not found:
        return None
    number, (start, end) = found[0]
    text = quotes[number - 1].text
    article = re.search(r"\b(?:the|a|an)\s+$", text[:start], re.IGNORECASE)
    surface = text[article.start() if article else start : end]
    cites = "".join(f"[{n}]" for n, _ in found if text[start:end].lower() in quotes[n - 1].text.lower())
    inner = surface[0].lower() + surface[1:] if surface.split()[0].lower() in _PREPOSITIONS else surface
    forms = {"sentence": tidy(text), "clause": tidy(_clause(text, end)), "alias": tidy(surface),
             "lead-in": f"The answer is {tidy(inner, capital=False)}"}
    order = ["sentence", "clause", "alias", "lead-in"]
    if rng is not None:
        order = rng.choices([order, ["clause", "sentence", "alias"], ["alias", "sentence", "clause"],
                             ["lead-in", "clause", "sentence"]], weights=[0.45, 0.3, 0.1, 0.15])[0]
    for form in order:
        body = forms[form]
        if form in ("sentence", "clause") and (len(body.split()) < 4 or _unbalanced(body)):
            continue
        answer = f"{body} {cites}."
        if (len(answer.split()) <= MAX_ANSWER_WORDS and is_correct(answer, gold)
                and check_citations(answer, quotes).valid):
            return answer
    return None


def _clause(text: str, end: int) -> str:
    """The sentence up to the first clause break after the answer (a mid-sentence clause reads as a fragment)."""
    after = [m.start() for m in _CLAUSE_BREAK.finditer(text, end)]
    return text[: after[0] if after else len(text)]


def _unbalanced(text: str) -> bool:
    return text.count("(") != text.count(")") or text.count('"') % 2 == 1 or text.count("“") != text.count("”")
