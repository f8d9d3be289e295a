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
    result = expert.demonstrate(question, gold_answers, random.Random(0))
    result.episode, result.answer   # None when the expert could not find the answer
"""

from __future__ import annotations

import bisect
import random
import re
import unicodedata
from dataclasses import dataclass, replace

from webqa.env.answering import check_citations
from webqa.env.backend import Backend, BackendError
from webqa.env.browser import QUOTE_SEPARATOR, Browser, BrowserSettings, _find_quote
from webqa.env.local import STOPWORDS, fts_query
from webqa.env.render import Page, render, strip_markup
from webqa.scoring import is_correct, is_supported, normalize
from webqa.types import Episode

# The browser the small policy drives: a short window keeps observations short.
POLICY_BROWSER = BrowserSettings(window_lines=12, max_actions=16)

MAX_ANSWER_WORDS = 30
MAX_QUOTE = 300  # characters of one quote
SHORT_QUOTE_WORDS = 16  # quote longer passages as `first words━last words`
MAX_PATH = 4  # the most moves (finds, scrolls) the expert plans to bring a passage into view

# How often generation departs from the straight path.
P_WRONG_CLICK = 0.25  # click a plausible result without the answer, then go back
P_TWO_QUOTES = 0.3  # look for a second passage on the same page
P_DETOUR = 0.2  # scroll once more than needed before finding
P_QUERY_STYLE = (0.45, 0.35, 0.2)  # first search: the question / its keywords / a reformulation


@dataclass
class Demo:
    """What `Expert.demonstrate` produces: the episode, its final answer and what happened on the way."""

    episode: Episode
    answer: str
    wrong_clicks: int = 0
    searches: int = 0


# --- reading the question and a page ------------------------------------------------

# Words that say what is asked, not what about; a reader leaves them out of a query.
_ASKING = frozenset(("what which who whom whose when where why how many much name named called did does "
                     "he she him her his they them me my we our us you your").split())
_WORD = re.compile(r"\w+(?:[-'’]\w+)*")
_ABBREVIATIONS = frozenset("mr mrs ms dr st jr sr vs c ca no gen col lt mt ft approx est inc co corp".split())
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")


def _stem(word: str) -> str:
    """A crude stem, enough to match `teams` with `team` and `played` with `play`."""
    word = word.lower().replace("’", "'").removesuffix("'s")
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def question_stems(question: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(question) if w.lower() not in STOPWORDS | _ASKING}


def fits(stems: set[str], text: str) -> bool:
    """Whether `text` (a result's title and snippet) shares a content word with the question."""
    return bool(stems & {_stem(w) for w in _WORD.findall(text)})


def reformulations(question: str) -> list[str]:
    """Queries a reader might type: the question, its keywords, its names and numbers, its longest words."""
    words = _WORD.findall(question.rstrip("?"))
    keywords = [w for w in words if w.lower() not in STOPWORDS | _ASKING]
    # Names: runs of capitalized words (not the question's first word), numbers, quoted titles.
    names = re.findall(r"[\"“]([^\"”]+)[\"”]", question)
    run: list[str] = []
    for index, word in enumerate(words + [""]):
        if word[:1].isupper() and index > 0 or word[:1].isdigit():
            run.append(word)
        else:
            if run:
                names.append(" ".join(run))
            run = []
    longest = sorted(dict.fromkeys(keywords), key=len, reverse=True)
    others = [w for w in longest if w not in " ".join(names)][:2]
    named = " ".join(dict.fromkeys(names + others)) if names else ""
    queries = [" ".join(question.rstrip("?").split()), " ".join(keywords), named, " ".join(longest[:3])]
    return list(dict.fromkeys(q for q in queries if q.strip()))


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """Words of `text` normalized as the scorer does (accents folded, no articles), with their offsets."""
    out = []
    for match in re.finditer(r"[^\W_]+", text):
        folded = "".join(c for c in unicodedata.normalize("NFKD", match.group()) if not unicodedata.combining(c))
        for token in normalize(folded).split():
            out.append((token, match.start(), match.end()))
    return out


def alias_span(text: str, gold: list[str], question: str = "") -> tuple[int, int] | None:
    """Where the longest gold alias that is not in the question occurs in `text`, as whole words."""
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


def passages(page: Page, question: str, gold: list[str], width: int) -> list[Passage]:
    """Sentences (cut to MAX_QUOTE characters) holding a gold answer and two question words, best first.

    One shared word is too weak: a page about something else can mention the answer in passing.
    """
    stems = question_stems(question)
    needed = min(2, len(stems)) or 1
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
            sentence = text[a:b]
            score = len(stems & {_stem(w) for w in _WORD.findall(sentence)})
            if score >= needed and alias_span(sentence, gold, question):
                line_of = bisect.bisect_right(offsets, a) - 1, bisect.bisect_right(offsets, b - 1) - 1
                found.append(Passage(sentence, *line_of, score))
    return sorted(found, key=lambda p: -p.score)


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
    return left, _trim_end(text, left, right)


def _trim_end(text: str, a: int, b: int) -> int:
    """End a span on a word, not on the space or comma of a clause break."""
    while b > a and (text[b - 1].isspace() or text[b - 1] in ",;:("):
        b -= 1
    return b

class Expert:
    """Labels browser states with the right next action, and generates demonstrations."""

    def __init__(self, backend: Backend, settings: BrowserSettings | None = None):
        self.backend = backend
        self.settings = settings or POLICY_BROWSER
        self._pages: dict[tuple[str, int], Page | None] = {}
        self._passages: dict[tuple[str, str], list[Passage]] = {}

    # --- reading pages (cached: labels revisit the same result pages often) ----

    def _page(self, url: str, width: int) -> Page | None:
        key = (url, width)
        if key not in self._pages:
            if len(self._pages) > 512:
                self._pages.clear()
            try:
                self._pages[key] = render(self.backend.fetch(url), width=width)
            except BackendError:
                self._pages[key] = None
        return self._pages[key]

    def _candidates(self, page: Page, question: str, gold: list[str], width: int) -> list[Passage]:
        key = (page.url, question)
        if key not in self._passages:
            if len(self._passages) > 512:
                self._passages.clear()
            self._passages[key] = passages(page, question, gold, width)
        return self._passages[key]

    # --- the decision procedure ----------------------------------------------------

    def label(self, browser: Browser, question: str | None = None, gold: list[str] | None = None, *,
              want_quotes: int = 1, rng: random.Random | None = None) -> str | None:
        """The right next action in `browser`'s current state, or None when the expert sees no way to the answer.

        With `rng`, ties and equally good options are broken at random (generation);
        without it, the choice is deterministic (labelling).
        """
        question = question if question is not None else browser.episode.question
        gold = list(gold or [])
        settings = browser.settings
        page = browser.page
        supported = [q for q in browser.quotes if is_supported([q.text], gold)]
        if supported and (len(supported) >= want_quotes or browser.actions_left <= 2):
            return "End: Answer"
        if page is None:
            return self._search(browser, question, rng)
        if page.url.startswith("search:"):
            if supported:  # a second quote is only sought on the page of the first
                return "End: Answer"
            return self._on_results(browser, page, question, gold, rng)
        return self._on_article(browser, page, question, gold, bool(supported), rng)

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

    def _results(self, page: Page, question: str, gold: list[str], width: int) -> list[tuple[int, int, bool]]:
        """(link id, line, fits the question) for each result, and the best passage score behind it (or 0)."""
        stems = question_stems(question)
        lines = _link_lines(page)
        rows = []
        for link_id, link in enumerate(page.links):
            line = lines.get(link_id)
            if line is None:
                continue
            # A result's snippet runs from its title line to the next result's title line.
            following = [n for n in lines.values() if n > line]
            snippet = " ".join(page.plain_lines[line : min(following, default=len(page.lines))])
            target = self._page(link.url, width)
            best = max((p.score for p in self._candidates(target, question, gold, width)), default=0) if target else 0
            rows.append((link_id, line, fits(stems, snippet), best))
        return rows

    def _on_results(self, browser: Browser, page: Page, question: str, gold: list[str],
                    rng: random.Random | None) -> str | None:
        """Open the result that holds the answer (scrolling to it first), or search again."""
        settings = browser.settings
        rows = [r for r in self._results(page, question, gold, settings.line_width) if r[2] and r[3]]
        if not rows:
            return self._search(browser, question, rng)
        link_id, line, _, _ = max(rows, key=lambda r: (r[3], -r[0]))
        moves = _plan(page, browser.cursor, line, line, settings, needles=[])
        if moves is None:
            return self._search(browser, question, rng)
        if not moves:
            return f"Clicked on link {link_id}"
        return moves[0]

    def _on_article(self, browser: Browser, page: Page, question: str, gold: list[str], have_quote: bool,
                    rng: random.Random | None) -> str | None:
        """Quote the best passage with the answer (bringing it into view first), or go back."""
        settings = browser.settings
        used = sum(len(q.text) for q in browser.quotes)
        fresh = [p for p in self._candidates(page, question, gold, settings.line_width)
                 if len(p.text) <= settings.max_quote_chars - used and not _already_quoted(p, page, browser)]
        if len(browser.quotes) >= settings.max_quotes:
            fresh = []
        needles = _needles(question)
        for passage in fresh:
            moves = _plan(page, browser.cursor, passage.first_line, passage.last_line, settings, needles, rng)
            # Bringing it into view, quoting and ending must fit in the actions left.
            if moves is None or len(moves) + (1 if have_quote else 2) > browser.actions_left:
                continue
            return moves[0] if moves else quote_action(passage.text, " ".join(page.plain_lines))
        if have_quote:
            return "End: Answer"
        return "Back"

    # --- generation ------------------------------------------------------------------

    def demonstrate(self, question: str, gold: list[str], rng: random.Random) -> Demo | None:
        """One episode on `question`, ending with a checked answer; None when the answer was not reached."""
        browser = Browser(self.backend, replace(self.settings))
        browser.reset(question)
        want = 2 if rng.random() < P_TWO_QUOTES else 1
        wrong_click = rng.random() < P_WRONG_CLICK
        demo_wrong = 0
        while not browser.done:
            action = None
            page = browser.page
            if wrong_click and page is not None and page.url.startswith("search:"):
                action = self._wrong_click(browser, page, question, gold, rng)
                if action:
                    wrong_click, demo_wrong = False, demo_wrong + 1
            if action is None:
                action = self.label(browser, question, gold, want_quotes=want, rng=rng)
            if action is None:
                return None
            browser.step(action)
        episode = browser.episode
        if episode.end != "Answer" or not is_supported([q.text for q in episode.quotes], gold):
            return None
        answer = compose_answer(episode.quotes, gold, question, rng)
        if answer is None:
            return None
        episode.answer = answer
        searches = sum(a.startswith("Search ") for a in episode.actions)
        return Demo(episode=episode, answer=answer, wrong_clicks=demo_wrong, searches=searches)

    def _wrong_click(self, browser: Browser, page: Page, question: str, gold: list[str],
                     rng: random.Random) -> str | None:
        """A visible result that fits the question but does not hold the answer, if there is one."""
        window = range(browser.cursor, browser.cursor + browser.settings.window_lines)
        rows = self._results(page, question, gold, browser.settings.line_width)
        if not any(r[2] and r[3] for r in rows):
            return None  # nothing right on this page: the wrong click would not be a detour
        wrong = [r[0] for r in rows if r[2] and not r[3] and r[1] in window
                 and self._page(page.links[r[0]].url, browser.settings.line_width) is not None]
        return f"Clicked on link {rng.choice(wrong)}" if wrong else None


def label(browser: Browser, question: str | None = None, gold: list[str] | None = None, *,
          want_quotes: int = 1, rng: random.Random | None = None) -> str | None:
    """The expert's next action for any browser state (see `Expert.label`); None when it sees no way on."""
    return Expert(browser.backend, browser.settings).label(browser, question, gold, want_quotes=want_quotes, rng=rng)


# --- actions -------------------------------------------------------------------------


def quote_action(text: str, page_text: str) -> str:
    """`Quote: <text>`, in the short `start━end` form for long passages when it names the same span."""
    words = text.split()
    if len(words) > SHORT_QUOTE_WORDS:
        for n in range(4, len(words) // 2):
            short = f"{' '.join(words[:n])}{QUOTE_SEPARATOR}{' '.join(words[-n:])}"
            if _find_quote(short, page_text) == text:
                return f"Quote: {short}"
    return f"Quote: {text}"


def _already_quoted(passage: Passage, page: Page, browser: Browser) -> bool:
    return any(q.url == page.url and (passage.text in q.text or q.text in passage.text) for q in browser.quotes)


def _link_lines(page: Page) -> dict[int, int]:
    """The line each numbered link appears on."""
    found: dict[int, int] = {}
    for number, line in enumerate(page.lines):
        for match in re.finditer(r"【(\d+)†", line):
            found.setdefault(int(match.group(1)), number)
    return found


def _needles(question: str) -> list[str]:
    """Words of the question a reader could look for with `Find in page`, most specific first."""
    words = re.findall(r"\w+(?:[-'’]\w+)*", question)
    keep = [w for w in words if len(w) >= 3 and w.lower() not in STOPWORDS]
    pairs = [f"{a} {b}" for a, b in zip(words, words[1:]) if a in keep and b in keep]
    return list(dict.fromkeys(sorted(pairs + keep, key=len, reverse=True)))


def _hits(page: Page, needle: str) -> list[int]:
    """Lines where `Find in page: needle` can stop, as the browser matches them (a match may straddle lines)."""
    needle = " ".join(needle.lower().split())
    lines = [line.lower() for line in page.plain_lines]
    return [i for i in range(len(lines))
            if needle in lines[i] or (i + 1 < len(lines) and needle not in lines[i + 1]
                                      and needle in f"{lines[i]} {lines[i + 1]}")]


def _plan(page: Page, cursor: int, first: int, last: int, settings: BrowserSettings, needles: list[str],
          rng: random.Random | None = None) -> list[str] | None:
    """The shortest moves that bring lines first..last into the window (empty: already in view); None if none.

    With `rng`, one of several shortest plans is picked at random, and sometimes one a scroll longer.
    """
    window = settings.window_lines
    if last - first >= window:
        return None
    goal = range(max(0, last - window + 1), first + 1)
    bottom = max(0, len(page.lines) - window)
    hits = {f"Find in page: {n}": h for n in needles if (h := _hits(page, n))}

    def moves(at: int) -> list[tuple[str, int]]:
        out = []
        for action, lines in hits.items():  # Find goes to the next match after the cursor, wrapping around
            after = [i for i in lines if i > at]
            out.append((action, after[0] if after else lines[0]))
        for n in (1, 2, 3):
            out.append((f"Scrolled down {n}", min(at + n * window, bottom)))
            out.append((f"Scrolled up {n}", max(at - n * window, 0)))
        out.append(("Top", 0))
        return [(a, to) for a, to in out if to != at]

    # Breadth-first search over cursor positions, keeping a few shortest ways to each.
    paths: dict[int, list[list[str]]] = {cursor: [[]]}
    frontier = [cursor]
    for _ in range(MAX_PATH + 1):
        options = [p for c in frontier if c in goal for p in paths[c]]
        if options:
            if rng is None:
                return options[0]
            if options[0] and rng.random() < P_DETOUR:
                detour = [a for a, to in moves(cursor) if a == "Scrolled down 1" and to < goal.start]
                if detour:
                    return detour
            return rng.choice(options)
        reached: dict[int, list[list[str]]] = {}
        for at in frontier:
            for action, to in moves(at):
                if to not in paths:
                    reached.setdefault(to, []).extend(p + [action] for p in paths[at][:4])
        paths.update(reached)
        frontier = list(reached)
    return None


# --- the answer ------------------------------------------------------------------------


_CLAUSE_BREAK = re.compile(r"[;:,()]\s|\s[–—-]\s")
_BRACKETS = re.compile(r"\s*\[[^\]]*\]")


def compose_answer(quotes, gold: list[str], question: str, rng: random.Random | None = None) -> str | None:
    """A short answer drawn from the first quote holding a gold answer, citing every quote that holds it.

    Tries the whole sentence, the clause with the answer, or the answer alone, in a random order
    of preference, and returns the first that is correct, cited and at most 30 words.
    """
    found = [(n, alias_span(q.text, gold, question)) for n, q in enumerate(quotes, start=1)]
    found = [(n, span) for n, span in found if span]
    if not found:
        return None
    number, (start, end) = found[0]
    text = quotes[number - 1].text
    surface = text[start:end]
    cites = "".join(f"[{n}]" for n, span in found if surface.lower() in quotes[n - 1].text.lower())
    forms = {
        "sentence": _tidy(text),
        "clause": _tidy(_clause(text, start, end)),
        "alias": _tidy(surface),
        "lead-in": f"The answer is {_tidy(surface, capital=False)}",
    }
    order = ["sentence", "clause", "alias", "lead-in"]
    if rng is not None:
        order = rng.choices([order, ["clause", "sentence", "lead-in"], ["alias", "sentence", "clause"],
                             ["lead-in", "clause", "sentence"]], weights=[0.45, 0.3, 0.1, 0.15])[0]
    for form in order:
        body = forms[form]
        if len(body.split()) < (1 if form in ("alias", "lead-in") else 4):
            continue
        answer = f"{body} {cites}."
        if (len(answer.split()) <= MAX_ANSWER_WORDS and is_correct(answer, gold)
                and check_citations(answer, quotes).valid):
            return answer
    return None


def _clause(text: str, start: int, end: int) -> str:
    """The stretch of `text` between the clause breaks around start..end."""
    before = [m.end() for m in _CLAUSE_BREAK.finditer(text, 0, start)]
    after = [m.start() for m in _CLAUSE_BREAK.finditer(text, end)]
    return text[before[-1] if before else 0 : after[0] if after else len(text)]


def _tidy(text: str, capital: bool = True) -> str:
    """One line, no page footnote marks, no closing punctuation, capitalized."""
    text = " ".join(_BRACKETS.sub("", strip_markup(text)).split()).strip(" ,;:–—-")
    text = text.rstrip(".!?").rstrip()
    if capital and text:
        text = text[0].upper() + text[1:]
    return text
