"""Does search put the right page first? The encyclopedia's rankings beside plain BM25 baselines.

    python bench/retrieval.py [--split dev] [--limit 500] [--out results/retrieval-dev.json] [--sweep]

On the questions of a split (default `dev`; never choose anything on `final`), for each ranking:
- open-domain (TriviaQA, NQ): answer-page@1, @5, @8 and MRR, where an answer page is one whose text
  holds a gold answer. Only questions with `evidence` count (the old page search found an answer page
  among its top 10): "answerable" alone means an alias occurs somewhere, often a common word. That
  choice favours the old ranking, so gains over it are, if anything, understated.
- SQuAD: right-article@1, @5, @8 and MRR, the article the question was written on (`article`);
and p50/p95 milliseconds per search and the index build time. Rankings:
- `fts5-pages`: the encyclopedia's page ranking (`LocalCorpus(ranking="pages")`, FTS5 BM25, title x10);
- `passages`: the encyclopedia's passage ranking (`LocalCorpus(ranking="passages")`, `webqa.env.passages`);
- `fts5-windows`: FTS5's own BM25 over the same windows, each page by its best window;
- `bm25s-pages`, `bm25s-windows`: the library `bm25s` with its defaults (k1 1.5, b 0.75, its English
  stopwords, Snowball stemmer) over whole pages and over the same windows (best window per page).
`--sweep` also ranks with the passage settings (k1, b, second-window weight) around the chosen ones.
`--dense` also ranks with all-MiniLM-L6-v2 over the same windows (`dense`) and fused with the passage
ranking by reciprocal rank (`hybrid`; `webqa.env.dense`); embedding the windows is timed apart.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bm25s  # noqa: E402
import numpy as np  # noqa: E402
import Stemmer  # noqa: E402

from webqa.env.local import LocalCorpus, build_index, passages_path, query_words  # noqa: E402
from webqa.env.passages import PassageIndex, query_tokens  # noqa: E402
from webqa.paths import CORPUS_FILE  # noqa: E402
from webqa.qa import load_questions  # noqa: E402
from webqa.scoring import normalize  # noqa: E402

DEPTHS = (1, 5, 8)
DEPTH = max(DEPTHS)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Pages:
    """The corpus's pages as the index has them: titles, plain texts (normalized), windows."""

    def __init__(self, index: Path):
        db = sqlite3.connect(index)
        self.titles = [t for (t,) in db.execute("SELECT title FROM pages ORDER BY id")]
        self.text = {t: b for t, b in db.execute("SELECT p.title, f.body FROM fts f JOIN pages p ON p.id = f.rowid")}
        self.normal = {t: f" {normalize(b)} " for t, b in self.text.items()}
        self.windows = [(self.titles[p - 1], w) for p, w in db.execute("SELECT page_id, text FROM windows ORDER BY id")]
        db.close()


def fts5_windows(pages: Pages, folder: Path):
    """FTS5 BM25 over the windows (title column weighted as the page ranking does), best window per page."""
    db = sqlite3.connect(folder / "windows.sqlite")
    db.execute("CREATE VIRTUAL TABLE w USING fts5(title, body, tokenize = 'porter unicode61 remove_diacritics 2')")
    db.executemany("INSERT INTO w (title, body) VALUES (?, ?)", pages.windows)
    db.commit()

    def rank(question: str) -> list[str]:
        words = query_words(question)
        if not words:
            return []
        found: list[str] = []
        for (rowid,) in db.execute("SELECT rowid FROM w WHERE w MATCH ? ORDER BY bm25(w, 10.0, 1.0) LIMIT 300",
                                   (" OR ".join(f'"{w}"' for w in words),)):
            title = pages.windows[rowid - 1][0]
            if title not in found:
                found.append(title)
            if len(found) == DEPTH:
                break
        return found

    return rank


def bm25s_ranking(texts: list[str], owners: list[str]):
    """bm25s with its defaults over `texts`; each result's owner once, in rank order."""
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)

    def rank(question: str) -> list[str]:
        query = bm25s.tokenize([question], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)[0]
        query = [w for w in query if w in retriever.vocab_dict]
        if not query:
            return []
        scores = retriever.get_scores(query)
        found: list[str] = []
        for doc in np.argsort(-scores)[:300]:
            if scores[doc] <= 0:
                break
            if owners[doc] not in found:
                found.append(owners[doc])
            if len(found) == DEPTH:
                break
        return found

    return rank


def passages_with(pages: Pages, index: Path, k1: float, b: float, second: float):
    """The passage ranking with other settings (for --sweep), built in memory from the same windows."""
    by_page: dict[str, list[str]] = {}
    for title, window in pages.windows:
        by_page.setdefault(title, []).append(window)
    built = PassageIndex.build([(t, by_page.get(t, [""])) for t in pages.titles], None, k1=k1, b=b)
    built.weights = (1.0, second)
    return lambda question: [pages.titles[p] for p, _ in built.rank(query_tokens(question), DEPTH)]


def measure(rank, questions: list[dict], pages: Pages) -> dict:
    """@k and MRR per row (open-domain: answer page; SQuAD: right article), and milliseconds."""
    rows: dict[str, list[list[bool]]] = {"open-domain": [], "squad": []}
    times = []
    for question in questions:
        start = time.perf_counter()
        ranked = rank(question["question"])[:DEPTH]
        times.append((time.perf_counter() - start) * 1000)
        if question["dataset"] == "squad":
            rows["squad"].append([title == question["article"] for title in ranked])
        else:
            targets = [f" {normalize(a)} " for a in question["answers"] if normalize(a)]
            rows["open-domain"].append([any(t in pages.normal[title] for t in targets) for title in ranked])
    figures = {}
    for row, hits in rows.items():
        if not hits:
            continue
        figures[row] = {f"@{k}": statistics.mean(any(h[:k]) for h in hits) for k in DEPTHS}
        figures[row]["mrr"] = statistics.mean(next((1 / (i + 1) for i, h in enumerate(hs) if h), 0.0) for hs in hits)
        figures[row]["questions"] = len(hits)
    figures["p50_ms"], figures["p95_ms"] = statistics.median(times), percentile(times, 0.95)
    return figures


def bench_questions(split: str, limit: int, seed: int = 0, path: Path | None = None) -> list[dict]:
    """Open-domain questions with evidence and SQuAD questions of the split, up to `limit` of each."""
    kwargs = {"path": path} if path else {}
    rng = random.Random(seed)
    open_domain = [q for q in load_questions(split=split, **kwargs) if q["dataset"] != "squad" and q["evidence"]]
    squad = [q for q in load_questions(split=split, dataset="squad", **kwargs) if q.get("article")]
    return (rng.sample(open_domain, min(limit, len(open_domain))) + rng.sample(squad, min(limit, len(squad))))


def dense_rankings(pages: Pages, passages: PassageIndex, cache: Path | None) -> tuple[dict, float]:
    """`dense` and `hybrid` (passages + dense by reciprocal rank fusion), and the seconds embedding took."""
    from webqa.env.dense import DenseIndex, Encoder, fuse, window_vectors

    encoder = Encoder.load()
    start = time.perf_counter()
    vectors = window_vectors(encoder, [f"{t}. {w}" for t, w in pages.windows], cache)
    seconds = time.perf_counter() - start
    dense = DenseIndex(encoder, vectors, passages.owners)

    def titles(ranked):
        return [pages.titles[page] for page, _ in ranked]

    return {"dense": lambda q: titles(dense.rank(q, DEPTH)),
            "hybrid": lambda q: titles(fuse([passages.rank(query_tokens(q), 50), dense.rank(q, 50)], DEPTH))}, seconds


def run(corpus_file: Path, questions: list[dict], sweep: bool = False, dense: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        index = Path(folder) / "index.sqlite"
        start = time.perf_counter()
        build_index(corpus_file, index)
        build_seconds = time.perf_counter() - start
        pages = Pages(index)
        rankings = {}
        for ranking in ("pages", "passages"):
            corpus = LocalCorpus(corpus_file, index, ranking=ranking)
            rankings[f"fts5-{ranking}" if ranking == "pages" else ranking] = (
                lambda q, c=corpus: [r.title for r in c.search(q, k=DEPTH)])
        rankings["fts5-windows"] = fts5_windows(pages, Path(folder))
        rankings["bm25s-pages"] = bm25s_ranking([f"{t}. {pages.text[t]}" for t in pages.titles], pages.titles)
        rankings["bm25s-windows"] = bm25s_ranking([f"{t}. {w}" for t, w in pages.windows],
                                                  [t for t, _ in pages.windows])
        if sweep:
            for k1 in (0.9, 1.2, 1.5):
                for b in (0.4, 0.75):
                    for second in (0.0, 0.3, 0.6):
                        rankings[f"passages k1={k1} b={b} second={second}"] = passages_with(pages, index, k1, b, second)
        embed_seconds = None
        if dense is not None:
            passages = LocalCorpus(corpus_file, index, ranking="passages")._passages
            more, embed_seconds = dense_rankings(pages, passages, dense)
            rankings |= more
        report = {"build_seconds": build_seconds, "embed_seconds": embed_seconds, "passage_files_bytes": sum(
            f.stat().st_size for f in passages_path(index).iterdir()), "rankings": {}}
        for name, rank in rankings.items():
            report["rankings"][name] = measure(rank, questions, pages)
            print(format_row(name, report["rankings"][name]), file=sys.stderr, flush=True)
    return report


def format_row(name: str, figures: dict) -> str:
    cells = []
    for row in ("open-domain", "squad"):
        f = figures.get(row)
        cells += [f"{f['@1']:.3f} {f['@5']:.3f} {f['@8']:.3f} {f['mrr']:.3f}" if f else "-"]
    return f"{name:38s} {cells[0]:>26s}   {cells[1]:>26s}   {figures['p50_ms']:6.1f} {figures['p95_ms']:6.1f}"


def format_report(report: dict) -> str:
    header = (f"{'ranking':38s} {'open-domain @1 @5 @8 MRR':>26s}   {'SQuAD article @1 @5 @8 MRR':>26s}"
              f"   {'p50ms':>6s} {'p95ms':>6s}")
    lines = [header] + [format_row(n, f) for n, f in report["rankings"].items()]
    counts = next(iter(report["rankings"].values()))
    lines.append(f"questions: open-domain {counts.get('open-domain', {}).get('questions', 0)}, "
                 f"SQuAD {counts.get('squad', {}).get('questions', 0)}; index build {report['build_seconds']:.1f} s "
                 f"(both rankings), passage index {report['passage_files_bytes'] / 1e6:.1f} MB"
                 + (f"; embedding the windows {report['embed_seconds']:.0f} s" if report.get("embed_seconds") else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev", choices=["train", "dev"], help="never final: settings are chosen here")
    parser.add_argument("--limit", type=int, default=500, help="questions of each kind (open-domain, SQuAD)")
    parser.add_argument("--corpus", type=Path, default=CORPUS_FILE)
    parser.add_argument("--questions", type=Path, help="a questions file (default: the shipped one)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON (e.g. results/retrieval-dev.json)")
    parser.add_argument("--sweep", action="store_true", help="also the passage settings around the chosen ones")
    parser.add_argument("--dense", type=Path, metavar="FOLDER",
                        help="also dense and hybrid rankings; window vectors are cached in FOLDER")
    args = parser.parse_args(argv)
    questions = bench_questions(args.split, args.limit, path=args.questions)
    report = run(args.corpus, questions, args.sweep, args.dense)
    report |= {"split": args.split, "limit": args.limit, "command": "python bench/retrieval.py " + " ".join(
        argv if argv is not None else sys.argv[1:])}
    print(format_report(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
