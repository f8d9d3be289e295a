"""The embedded offline encyclopedia: shipped pages, searched with SQLite FTS5 or by passages.

The pages ship as `webqa/data/corpus.jsonl.gz` (built by `webqa corpus build`).
On first use they are indexed into a SQLite file in the cache folder (and a
passage index beside it); later uses open them directly. Two rankings
(`ranking=`): "pages", FTS5 BM25 over whole pages with the title weighted
above the body; "passages", BM25 over windows of about 100 words, each page
ranked by its best windows (`webqa.env.passages`). Pages keep their canonical
public URLs, so citations point at the real page while the text comes from
the local copy.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
import threading
from collections import Counter
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tqdm import tqdm

from webqa.env.backend import BackendError, PageNotFound
from webqa.env.passages import QUESTION_STOPWORDS as STOPWORDS
from webqa.env.passages import PassageIndex, page_windows, query_tokens
from webqa.paths import CORPUS_FILE, cache_dir
from webqa.records import read_records
from webqa.types import Document, Link, SearchResult, Span

TITLE_WEIGHT = 10.0
SNIPPET_WORDS = 24
# Words on more than this share of pages add little to a BM25 ranking but cost most of its time
# (their lists of pages are the longest), so a query leaves them out while two rarer words remain.
# Measured on 500 dev questions: search p50 -30%, the answer in the top 8 for 95.0% instead of 97.4%.
COMMON_WORD_SHARE = 0.1
INDEX_VERSION = 5
# "passages" since 2026-12-04: on dev it ranks the right SQuAD article first for 0.920 against 0.530 and an
# answer page first for 0.629 of open-domain questions against 0.439 (results/retrieval-dev.json), and every
# system answered more dev questions with it: the agent's greedy episode 0.32 against 0.27, the script 0.33
# against 0.27 (results/dev-ranking-paired.json). The expert succeeds as often (results/expert-ranking-*.txt).
DEFAULT_RANKING = "passages"
RANKINGS = ("pages", "passages")


def recorded_ranking(record: dict) -> str:
    """The ranking an episode's settings or an evaluation row was made with (`Browser.reset` and `webqa eval`
    record it; replays need it, as clicks name results by number): "pages" for records made before that."""
    return record.get("ranking", "pages")

_LINK = re.compile(r"\[\[([^\[\]|]+)(?:\|([^\[\]]*))?\]\]")
_HEADING = re.compile(r"^(={2,})\s*(.*?)\s*={2,}$")
_WORD = re.compile(r"\w+")


def strip_corpus_markup(text: str) -> str:
    """Corpus markup -> plain text: links become their anchor, headings their words."""
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    return "\n\n".join(_HEADING.sub(r"\2", p) for p in text.split("\n\n"))


def query_words(text: str, common: frozenset[str] = frozenset()) -> list[str]:
    """The content words of a query, lowercased, without stopwords, repeats, and common words (unless few remain)."""
    words = list(dict.fromkeys(w for w in _WORD.findall(text.lower()) if w not in STOPWORDS))
    rare = [w for w in words if w not in common]
    return rare if len(rare) >= 2 else words


def fts_query(text: str, common: frozenset[str] = frozenset()) -> str:
    """A free-text query as a safe FTS5 expression: its content words, OR-ed."""
    return match_any(query_words(text, common))


def match_any(words: list[str]) -> str:
    """An FTS5 expression matching any of the words (each quoted, so none is read as syntax)."""
    return " OR ".join(f'"{w}"' for w in words)


@lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    """A crude stem, enough to match "flows" with "flowing" in a snippet."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@lru_cache(maxsize=1 << 16)
def _token_words(token: str) -> tuple[str, ...]:
    """The lowercased words of one whitespace-separated token ("Vienna," -> ("vienna",))."""
    return tuple(_WORD.findall(token.lower()))


def snippet(passage: str, words: list[str], size: int = SNIPPET_WORDS) -> str:
    """The `size`-word window of a passage that holds the most query words (crudely stemmed)."""
    tokens = passage.split()
    if len(tokens) <= size:
        return " ".join(tokens)
    stems = {_stem(w) for w in words}
    hits = [int(any(_stem(w) in stems for w in _token_words(token))) for token in tokens]
    best, best_hits, window = 0, sum(hits[:size]), sum(hits[:size])
    for start in range(1, len(tokens) - size + 1):
        window += hits[start + size - 1] - hits[start - 1]
        if window > best_hits:
            best, best_hits = start, window
    text = " ".join(tokens[best : best + size])
    return ("…" if best else "") + text + ("…" if best + size < len(tokens) else "")


def title_key(text: str) -> str:
    """The lookup key of a page title or of a URL naming it."""
    if text.startswith(("http://", "https://")):
        parts = urlsplit(text)
        path = unquote(parts.path)
        if "/wiki/" in path:
            return path.split("/wiki/", 1)[1].replace("_", " ").casefold()
        return f"{parts.hostname}{path}".casefold()
    return " ".join(text.replace("_", " ").split()).casefold()


class LocalCorpus:
    """Search and fetch over the embedded encyclopedia."""

    name = "local"

    def __init__(self, corpus_path: Path | str = CORPUS_FILE, index_path: Path | str | None = None,
                 ranking: str = DEFAULT_RANKING):
        if ranking not in RANKINGS:
            raise ValueError(f"unknown ranking {ranking!r}: use {' or '.join(RANKINGS)}")
        self.ranking = ranking
        self.corpus_path = Path(corpus_path)
        if not self.corpus_path.exists():
            raise BackendError(f"no corpus at {self.corpus_path}; build it with `webqa corpus build`")
        self.index_path = Path(index_path) if index_path else self._default_index_path()
        if not self.index_path.exists() or not passages_path(self.index_path).exists():
            build_index(self.corpus_path, self.index_path)
            if index_path is None:  # indexes of earlier corpus versions are no longer needed
                for stale in self.index_path.parent.glob("corpus-v*.sqlite"):
                    if stale != self.index_path:
                        stale.unlink(missing_ok=True)
                        shutil.rmtree(passages_path(stale), ignore_errors=True)
        self._db = sqlite3.connect(f"file:{self.index_path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self._common_words = frozenset(row[0] for row in self._query("SELECT word FROM common_words"))
        self._passages = PassageIndex.load(passages_path(self.index_path)) if ranking == "passages" else None

    @classmethod
    def default(cls) -> "LocalCorpus":
        """The shipped corpus, indexed into the cache folder on first use."""
        return cls()

    def _default_index_path(self) -> Path:
        digest = hashlib.sha1(self.corpus_path.read_bytes()).hexdigest()[:12]
        return cache_dir("index") / f"corpus-v{INDEX_VERSION}-{digest}.sqlite"

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- the backend interface --------------------------------------------------

    def search(self, query: str, k: int = 10, source: str | None = None) -> list[SearchResult]:
        """The k best pages for `query` by BM25, with a query-focused snippet (optionally from one source)."""
        if self._passages is not None and source is None:
            return self._search_passages(query, k)
        words = query_words(query, self._common_words)
        if not words:
            return []
        if source is None:
            # The fast path: FTS alone ranks; joining `pages` here would cost as much as the ranking.
            ranked = [row[0] for row in self._query(
                f"SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY bm25(fts, {TITLE_WEIGHT}, 1.0) LIMIT ?",
                (match_any(words), k),
            )]
            # A page whose title is exactly the query comes first, as on Wikipedia.
            exact = self._titled(query)
            if exact is not None and ranked:
                ranked = [exact] + [rowid for rowid in ranked if rowid != exact][: k - 1]
        else:
            ranked = [row[0] for row in self._query(
                "SELECT fts.rowid FROM fts JOIN pages p ON p.id = fts.rowid WHERE fts MATCH ? AND p.source = ? "
                f"ORDER BY p.title = ? COLLATE NOCASE DESC, bm25(fts, {TITLE_WEIGHT}, 1.0), p.id LIMIT ?",
                (match_any(words), source, " ".join(query.split()), k),
            )]
        if not ranked:
            return []
        rows = self._query(f"SELECT id, title, url, first_passage, last_passage FROM pages "
                           f"WHERE id IN ({','.join('?' * len(ranked))})", tuple(ranked))
        found = {}
        for rowid, title, url, first, last in rows:
            text = self._best_passage(words, first, last)
            found[rowid] = SearchResult(title=title, url=url, snippet=snippet(text, words), passage=text)
        return [found[rowid] for rowid in ranked]

    def _search_passages(self, query: str, k: int) -> list[SearchResult]:
        """The k best pages by their best windows (`webqa.env.passages`), each with a snippet from the window
        that ranked it; a page whose title is exactly the query comes first."""
        if k <= 0:
            return []
        ranked = self._passages.rank(query_tokens(query), k)
        exact = self._titled(query)
        if exact is not None and ranked:
            page = exact - 1  # page ids count from 1, the passage index's pages from 0
            if page not in [p for p, _ in ranked]:
                ranked = [(page, -1)] + ranked[: k - 1]
            else:
                ranked = [r for r in ranked if r[0] == page] + [r for r in ranked if r[0] != page]
        if not ranked:
            return []
        ids = [page + 1 for page, _ in ranked]
        rows = {rowid: (title, url) for rowid, title, url in self._query(
            f"SELECT id, title, url FROM pages WHERE id IN ({','.join('?' * len(ids))})", tuple(ids))}
        windows = dict(self._query(f"SELECT id, text FROM windows WHERE id IN ({','.join('?' * len(ranked))})",
                                   tuple(window + 1 for _, window in ranked)))
        words = query_words(query)
        results = []
        for page, window in ranked:
            title, url = rows[page + 1]
            text = windows.get(window + 1) or self._best_passage(words, *self._passage_range(page + 1))
            results.append(SearchResult(title=title, url=url, snippet=snippet(text, words), passage=text))
        return results

    def _passage_range(self, page_id: int) -> tuple[int, int]:
        return self._query("SELECT first_passage, last_passage FROM pages WHERE id = ?", (page_id,))[0]

    def search_key(self, query: str) -> tuple:
        """What `search` reads of a query: its content words and the page titled by it, if any. Queries with
        equal keys get the same results (see `Backend`)."""
        if self._passages is not None:
            return tuple(sorted(query_tokens(query))), self._titled(query)
        return tuple(sorted(query_words(query, self._common_words))), self._titled(query)

    def _titled(self, query: str) -> int | None:
        """The id of the page whose title the query is, if any."""
        exact = self._query("SELECT page_id FROM keys WHERE key = ?", (title_key(query),))
        return exact[0][0] if exact else None

    def _best_passage(self, words: list[str], first: int, last: int) -> str:
        """The page's paragraph (passages first..last) that best matches the words; else its first one.

        A page's passages have consecutive rowids, so FTS5 reads only that range of each word's list:
        far cheaper than snippet() on the whole page, which re-tokenizes all of its text.
        """
        if first > last:  # a page without paragraphs
            return ""
        rows = []
        if last > first:  # most pages (leads of vital articles) are one paragraph: nothing to choose
            rows = self._query("SELECT text FROM passages WHERE passages MATCH ? AND rowid BETWEEN ? AND ? "
                               "ORDER BY bm25(passages) LIMIT 1", (match_any(words), first, last))
        if not rows:
            rows = self._query("SELECT text FROM passages WHERE rowid = ?", (first,))
        return rows[0][0] if rows else ""

    def fetch(self, url: str) -> Document:
        """The page at `url` (its canonical URL) or with that title."""
        rows = self._query(
            "SELECT p.title, p.url, p.text FROM keys k JOIN pages p ON p.id = k.page_id WHERE k.key = ?",
            (title_key(url),),
        )
        if not rows:
            raise PageNotFound(f"{url!r} is not in the offline encyclopedia; search for it instead")
        title, page_url, text = rows[0]
        return Document(url=page_url, title=title, blocks=self._blocks(text))

    # --- helpers for data scripts and stats -------------------------------------

    def plain_text(self, title: str) -> str:
        """The text of a page without markup."""
        rows = self._query("SELECT body FROM fts WHERE rowid = (SELECT id FROM pages WHERE title = ?)", (title,))
        if not rows:
            raise PageNotFound(f"{title!r} is not in the offline encyclopedia")
        return rows[0][0]

    def pages_containing(self, phrase: str, limit: int = 10) -> list[str]:
        """Titles of pages whose text contains `phrase` (case-insensitive, as whole words)."""
        words = _WORD.findall(phrase.lower())
        if not words:
            return []
        needle = re.compile(r"(?<!\w)" + r"\W+".join(map(re.escape, words)) + r"(?!\w)", re.I)
        # An FTS phrase query finds candidates fast; the regex then checks the exact words (FTS stems them).
        phrase = '"' + " ".join(words) + '"'
        rows = self._query("SELECT p.title, f.body FROM fts f JOIN pages p ON p.id = f.rowid "
                           "WHERE fts MATCH ? ORDER BY p.id LIMIT ?", (f"body: {phrase}", 20 * limit))
        return [title for title, body in rows if needle.search(body)][:limit]

    def document_frequency(self, word: str) -> tuple[int, int]:
        """(pages whose text has `word`, all pages): for weighting words by their rarity."""
        total = self._query("SELECT count(*) FROM pages")[0][0]
        words = _WORD.findall(word.lower())
        if not words:
            return 0, total
        found = self._query("SELECT count(*) FROM fts WHERE fts MATCH ?", (f'body: "{" ".join(words)}"',))[0][0]
        return found, total

    def titles(self) -> list[str]:
        return [row[0] for row in self._query("SELECT title FROM pages ORDER BY id")]

    def stats(self) -> dict[str, int]:
        """Pages per source and index size."""
        counts = dict(self._query("SELECT source, count(*) FROM pages GROUP BY source ORDER BY source"))
        counts["total"] = sum(counts.values())
        counts["index bytes"] = self.index_path.stat().st_size
        return counts

    def _blocks(self, text: str) -> list[list[Span]]:
        """Corpus markup -> document blocks, links pointing at the target pages' URLs."""
        targets = {m.group(1) for m in _LINK.finditer(text)}
        urls = dict(self._query(
            f"SELECT title, url FROM pages WHERE title IN ({','.join('?' * len(targets))})", tuple(targets)
        )) if targets else {}
        blocks: list[list[Span]] = []
        for paragraph in text.split("\n\n"):
            heading = _HEADING.match(paragraph)
            if heading:
                blocks.append([f"{'#' * len(heading.group(1))} {heading.group(2)}"])
                continue
            spans: list[Span] = []
            position = 0
            for match in _LINK.finditer(paragraph):
                spans.append(paragraph[position : match.start()])
                target, anchor = match.group(1), match.group(2) or match.group(1)
                spans.append(Link(text=anchor, url=urls[target]) if target in urls else anchor)
                position = match.end()
            spans.append(paragraph[position:])
            blocks.append(spans)
        return blocks


def read_corpus(path: Path) -> list[dict]:
    """All pages of a corpus file."""
    return read_records(path, dict, "page")


def passages_path(index_path: Path) -> Path:
    """The folder of the passage index that belongs to a SQLite index file."""
    return index_path.with_suffix(".passages")


def build_index(corpus_path: Path, index_path: Path) -> None:
    """Index a corpus file into SQLite FTS5; written to a temporary file, then moved into place."""
    pages = read_corpus(corpus_path)
    index_path.parent.mkdir(parents=True, exist_ok=True)
    partial = index_path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    db = sqlite3.connect(partial)
    db.executescript(
        """
        PRAGMA journal_mode = OFF;
        PRAGMA synchronous = OFF;
        CREATE TABLE pages (id INTEGER PRIMARY KEY, title TEXT UNIQUE, url TEXT, source TEXT,
                            description TEXT, text TEXT, first_passage INTEGER, last_passage INTEGER);
        CREATE TABLE keys (key TEXT PRIMARY KEY, page_id INTEGER);
        CREATE TABLE common_words (word TEXT PRIMARY KEY);
        CREATE VIRTUAL TABLE fts USING fts5(title, body, tokenize = 'porter unicode61 remove_diacritics 2');
        -- Each paragraph of each page, for search-result snippets; a page's paragraphs get consecutive rowids.
        CREATE VIRTUAL TABLE passages USING fts5(text, tokenize = 'porter unicode61 remove_diacritics 2');
        -- Each page's windows of about 100 words, in page order (id = the passage index's number + 1).
        CREATE TABLE windows (id INTEGER PRIMARY KEY, page_id INTEGER, text TEXT);
        """
    )
    titled_windows = []
    pages_with_word: Counter[str] = Counter()
    passage_id = 0
    for page_id, page in enumerate(tqdm(pages, desc="indexing encyclopedia", unit="page", leave=False), 1):
        body = strip_corpus_markup(page["text"])
        paragraphs = [strip_corpus_markup(p) for p in page["text"].split("\n\n") if p.strip() and not _HEADING.match(p)]
        first_passage = passage_id + 1
        for passage_id, paragraph in enumerate(paragraphs, first_passage):
            db.execute("INSERT INTO passages (rowid, text) VALUES (?, ?)", (passage_id, paragraph))
        db.execute("INSERT INTO pages VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (page_id, page["title"], page["url"],
                   page["source"], page.get("description", ""), page["text"], first_passage, passage_id))
        db.execute("INSERT INTO fts (rowid, title, body) VALUES (?, ?, ?)", (page_id, page["title"], body))
        titled_windows.append((page["title"], page_windows(paragraphs)))
        for key in {title_key(page["title"]), title_key(page["url"])}:
            db.execute("INSERT OR IGNORE INTO keys VALUES (?, ?)", (key, page_id))
        pages_with_word.update(set(_WORD.findall(body.lower())))
    db.executemany("INSERT INTO common_words VALUES (?)",
                   [(w,) for w, n in sorted(pages_with_word.items()) if n > COMMON_WORD_SHARE * len(pages)])
    db.executemany("INSERT INTO windows (page_id, text) VALUES (?, ?)",
                   [(page, window) for page, (_, windows) in enumerate(titled_windows, 1) for window in windows])
    folder = passages_path(index_path)
    shutil.rmtree(folder, ignore_errors=True)
    PassageIndex.build(titled_windows, folder)
    db.execute("INSERT INTO fts (fts) VALUES ('optimize')")
    db.execute("INSERT INTO passages (passages) VALUES ('optimize')")
    db.commit()
    db.close()
    partial.replace(index_path)
