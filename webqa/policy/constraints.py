"""What the policy may write next: grammars for constrained sampling.

A small model often writes a command that is almost right: a link number the
page does not have, a quote with one word changed, a citation `[3]` when it
collected two quotes. The sampler therefore asks a grammar, token by token,
whether the line written so far can still become a valid line, and samples only
among the tokens that keep it so (see `Sampler.sample`). The model still
chooses; the grammar only removes the choices the browser would refuse.

    grammar = action_grammar(browser)     # for the next browsing command
    grammar.allows("Clicked on link 1")   # True if link 1 is in view
    grammar.complete("Quote: The Danube") # True if those words are on the screen

The grammars read the browser's public state and never change it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from webqa.env.answering import CITATION
from webqa.env.browser import QUOTE_SEPARATOR, Browser, find_quote, matching_lines, normalize_text
from webqa.env.commands import END_REASONS
from webqa.env.render import strip_markup
from webqa.scoring import MAX_ANSWER_WORDS, answer_words, normalize

SEARCH, FIND, QUOTE = "Search ", "Find in page: ", "Quote: "
MIN_QUOTE_WORDS = 3  # shorter quotes say too little to support an answer
MAX_REPEATS = 2  # the most times in a row the same command may be given
MAX_RUN = 4  # the most commands of one kind (Find, Scroll down, ...) in a row
KINDS = (SEARCH, FIND, QUOTE, "Clicked on link ", "Scrolled down ", "Scrolled up ", "Top", "Back", "End: ")


class LineGrammar(Protocol):
    """Which lines of text are valid; both methods take the text written so far. A grammar may also
    have `forced(text) -> str`, the text that every valid line starting with `text` goes on with,
    which the sampler then writes without asking the model (see `ActionGrammar.forced`)."""

    def allows(self, text: str) -> bool:
        """Whether `text` is a valid line or can still grow into one."""

    def complete(self, text: str) -> bool:
        """Whether `text`, ended here, is a valid line."""

    def wide_characters(self) -> set[str] | None:
        """The characters beyond ASCII a line may hold (None: any), for tokens that end inside one."""


def _readable(text: str) -> bool:
    """No control characters, and no broken ones (U+FFFD stands for bytes that made no character)."""
    return text.isprintable() and "\ufffd" not in text


def _prefix_of_any(text: str, lines) -> bool:
    return any(line.startswith(text) for line in lines)


@dataclass
class ActionGrammar:
    """The commands the browser would accept in its current state, in the demonstrations' spelling."""

    fixed: list[str]  # whole commands: links in view, scrolls that move, Back, Top, End: ...
    free: list[str] = field(default_factory=lambda: [SEARCH])  # commands followed by free text, usable here
    page_lines: list[str] = field(default_factory=list)  # plain text of the whole page (Find in page)
    window_text: str = ""  # plain text on the screen (Quote)
    quoted: set[str] = field(default_factory=set)  # passages already quoted from this page
    quote_room: int = 0  # characters of quotes left; 0 when no more quotes are allowed
    banned: str | None = None  # a command just repeated as often as allowed in a row
    searched: set[str] = field(default_factory=set)  # queries searched already (their words, normalized)

    def allows(self, text: str) -> bool:
        text = text.lstrip()
        if _prefix_of_any(text, self.fixed) or _prefix_of_any(text, self.free):
            return True
        form = next((form for form in self.free if text.startswith(form)), None)
        if form == SEARCH:
            return _readable(text)
        if form == FIND:
            return normalize_text(text[len(FIND):].lstrip()) in self._page_normalized
        if form == QUOTE:
            return self._quote_prefix_ok(text[len(QUOTE):].lstrip())
        return False

    def complete(self, text: str) -> bool:
        text = text.strip()
        if text == self.banned:
            return False
        if text in self.fixed:
            return True
        form = next((form for form in self.free if text.startswith(form)), None)
        if form == SEARCH:
            query = text[len(SEARCH):].strip()
            return bool(query) and _readable(text) and normalize(query) not in self.searched
        if form == FIND:
            needle = text[len(FIND):].strip()
            return bool(needle) and bool(matching_lines(self.page_lines, needle))
        if form == QUOTE:
            return self._quote_ok(text[len(QUOTE):].strip())
        return False

    def forced(self, text: str) -> str:
        """What every valid command that starts with `text` goes on with, up to the end of a word: after
        `Cl`, "icked on link" (the space after it is left to the model, whose word tokens carry their space
        in front); "" where the next characters are a choice, or once the free text of a command has begun.
        """
        text = text.lstrip()
        lines = [line for line in self.fixed + self.free if line.startswith(text)]
        if not lines or text in lines or any(text.startswith(form) for form in self.free):
            return ""  # no way on, the line may end here, or free text: nothing is forced
        return os.path.commonprefix(lines)[len(text):].rstrip()

    # --- quotes ----------------------------------------------------------------

    def wide_characters(self) -> set[str]:
        return self._wide

    @cached_property
    def _wide(self) -> set[str]:
        text = " ".join(self.page_lines) + QUOTE_SEPARATOR + "".join(self.fixed)
        return {char for char in text if ord(char) > 127}

    @cached_property
    def _page_normalized(self) -> str:
        return normalize_text(" ".join(self.page_lines))

    @cached_property
    def _window_normalized(self) -> str:
        return normalize_text(self.window_text)

    def _quote_prefix_ok(self, quote: str) -> bool:
        """The start of a quote: words on the screen, or `start━` and the start of an end found after it."""
        haystack = self._window_normalized
        start, separator, end = quote.partition(QUOTE_SEPARATOR)
        start = normalize_text(strip_markup(start))
        if not separator:
            return start.lstrip() in haystack
        start = start.strip()
        begin = haystack.find(start)
        if not start or begin < 0:
            return False
        return normalize_text(end).lstrip() in haystack[begin + len(start):]

    def _quote_ok(self, quote: str) -> bool:
        """A whole quote: on the screen, ending at a word's end, long enough, new, and within the room left."""
        passage = find_quote(strip_markup(quote), self.window_text)
        if passage is None or len(passage.split()) < MIN_QUOTE_WORDS:
            return False
        end = self.window_text.find(passage) + len(passage)
        cuts_a_word = end < len(self.window_text) and self.window_text[end].isalnum() and passage[-1].isalnum()
        return not cuts_a_word and passage not in self.quoted and len(passage) <= self.quote_room


def rejected_pages(browser: Browser) -> set[str]:
    """URLs of the pages the reader went back from without quoting them: judged useless, not to open again."""
    return set(browser.pages_left) - {quote.url for quote in browser.quotes}


def action_grammar(browser: Browser, max_repeats: int = MAX_REPEATS, max_run: int = MAX_RUN) -> ActionGrammar:
    """The grammar of the next command in `browser`'s current state.

    Greedy decoding of a small model can loop on one command (`Find in page: X`, again
    and again) until the actions run out: each repeat changes the observation very
    little. So a command given `max_repeats` times in a row, or a kind of command
    (Find, Scroll down, Search, ...) given `max_run` times in a row, is left out. In the
    8,700 steps of the shipped demonstrations, the first happens 8 times, the second never.
    Likewise `Clicked on link 0`, `Back`, `Clicked on link 0`, ...: a link to a page the
    reader went back from without quoting it is left out, and so is a query searched before
    (the demonstrations do neither).
    """
    settings, page, cursor = browser.settings, browser.page, browser.cursor
    actions = [action.strip() for action in browser.episode.actions]
    recent = actions[-max_repeats:]
    banned = recent[0] if len(recent) == max_repeats and len(set(recent)) == 1 else None
    kinds = [_kind(action) for action in actions[-max_run:]]
    tired = kinds[0] if len(kinds) == max_run and len(set(kinds)) == 1 else None  # a kind used max_run times

    fixed = [f"End: {reason}" for reason in END_REASONS if reason != "Answer" or browser.quotes]
    free, lines, window_text, quoted, room = [SEARCH], [], "", set(), 0
    if page is not None:
        window = range(cursor, min(cursor + settings.window_lines, len(page.lines)))
        in_view = {int(m) for i in window for m in re.findall(r"【(\d+)†", page.lines[i])}
        rejected = rejected_pages(browser)
        fixed += [f"Clicked on link {link}" for link in sorted(in_view)
                  if link < len(page.links) and page.links[link].url not in rejected]
        if cursor + settings.window_lines < len(page.lines):
            fixed += [f"Scrolled down {n}" for n in (1, 2, 3)]
        if cursor > 0:
            fixed += [f"Scrolled up {n}" for n in (1, 2, 3)] + ["Top"]
        if browser.can_go_back:
            fixed.append("Back")
        quotes = browser.quotes
        if len(quotes) < settings.max_quotes and not page.is_search_results:  # results hold no passages
            room = settings.max_quote_chars - sum(len(q.text) for q in quotes)
        free += [FIND] + [QUOTE] * (room > 0)
        lines, quoted = list(page.plain_lines), {q.text for q in quotes if q.url == page.url}
        window_text = " ".join(page.plain_lines[i] for i in window)
    return ActionGrammar(
        fixed=[action for action in fixed if action != banned and _kind(action) != tired],
        free=[form for form in free if form != tired],
        page_lines=lines, window_text=window_text, quoted=quoted, quote_room=room, banned=banned,
        searched={normalize(action[len(SEARCH):]) for action in actions if action.startswith(SEARCH)},
    )


def _kind(action: str) -> str:
    """The command word(s) an action starts with: `Find in page: `, `Scrolled down `, ..."""
    return next((kind for kind in KINDS if action.startswith(kind)), action)


_CITATION_RUN = re.compile(r"\[\d+\](?:\s*\[\d+\])*")  # adjacent citations: "[1] [2]"


_LAST_CITATIONS = re.compile(r"(?:\[\d+\]\s*)+$")


def _last_citations(text: str) -> str:
    """The run of citations `text` ends with ("[1] [2]" of "the Danube [1] [2] "), else ""."""
    match = _LAST_CITATIONS.search(text)
    return match.group(0) if match else ""


@dataclass
class AnswerGrammar:
    """An answer of at most `max_words` words whose every `[n]` names one of the `quotes` collected,
    with at least one citation, and no quote twice in one run of citations ("[1] [1]" is a loop).

    The word limit is the scorer's (it reads no further); it also ends the answers a small model
    sometimes writes in a loop ("The answer is the answer is ...") with a citation, not at the
    token cap with none.
    """

    quotes: int
    max_words: int = MAX_ANSWER_WORDS

    def allows(self, text: str) -> bool:
        opened = text.rfind("[")
        closed = text.rfind("]")
        body = text[:opened] if opened > closed else text
        if not self._citations_ok(body) or len(answer_words(body)) > self.max_words:
            return False
        if opened > closed:  # a citation being written: digits that can still name a quote not yet cited
            digits = text[opened + 1:]
            cited = {int(n) for n in CITATION.findall(_last_citations(body))}
            return (digits.isdigit() or digits == "") and not digits.startswith("0") and any(
                str(n).startswith(digits) for n in range(1, self.quotes + 1) if n not in cited)
        return True

    def complete(self, text: str) -> bool:
        return self.allows(text) and text.rfind("[") <= text.rfind("]") and bool(CITATION.search(text))

    def wide_characters(self) -> None:
        return None  # an answer may hold any character

    def _citations_ok(self, text: str) -> bool:
        """Every bracket in `text` is a citation of a collected quote, none twice in one run ("[1] [1]")."""
        cited = CITATION.findall(text)
        if text.count("[") != text.count("]") or len(cited) != text.count("["):
            return False
        if not all(1 <= int(n) <= self.quotes for n in cited):
            return False
        return all(len(set(group)) == len(group) for group in map(CITATION.findall, _CITATION_RUN.findall(text)))


# What may follow a cut-off answer: the rest of a citation it began, then citations, then one full stop.
_MORE_CITATIONS = r"(?: ?\[\d+\])*"
_ENDING_STARTS = {  # prefixes of an ending (for `allows`), after an answer with an open `[` or without
    True: re.compile(r"\d*(?:\]" + _MORE_CITATIONS + r"(?: | ?\[\d*)?)?"),
    False: re.compile(_MORE_CITATIONS + r"(?: | ?\[\d*)?"),
}
_ENDINGS = {True: re.compile(r"\d+\]" + _MORE_CITATIONS + r"\.?"), False: re.compile(r"(?: ?\[\d+\])+\.?")}


@dataclass
class CitationEnding:
    """What may follow an answer that the token cap cut off before it cited: its citation and final stop.

    A small model sometimes writes on without a citation (a word repeated, or letters run together
    with no space, which the word limit cannot end) until the tokens run out. Rather than keep an
    answer that cites nothing, the sampler continues it under this grammar, which allows no new word.
    """

    answer: str  # the cut-off answer, as written
    quotes: int

    def allows(self, text: str) -> bool:
        if _ENDINGS[self._open].fullmatch(text):
            return self.complete(text)
        return _ENDING_STARTS[self._open].fullmatch(text) is not None and self._grammar.allows(self.answer + text)

    def complete(self, text: str) -> bool:
        return _ENDINGS[self._open].fullmatch(text) is not None and self._grammar.complete(self.answer + text)

    def wide_characters(self) -> set[str]:
        return set()

    @property
    def _open(self) -> bool:
        """Whether the answer was cut inside a citation (`... [1`)."""
        return self.answer.rfind("[") > self.answer.rfind("]")

    @cached_property
    def _grammar(self) -> AnswerGrammar:
        return AnswerGrammar(self.quotes, max_words=len(answer_words(self.answer)))
