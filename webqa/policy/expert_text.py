"""The expert's text work: reading the question, finding the passages worth quoting, writing the answer.

Plain functions of strings and rendered pages, with no browser state: which
words of a question a reader would search for or look up with `Find in page`,
which sentences of a page hold a gold answer and are about the question (the
passages the expert quotes), and the short cited answer drawn from a quote.

    reformulations("Who wrote the novel Lolita?")   # queries to try, most literal first
    passages(page, question, gold, width)            # quotable sentences with the answer, best first
    compose_answer(quotes, gold, question)           # "Lolita was written by ... [1]."
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from webqa.env.answering import check_citations
from webqa.env.browser import Browser
from webqa.env.local import STOPWORDS
from webqa.env.render import Page, strip_markup
from webqa.scoring import is_correct, normalize
from webqa.types import Quote

MAX_ANSWER_WORDS = 30
MAX_QUOTE = 300  # characters of one quote
MIN_COVERAGE = 0.5  # share of the question's content (weighted by rarity) a quoted passage must cover
MIN_COVERAGE_SHORT = 0.75  # the same, when the answer is a number or at most 3 characters
MIN_COVERAGE_LONG = 0.3  # the same, when the answer is 3 words or more (rarely there by chance)

# --- reading the question ----------------------------------------------------------------

# Words that say what is asked, not what about; a reader leaves them out of a query.
_ASKING = frozenset(("what which who whom whose when where why how many much name named called did does "
                     "he she him her his they them me my we our you your s so up now just one both such other "
                     "also very more most some any all can could would should may might into out over only than "
                     "then same given").split())
_WORD = re.compile(r"\d+(?:[.,]\d+)+|\w+(?:[-'’]\w+)*")  # "5,150" is one word, not "5" and "150"


def _stem(word: str) -> str:
    """A crude stem, enough to match `teams` with `team` and `played` with `play`."""
    word = word.lower().replace("’", "'").removesuffix("'s")
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word  # "acquire", "acquired" -> "acquir"


def _stems(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text)}


def stemmed_words(text: str) -> list[str]:
    """The words of `text`, stemmed (as `question_stems` stems them), in order."""
    return [_stem(w) for w in _WORD.findall(text)]


def question_stems(question: str) -> set[str]:
    """The content words of a question, stemmed."""
    return {_stem(w) for w in _WORD.findall(question) if w.lower() not in STOPWORDS | _ASKING}


def _names(question: str) -> list[str]:
    """Names and numbers of the question: quoted titles, runs of capitalized words, numbers."""
    names = re.findall(r"[\"“]([^\"”]+)[\"”]|(?<!\w)'([^']+)'(?!\w)", question)
    names = [double or single for double, single in names]
    run: list[str] = []
    words = _WORD.findall(question) + ["", ""]  # the blanks end the last run
    for index, word in enumerate(words):
        # The first word is capitalized anyway: it counts only when it starts a run ("Loyola University").
        capital = word[:1].isupper() and (index > 0 or words[1][:1].isupper())
        if (capital and word.lower() not in STOPWORDS | _ASKING) or word[:1].isdigit():
            run.append(word)
        elif run:
            names.append(" ".join(run))
            run = []
    return list(dict.fromkeys(names))


def fits(stems: set[str], text: str) -> bool:
    """Whether `text` (a result's title and snippet) shares a content word with the question."""
    return bool(stems & _stems(text))


def reformulations(question: str) -> list[str]:
    """Queries a reader might type: the question, its keywords, its names, its longest words."""
    keywords = [w for w in _WORD.findall(question.rstrip("?")) if w.lower() not in STOPWORDS | _ASKING]
    longest = sorted(dict.fromkeys(keywords), key=len, reverse=True)
    names = _names(question)
    named = " ".join(names + [w for w in longest if w not in " ".join(names)][:2]) if names else ""
    specific = [w for w in dict.fromkeys(keywords) if w in longest[:3]]  # the three longest, in question order
    queries = [" ".join(question.rstrip("?").split()), " ".join(keywords), named, " ".join(specific)]
    return list(dict.fromkeys(q for q in queries if q.strip()))


def find_needles(question: str) -> list[str]:
    """Words of the question a reader could look for with `Find in page`, most specific first."""
    words = _WORD.findall(question)
    keep = [w for w in words if len(w) >= 3 and w.lower() not in STOPWORDS | _ASKING]
    pairs = [f"{a} {b}" for a, b in itertools.pairwise(words) if a in keep and b in keep]
    return list(dict.fromkeys(sorted(pairs + keep, key=len, reverse=True)))


def rarity_weights(question: str, frequency: Callable[[str], tuple[int, int]]) -> dict[str, float]:
    """Each content word of the question (stemmed) weighted by its rarity (IDF).

    `frequency(word)` is (pages containing the word, pages in all), as the local corpus counts them.
    """
    weights: dict[str, float] = {}
    for word in dict.fromkeys(_WORD.findall(question.lower())):
        if word in STOPWORDS | _ASKING:
            continue
        found, pages = frequency(word)
        weights[_stem(word)] = max(weights.get(_stem(word), 0.0), math.log((pages + 1) / (found + 1)))
    return weights


# --- reading a page ---------------------------------------------------------------------

_ABBREVIATIONS = frozenset("mr mrs ms dr st jr sr vs c ca no gen col lt mt ft approx est inc co corp".split())
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
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


def _blocks(page: Page, width: int) -> list[tuple[int, int]]:
    """(first, last) line of each paragraph: a line ends one when the next line's first word would have fit."""
    blocks, start = [], 0
    for i in range(len(page.lines) - 1):
        first = re.match(r"(?:【[^】]*】|[^\s【])+", page.lines[i + 1])
        room = len(page.plain_lines[i]) + 1 + len(strip_markup(first.group()) if first else "") <= width
        if room or page.plain_lines[i].startswith("#") or page.plain_lines[i + 1].startswith("#"):
            blocks.append((start, i))
            start = i + 1
    if page.lines:
        blocks.append((start, len(page.lines) - 1))
    return blocks


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of a paragraph; no break after initials and common abbreviations."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start : match.start()].rsplit(None, 1)[-1].rstrip(".!?\"'”’)]").lower()
        if len(before) <= 1 or before in _ABBREVIATIONS:
            continue
        spans.append((start, match.start() + len(match.group().rstrip())))
        start = match.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def line_offsets(page: Page) -> list[int]:
    """Where each line starts in the page's plain text, its lines joined by single spaces."""
    offsets, position = [], 0
    for line in page.plain_lines:
        offsets.append(position)
        position += len(line) + 1
    return offsets


def page_sentences(page: Page, width: int) -> list[tuple[int, int]]:
    """(start, end) of every sentence outside headings, in the page's plain text (`line_offsets`)."""
    offsets, text = line_offsets(page), " ".join(page.plain_lines)
    spans = []
    for first, last in _blocks(page, width):
        if page.plain_lines[first].startswith("#"):
            continue
        base, end = offsets[first], offsets[last] + len(page.plain_lines[last])
        spans += [(a + base, b + base) for a, b in sentence_spans(text[base:end])]
    return spans


def sentences_in_view(browser: Browser, partial: bool = False) -> list[str]:
    """The complete sentences (outside headings) that the browser's window shows; with `partial`,
    also those the window's edges cut, whole."""
    page, settings = browser.page, browser.settings
    offsets, text = line_offsets(page), " ".join(page.plain_lines)
    last = min(browser.cursor + settings.window_lines, len(page.lines)) - 1
    low, high = offsets[browser.cursor], offsets[last] + len(page.plain_lines[last])
    spans = page_sentences(page, settings.line_width)
    if partial:
        return [text[a:b] for a, b in spans if a < high and b > low]
    return [text[a:b] for a, b in spans if low <= a and b <= high]


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
    title = _stems(page.title)
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
        words = _stems(text[a:b])
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

_BRACKETS = re.compile(r"\s*\[[^\]]*\]")
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


def tidy(text: str, capital: bool = True) -> str:
    """One line, no footnote marks, no closing punctuation, capitalized."""
    text = " ".join(_BRACKETS.sub("", strip_markup(text)).split()).strip(" ,;:–—-")
    text = re.sub(r"[.!?:]+(?:\d+)?$", "", text).rstrip()  # also a page's trailing "…:134" page reference
    if capital and text:
        text = text[0].upper() + text[1:]
    return text
