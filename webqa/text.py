"""Gold-free text helpers: the words of a question, the sentences of a page, the quote command.

Plain functions of strings, rendered pages and the browser's window; none knows a
gold answer, so the policy, its reader and the scripted expert share them (the
expert's gold-steered text work, which passages hold the answer and the answer
sentence, is in `webqa.policy.expert_text`).

    question_stems("Which teams played?")      # {"team", "play"}: the question's content words, stemmed
    find_needles(question)                     # words to look for with `Find in page`, most specific first
    reformulations(question)                   # queries to try, most literal first
    sentence_spans(paragraph)                  # (start, end) of each sentence: the one sentence splitter
    sentences_in_view(browser)                 # the whole sentences the browser's window shows
    quote_action(passage_text, page_text)      # "Quote: first words━last words"
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable

from webqa.env.browser import QUOTE_SEPARATOR, Browser, find_quote
from webqa.env.local import STOPWORDS
from webqa.env.render import Page, strip_markup

SHORT_QUOTE_WORDS = 16  # quote longer passages as `first words━last words`

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


# --- writing ------------------------------------------------------------------------------

_BRACKETS = re.compile(r"\s*\[[^\]]*\]")


def quote_action(text: str, page_text: str) -> str:
    """`Quote: <text>`, in the short `start━end` form for long passages when it names the same span."""
    words = text.split()
    if len(words) > SHORT_QUOTE_WORDS:
        for n in range(4, len(words) // 2):
            short = f"{' '.join(words[:n])}{QUOTE_SEPARATOR}{' '.join(words[-n:])}"
            if find_quote(short, page_text) == text:
                return f"Quote: {short}"
    return f"Quote: {text}"


def tidy(text: str, capital: bool = True) -> str:
    """One line, no footnote marks, no closing punctuation, capitalized."""
    text = " ".join(_BRACKETS.sub("", strip_markup(text)).split()).strip(" ,;:–—-")
    text = re.sub(r"[.!?:]+(?:\d+)?$", "", text).rstrip()  # also a page's trailing "…:134" page reference
    if capital and text:
        text = text[0].upper() + text[1:]
    return text
