"""A scripted expert that browses like a careful reader, steered by the gold answer.

Every action it takes is one a reader without the gold answer could justify
from the screen: search with (a reformulation of) the question, click a result
whose title or snippet shares words with the question, find a word of the
question, scroll, quote a sentence, go back. The gold answer only decides
which of those actions is the right one: which result holds the answer, which
sentence to quote.

There is one decision procedure, `Expert.label`: given any live browser it
names the right next action. It labels states a policy reached (DAgger), and
`Expert.demonstrate` generates whole episodes by calling it repeatedly, with
seeded random choices and some injected mistakes (a wrong click, then `Back`),
so a cloned policy sees recovery rather than one fixed script.

    expert = Expert(LocalCorpus.default())
    demo = expert.demonstrate(question, gold_answers, random.Random(0))
    demo.episode, demo.answer          # demo is None when the answer was not reached
    label(browser, question, gold)     # the next action for any live browser
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import re
import unicodedata
from dataclasses import dataclass, replace

from webqa.env.answering import check_citations
from webqa.env.backend import Backend, BackendError
from webqa.env.browser import QUOTE_SEPARATOR, Browser, BrowserSettings, _find_quote
from webqa.env.local import STOPWORDS, fts_query
from webqa.env.render import Page, render, search_page, strip_markup
from webqa.scoring import is_correct, is_supported, normalize
from webqa.types import Episode, Quote

# The browser the small policy drives: a short window keeps observations short.
POLICY_BROWSER = BrowserSettings(window_lines=12, max_actions=16)

MAX_ANSWER_WORDS = 30
MAX_QUOTE = 300  # characters of one quote
SHORT_QUOTE_WORDS = 16  # quote longer passages as `first words━last words`
MIN_COVERAGE = 0.5  # share of the question's content (weighted by rarity) a quoted passage must cover
MIN_COVERAGE_SHORT = 0.75  # the same, when the answer is a number or at most 3 characters
MIN_COVERAGE_LONG = 0.3  # the same, when the answer is 3 words or more (rarely there by chance)
MAX_PATH = 4  # the most moves (finds, scrolls) the expert plans to bring a passage into view

# How often generation departs from the straight path.
P_WRONG_CLICK = 0.25  # click a plausible result without the answer, then go back
P_TWO_QUOTES = 0.3  # back up and quote a second page (or a second passage of the same page)
P_DETOUR = 0.25  # on a fresh page, scroll down once before finding
P_QUERY_STYLE = (0.45, 0.35, 0.2)  # first search: the question / its keywords / its names

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


def _needles(question: str) -> list[str]:
    """Words of the question a reader could look for with `Find in page`, most specific first."""
    words = _WORD.findall(question)
    keep = [w for w in words if len(w) >= 3 and w.lower() not in STOPWORDS | _ASKING]
    pairs = [f"{a} {b}" for a, b in itertools.pairwise(words) if a in keep and b in keep]
    return list(dict.fromkeys(sorted(pairs + keep, key=len, reverse=True)))


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


def _sentences(text: str) -> list[tuple[int, int]]:
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
    offsets, position = [], 0
    for line in page.plain_lines:
        offsets.append(position)
        position += len(line) + 1
    text = " ".join(page.plain_lines)
    found = []
    for first, last in _blocks(page, width):
        if page.plain_lines[first].startswith("#"):
            continue
        base = offsets[first]
        for a, b in _sentences(text[base : offsets[last] + len(page.plain_lines[last])]):
            a, b = a + base, b + base
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


# --- the expert -------------------------------------------------------------------------


@dataclass
class Demo:
    """What `Expert.demonstrate` produces: the episode, its final answer, and its detours."""

    episode: Episode
    answer: str
    wrong_clicks: int = 0


@dataclass
class _Result:
    """A search result as the expert sees it."""

    link: int
    line: int
    url: str
    fits: bool  # title or snippet shares a word with the question
    score: int  # the best reachable passage behind it, 0 if none


class Expert:
    """Labels browser states with the right next action, and generates demonstrations."""

    def __init__(self, backend: Backend, settings: BrowserSettings | None = None):
        self.backend = backend
        self.settings = settings or POLICY_BROWSER
        self._pages: dict[tuple[str, int], Page | None] = {}
        self._passages: dict[tuple, list[Passage]] = {}
        self._idf: dict[str, dict[str, float]] = {}

    def _page(self, url: str, width: int) -> Page | None:
        """A result's page as the browser will render it (cached: labels revisit the same pages)."""
        if (url, width) not in self._pages:
            if len(self._pages) > 256:
                self._pages.clear()
            try:
                self._pages[url, width] = render(self.backend.fetch(url), width=width)
            except BackendError:
                self._pages[url, width] = None
        return self._pages[url, width]

    def _weights(self, question: str) -> dict[str, float] | None:
        """Each content word of the question (stemmed) weighted by its rarity in the encyclopedia (IDF).

        A word no page contains weighs most: a passage cannot cover it, and a question about something
        the encyclopedia lacks must not be answered from a page about something else.
        Only the local corpus can count; elsewhere None.
        """
        frequency = getattr(self.backend, "document_frequency", None)
        if frequency is None:
            return None
        if question not in self._idf:
            if len(self._idf) > 256:
                self._idf.clear()
            weights: dict[str, float] = {}
            for word in dict.fromkeys(_WORD.findall(question.lower())):
                if word in STOPWORDS | _ASKING:
                    continue
                found, pages = frequency(word)
                weights[_stem(word)] = max(weights.get(_stem(word), 0.0), math.log((pages + 1) / (found + 1)))
            self._idf[question] = weights
        return self._idf[question]

    def _candidates(self, page: Page, question: str, gold: list[str], settings: BrowserSettings) -> list[Passage]:
        """Passages of `page` worth quoting that can be brought into view from its top."""
        key = (page.url, question, tuple(gold), settings.line_width, settings.window_lines)
        if key not in self._passages:
            if len(self._passages) > 256:
                self._passages.clear()
            needles = _needles(question)
            found = passages(page, question, gold, settings.line_width, self._weights(question))
            self._passages[key] = [p for p in found
                                   if _plan(page, 0, p.first_line, p.last_line, settings, needles) is not None]
        return self._passages[key]

    # --- the decision procedure -------------------------------------------------------

    def label(self, browser: Browser, question: str | None = None, gold: list[str] | None = None, *,
              want_quotes: int = 1, rng: random.Random | None = None) -> str | None:
        """The right next action in `browser`'s state, or None when the expert sees no way to the answer.

        With `rng`, equally good options are chosen at random (generation); without, deterministically.
        """
        question = question if question is not None else browser.episode.question
        gold = list(gold or [])
        page = browser.page
        supported = [q for q in browser.quotes if is_supported([q.text], gold)]
        if supported and (len(supported) >= want_quotes or browser.actions_left <= 2):
            return "End: Answer"
        if page is None:
            return self._search(browser, question, rng)
        if page.url.startswith("search:"):
            return self._on_results(browser, page, question, gold, supported, rng)
        return self._on_article(browser, page, question, gold, supported, rng)

    def _search(self, browser: Browser, question: str, rng: random.Random | None) -> str | None:
        """Search with a reformulation whose words differ from every query tried so far."""
        tried = {fts_query(a[len("Search "):]) for a in browser.episode.actions if a.startswith("Search ")}
        queries = reformulations(question)
        if not tried and rng is not None:
            style = rng.choices(range(len(P_QUERY_STYLE)), weights=P_QUERY_STYLE)[0]
            queries = queries[style:] + queries[:style]
        for query in queries:
            if fts_query(query) and fts_query(query) not in tried:
                return f"Search {query}"
        return None

    def _results(self, page: Page, question: str, gold: list[str], settings: BrowserSettings) -> list[_Result]:
        stems = question_stems(question)
        lines = _link_lines(page)
        results = []
        for link_id, link in enumerate(page.links):
            if link_id not in lines:
                continue
            # A result's snippet runs from its title line to the next result's title line.
            end = min((n for n in lines.values() if n > lines[link_id]), default=len(page.lines))
            snippet = " ".join(page.plain_lines[lines[link_id] : end])
            target = self._page(link.url, settings.line_width)
            score = max((p.score for p in self._candidates(target, question, gold, settings)), default=0) \
                if target else 0
            results.append(_Result(link_id, lines[link_id], link.url, fits(stems, snippet), score))
        return results

    def _right_results(self, page: Page, question: str, gold: list[str], settings: BrowserSettings,
                       quotes: list[Quote]) -> list[_Result]:
        """Results that fit the question and hold a quotable answer not quoted yet, best first."""
        quoted = {q.url for q in quotes}
        right = [r for r in self._results(page, question, gold, settings) if r.fits and r.score
                 and r.url not in quoted]
        return sorted(right, key=lambda r: (-r.score, r.link))

    def _on_results(self, browser: Browser, page: Page, question: str, gold: list[str], supported: list[Quote],
                    rng: random.Random | None) -> str | None:
        """Open the result that holds the answer (scrolling to it first), or search again."""
        right = self._right_results(page, question, gold, browser.settings, browser.quotes)
        if not right:
            return "End: Answer" if supported else self._search(browser, question, rng)
        moves = _plan(page, browser.cursor, right[0].line, right[0].line, browser.settings, needles=[])
        if moves is None:
            return "End: Answer" if supported else self._search(browser, question, rng)
        return moves[0] if moves else f"Clicked on link {right[0].link}"

    def _on_article(self, browser: Browser, page: Page, question: str, gold: list[str], supported: list[Quote],
                    rng: random.Random | None) -> str | None:
        """Quote the best passage with the answer (bringing it into view first), or go back."""
        settings = browser.settings
        used = sum(len(q.text) for q in browser.quotes)
        fresh = [p for p in self._candidates(page, question, gold, settings)
                 if len(p.text) <= settings.max_quote_chars - used and not _already_quoted(p, page, browser.quotes)]
        if len(browser.quotes) >= settings.max_quotes:
            fresh = []
        for passage in fresh:
            moves = _plan(page, browser.cursor, passage.first_line, passage.last_line, settings,
                          _needles(question), rng)
            # Bringing it into view, quoting and ending must fit in the actions left.
            if moves is None or len(moves) + (1 if supported else 2) > browser.actions_left:
                continue
            return moves[0] if moves else quote_action(passage.text, " ".join(page.plain_lines))
        if supported and not (browser.actions_left >= 5 and self._another_page(browser, question, gold)):
            return "End: Answer"
        return "Back"

    def _another_page(self, browser: Browser, question: str, gold: list[str]) -> bool:
        """Whether the last search listed another page with the answer, worth going back for."""
        searches = [a[len("Search "):] for a in browser.episode.actions if a.startswith("Search ")]
        if not searches:
            return False
        settings = browser.settings
        results = self.backend.search(searches[-1], k=settings.search_results)
        page = render_search(searches[-1], results, self.backend)
        return bool(self._right_results(page, question, gold, settings, browser.quotes))

    # --- generation ---------------------------------------------------------------------

    def demonstrate(self, question: str, gold: list[str], rng: random.Random) -> Demo | None:
        """One episode on `question`, ending with a checked answer; None when the answer was not reached."""
        browser = Browser(self.backend, replace(self.settings))
        browser.reset(question)
        want = 2 if rng.random() < P_TWO_QUOTES else 1
        wrong_click, wrong_clicks = rng.random() < P_WRONG_CLICK, 0
        while not browser.done:
            action = None
            if wrong_click and browser.page is not None and browser.page.url.startswith("search:"):
                action = self._wrong_click(browser, question, gold, rng)
                wrong_click, wrong_clicks = action is None, wrong_clicks + (action is not None)
            action = action or self.label(browser, question, gold, want_quotes=want, rng=rng)
            if action is None:
                return None
            browser.step(action)
        episode = browser.episode
        if episode.end != "Answer" or not is_supported([q.text for q in episode.quotes], gold):
            return None
        episode.answer = compose_answer(episode.quotes, gold, question, rng)
        return Demo(episode, episode.answer, wrong_clicks) if episode.answer else None

    def _wrong_click(self, browser: Browser, question: str, gold: list[str], rng: random.Random) -> str | None:
        """A visible result that fits the question but holds no answer, when a right one is listed too."""
        page, settings = browser.page, browser.settings
        window = range(browser.cursor, browser.cursor + settings.window_lines)
        results = self._results(page, question, gold, settings)
        if browser.quotes or not any(r.fits and r.score for r in results):
            return None
        wrong = [r.link for r in results if r.fits and not r.score and r.line in window
                 and self._page(r.url, settings.line_width) is not None]
        return f"Clicked on link {rng.choice(wrong)}" if wrong else None


def label(browser: Browser, question: str | None = None, gold: list[str] | None = None, *,
          want_quotes: int = 1, rng: random.Random | None = None) -> str | None:
    """The expert's next action for any live browser (see `Expert.label`); None when it sees no way on."""
    return Expert(browser.backend, browser.settings).label(browser, question, gold, want_quotes=want_quotes, rng=rng)


def render_search(query: str, results, backend: Backend) -> Page:
    """The search page the browser shows for `results` (always at the default width, as the browser does)."""
    return search_page(query, results, getattr(backend, "name", "search"))


# --- moving on a page ---------------------------------------------------------------------


def quote_action(text: str, page_text: str) -> str:
    """`Quote: <text>`, in the short `start━end` form for long passages when it names the same span."""
    words = text.split()
    if len(words) > SHORT_QUOTE_WORDS:
        for n in range(4, len(words) // 2):
            short = f"{' '.join(words[:n])}{QUOTE_SEPARATOR}{' '.join(words[-n:])}"
            if _find_quote(short, page_text) == text:
                return f"Quote: {short}"
    return f"Quote: {text}"


def _already_quoted(passage: Passage, page: Page, quotes: list[Quote]) -> bool:
    return any(q.url == page.url and (passage.text in q.text or q.text in passage.text) for q in quotes)


def _link_lines(page: Page) -> dict[int, int]:
    """The line each numbered link appears on."""
    found: dict[int, int] = {}
    for number, line in enumerate(page.lines):
        for match in re.finditer(r"【(\d+)†", line):
            found.setdefault(int(match.group(1)), number)
    return found


def _hits(page: Page, needle: str) -> list[int]:
    """Lines where `Find in page: needle` can stop, as the browser matches them (a match may straddle lines)."""
    needle = " ".join(needle.lower().split())
    lines = [line.lower() for line in page.plain_lines]
    return [i for i in range(len(lines))
            if needle in lines[i] or (i + 1 < len(lines) and needle not in lines[i + 1]
                                      and needle in f"{lines[i]} {lines[i + 1]}")]


def _plan(page: Page, cursor: int, first: int, last: int, settings: BrowserSettings, needles: list[str],
          rng: random.Random | None = None) -> list[str] | None:
    """The shortest moves that bring lines first..last into the window (empty: in view already); None if none.

    With `rng`, one of the shortest plans is drawn (finds and short scrolls preferred), and on a
    fresh page sometimes a scroll down comes first, as a reader skims before searching.
    """
    window = settings.window_lines
    if last - first >= window:
        return None
    goal = range(max(0, last - window + 1), first + 1)
    bottom = max(0, len(page.lines) - window)
    hits = {f"Find in page: {n}": h for n in needles if (h := _hits(page, n))}

    def moves(at: int) -> list[tuple[str, int]]:
        out = []
        for action, lines in hits.items():  # Find goes to the next match below the cursor, wrapping around
            below = bisect.bisect_right(lines, at)
            out.append((action, lines[below] if below < len(lines) else lines[0]))
        for n in (1, 2, 3):
            out += [(f"Scrolled down {n}", min(at + n * window, bottom)), (f"Scrolled up {n}", max(at - n * window, 0))]
        out.append(("Top", 0))
        return [(a, to) for a, to in out if to != at]

    # Breadth-first over cursor positions, keeping a few shortest ways to each.
    paths: dict[int, list[list[str]]] = {cursor: [[]]}
    frontier = [cursor]
    for _ in range(MAX_PATH + 1):
        options = [p for c in frontier if c in goal for p in paths[c]]
        if options:
            if rng is None or not options[0]:
                return options[0]
            if cursor == 0 and rng.random() < P_DETOUR:
                detour = [[a] for a, to in moves(cursor) if a == "Scrolled down 1" and to < goal.start]
                if detour:
                    return detour[0]
            weights = [3 if p[0].startswith("Find") else 2 if p[0] == "Scrolled down 1" else 1 for p in options]
            return rng.choices(options, weights=weights)[0]
        reached: dict[int, list[list[str]]] = {}
        for at in frontier:
            for action, to in moves(at):
                if to not in paths:
                    reached.setdefault(to, []).extend(p + [action] for p in paths[at][:4])
        paths.update(reached)
        frontier = list(reached)
    return None


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
    forms = {"sentence": _tidy(text), "clause": _tidy(_clause(text, end)), "alias": _tidy(surface),
             "lead-in": f"The answer is {_tidy(inner, capital=False)}"}
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


def _tidy(text: str, capital: bool = True) -> str:
    """One line, no footnote marks, no closing punctuation, capitalized."""
    text = " ".join(_BRACKETS.sub("", strip_markup(text)).split()).strip(" ,;:–—-")
    text = re.sub(r"[.!?:]+(?:\d+)?$", "", text).rstrip()  # also a page's trailing "…:134" page reference
    if capital and text:
        text = text[0].upper() + text[1:]
    return text
