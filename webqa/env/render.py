"""Render a `Document` as numbered text lines, the way the model sees a page.

Links become `【id†text†domain】` (the domain is left out for links within the
same site) and are numbered from 0 in order of appearance. Each rendered line
has a plain twin, the same words without link markup, which `Find in page`
and `Quote` work on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from webqa.types import Document, Link, SearchResult, domain_of

LINE_WIDTH = 100
MAX_LINES = 5000  # hostile pages: cap the rendered length
MAX_LINK_TEXT = 80
SEARCH_URL_PREFIX = "search:"  # then the engine's name

_MARKUP = re.compile(r"【\d+†([^†】]*)(?:†[^】]*)?】")
_LINK_LINE = re.compile(r"【(\d+)†[^】]*】")
_SPACE = re.compile(r"\s+")


def strip_markup(text: str) -> str:
    """`【3†Vienna†wikipedia.org】` -> `Vienna`."""
    return _MARKUP.sub(r"\1", text)


@dataclass
class Page:
    """A rendered page: lines with link markup, their plain twins, and the links by id."""

    url: str
    title: str
    lines: list[str] = field(default_factory=list)
    plain_lines: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)

    @property
    def domain(self) -> str:
        return domain_of(self.url)

    @property
    def is_search_results(self) -> bool:
        """Whether this is a page of search results (`search_page`), which holds no passages to quote."""
        return self.url.startswith(SEARCH_URL_PREFIX)


def _clean(text: str) -> str:
    return _SPACE.sub(" ", text.replace("【", "[").replace("】", "]").replace("†", "+"))


def render(doc: Document, width: int = LINE_WIDTH, max_lines: int = MAX_LINES) -> Page:
    """Number the links of `doc` and wrap its blocks into lines of about `width` characters."""
    page = Page(url=doc.url, title=_clean(doc.title).strip() or doc.url)
    site = domain_of(doc.url)
    for block in doc.blocks:
        # Words of the block as (marked-up, plain) pairs; a link is one unbreakable word, and
        # text that touches a link ("【3†Vienna】's") stays glued to it, so plain text keeps its spacing.
        words: list[tuple[str, str]] = []
        glue = False  # does the next piece touch the previous word?
        for span in block:
            if isinstance(span, Link):
                text = _clean(span.text).strip()[:MAX_LINK_TEXT]
                if not text:
                    continue
                link_id = len(page.links)
                page.links.append(Link(text=text, url=span.url))
                link_domain = domain_of(span.url)
                shown = f"{text}†{link_domain}" if link_domain and link_domain != site else text
                pieces, glue_after = [(f"【{link_id}†{shown}】", text)], True
            else:
                text = _clean(span)
                if not text.strip():
                    glue = glue and not text
                    continue
                pieces = [(w, w) for w in text.split()]
                glue = glue and not text[0].isspace()
                glue_after = not text[-1].isspace()
            for marked, plain in pieces:
                if glue and words:
                    words[-1] = (words[-1][0] + marked, words[-1][1] + plain)
                else:
                    words.append((marked, plain))
                glue = False
            glue = glue_after
        if not words:
            continue
        _wrap(words, width, page)
        if len(page.lines) >= max_lines:
            del page.lines[max_lines:], page.plain_lines[max_lines:]
            page.lines.append("[page truncated]")
            page.plain_lines.append("[page truncated]")
            break
    return page


def _wrap(words: list[tuple[str, str]], width: int, page: Page) -> None:
    line: list[str] = []
    plain: list[str] = []
    length = 0
    for marked, text in words:
        if line and length + 1 + len(text) > width:
            page.lines.append(" ".join(line))
            page.plain_lines.append(" ".join(plain))
            line, plain, length = [], [], 0
        line.append(marked)
        plain.append(text)
        length += len(text) + (1 if length else 0)
    if line:
        page.lines.append(" ".join(line))
        page.plain_lines.append(" ".join(plain))


def result_texts(page: Page) -> list[str]:
    """Of a `search_page`, each result's title and snippet as plain text, by link id."""
    texts = [""] * len(page.links)
    current = None
    for marked, plain in zip(page.lines, page.plain_lines):
        title = _LINK_LINE.fullmatch(marked.strip())
        if title is not None:  # a result's title: a line that is one link
            current = int(title.group(1))
        if current is not None and current < len(texts):
            texts[current] = f"{texts[current]} {plain}".strip()
    return texts


def search_page(query: str, results: list[SearchResult], engine: str) -> Page:
    """A search result page: one numbered link per result, its domain, then its snippet."""
    blocks: list[list] = [] if results else [["No results. Try other words."]]
    for result in results:
        blocks.append([Link(text=result.title, url=result.url)])
        if result.snippet:
            blocks.append([result.snippet])
    return render(Document(url=f"{SEARCH_URL_PREFIX}{engine}", title=f"Search results for: {query}", blocks=blocks))
