"""Passage-level ranking for the encyclopedia: BM25 over windows of about 100 words, pages by their best.

A question is usually answered by one passage, and a long page that holds it also holds thousands of
words about other things; ranking whole pages lets a short page that repeats the question's common
words ("war", "empire") win. So every page is cut into windows of WINDOW_WORDS words, each carrying
its page's title, the windows are ranked with BM25 (`bm25s`, a sparse-matrix implementation with k1 and
b as parameters), and a page scores by its best windows: the best plus PAGE_WEIGHTS[1] times the
second best (a page with two passages about the question is likelier its subject). The window that
ranked the page is its search result's snippet.

Words are lowercased, stopwords dropped and stemmed with the Snowball English stemmer (`PyStemmer`).
The settings were chosen on `dev` questions with `bench/retrieval.py --sweep`.

    index = PassageIndex.build([(title, plain_text), ...], folder)   # seconds; saved as .npy files
    index = PassageIndex.load(folder)
    index.rank(tokens(query), k=10)     # [(page number, window number), ...], best first
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

WINDOW_WORDS = 100
MIN_TAIL_WORDS = 30  # a page's last window shorter than this joins the one before
K1, B = 0.9, 0.75  # chosen on dev with bench/retrieval.py --sweep (results/retrieval-dev-sweep.json)
PAGE_WEIGHTS = (1.0, 0.6)  # a page's score: its best window's, plus 0.6 times its second best
DEPTH = 300  # windows read to rank the pages
MAX_QUERY_TOKENS = 64  # a longer query is cut: its first 64 content words rank as well as all of them

_WORD = re.compile(r"\w+")
_STEMMER = Stemmer.Stemmer("english")
# Words too common to help a BM25 query (the page ranking's list), and with bm25s's English list (passages).
QUESTION_STOPWORDS = frozenset(
    "a an and are as at be but by did do does for from had has have how i in is it its of on or that the "
    "their there these this those to was were what when where which who whom whose why will with you".split()
)
STOPWORDS = QUESTION_STOPWORDS | frozenset(STOPWORDS_EN)


def tokens(text: str) -> list[str]:
    """A text's content words: lowercased, stopwords dropped, stemmed; repeats kept."""
    return _STEMMER.stemWords([w for w in _WORD.findall(text.lower()) if w not in STOPWORDS])


def query_tokens(text: str) -> list[str]:
    """A query's content words, stemmed, each once, at most MAX_QUERY_TOKENS."""
    return list(dict.fromkeys(tokens(text)))[:MAX_QUERY_TOKENS]


def page_windows(paragraphs: list[str], size: int = WINDOW_WORDS) -> list[str]:
    """A page's text (its paragraphs, headings left out) cut into windows of `size` words; a last window
    shorter than MIN_TAIL_WORDS joins the one before. A page without text is one empty window."""
    words = " ".join(paragraphs).split()
    windows = [words[start : start + size] for start in range(0, len(words), size)]
    if len(windows) > 1 and len(windows[-1]) < MIN_TAIL_WORDS:
        tail = windows.pop()
        windows[-1] = windows[-1] + tail
    return [" ".join(w) for w in windows] or [""]


class PassageIndex:
    """BM25 over the windows of every page; `owners[w]` is the page number of window `w`."""

    OWNERS = "owners.npy"
    SETTINGS = "passages.json"

    def __init__(self, retriever: bm25s.BM25, owners: np.ndarray, weights: tuple[float, ...] = PAGE_WEIGHTS):
        self.retriever = retriever
        self.owners = owners
        self.weights = weights
        self.vocabulary = retriever.vocab_dict

    @classmethod
    def build(cls, titled_windows: list[tuple[str, list[str]]], folder: Path | None = None,
              k1: float = K1, b: float = B) -> "PassageIndex":
        """Index each page's windows (a list of (title, windows) in page order); saved in `folder` if given."""
        owners = np.array([page for page, (_, windows) in enumerate(titled_windows) for _ in windows], dtype=np.int32)
        corpus = [tokens(f"{title}. {window}") for title, windows in titled_windows for window in windows]
        retriever = bm25s.BM25(k1=k1, b=b)
        retriever.index(corpus, show_progress=False)
        index = cls(retriever, owners)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            retriever.save(str(folder), show_progress=False)
            np.save(folder / cls.OWNERS, owners)
            (folder / cls.SETTINGS).write_text(json.dumps({"window_words": WINDOW_WORDS, "k1": k1, "b": b}))
        return index

    @classmethod
    def load(cls, folder: Path) -> "PassageIndex":
        retriever = bm25s.BM25.load(str(folder), mmap=False, show_progress=False)
        return cls(retriever, np.load(folder / cls.OWNERS))

    def window_scores(self, words: list[str]) -> np.ndarray:
        """Every window's BM25 score for the (stemmed) query words; words not in the index count nothing."""
        known = [w for w in words if w in self.vocabulary]
        if not known:
            return np.zeros(len(self.owners), dtype=np.float32)
        return self.retriever.get_scores(known)

    def rank(self, words: list[str], k: int) -> list[tuple[int, int]]:
        """The k best pages for the query words, each with the window that ranked it: [(page, window)]."""
        scores = self.window_scores(words)
        depth = min(DEPTH, len(scores))
        top = np.argpartition(-scores, depth - 1)[:depth] if depth < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        pages: dict[int, list[float]] = {}
        best: dict[int, int] = {}
        for window in top:
            score = float(scores[window])
            if score <= 0:
                break
            page = int(self.owners[window])
            pages.setdefault(page, []).append(score)
            best.setdefault(page, int(window))
        total = {page: sum(w * s for w, s in zip(self.weights, found)) for page, found in pages.items()}
        ranked = sorted(total, key=lambda page: (-total[page], page))[:k]
        return [(page, best[page]) for page in ranked]
