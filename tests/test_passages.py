"""Passage-level ranking: windows, ranking by best passages, hostile queries, and the retrieval bench."""

import gzip
import json
import sys
from pathlib import Path

import pytest

from webqa.env.local import LocalCorpus, passages_path
from webqa.env.passages import MAX_QUERY_TOKENS, page_windows, query_tokens

FILLER = ("The committee met in the spring to discuss budgets, roads, schools and harbours; members argued "
          "about taxes, ledgers, ballots, markets, festivals and the upkeep of old bridges. ")


def _page(title, paragraphs, source="vital-articles"):
    url = "https://en.wikipedia.org/wiki/" + title.replace(" ", "_")
    return {"title": title, "url": url, "source": source, "description": "", "text": "\n\n".join(paragraphs)}


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """A long page that answers in one paragraph among forty, and lead-sized pages with the question's common words."""
    folder = tmp_path_factory.mktemp("small-corpus")
    pages = [_page("Northern Lands", [FILLER * 3] * 20 + [
        "The Zorblat is the river that flows through the Quenton valley near Marrow, the old capital."]
        + [FILLER * 3] * 20)]
    for name in ("Blue", "Red", "Green", "Amber", "Grey", "Black"):
        pages.append(_page(f"{name} River", [f"The {name} River is a river. The river flows to the sea; "
                                             f"it flows through a valley, and the river flows fast. " + FILLER * 2]))
    # Short pages naming the question's rarer words in passing: whole-page BM25 prefers them to a long page.
    pages.append(_page("Marrow", ["Marrow is a market town; the road to the Quenton valley leaves it to the north. "
                                  + FILLER]))
    pages.append(_page("Quenton", ["Quenton is a valley of farms near Marrow. " + FILLER]))
    path = folder / "corpus.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(p) + "\n" for p in pages)
    return path, folder / "index.sqlite"


def test_windows_are_about_100_words_and_a_short_tail_joins_the_last():
    words = [f"w{i}" for i in range(250)]
    windows = page_windows([" ".join(words[:120]), " ".join(words[120:])])
    assert [len(w.split()) for w in windows] == [100, 100, 50]  # a 50-word tail stays a window
    assert [len(w.split()) for w in page_windows([" ".join(words[:220])])] == [100, 120]
    assert page_windows([]) == [""]


def test_query_tokens_are_stemmed_content_words_once_and_capped():
    assert query_tokens("Which river flows through Vienna? Rivers!") == ["river", "flow", "through", "vienna"]
    assert len(query_tokens(" ".join(f"word{i}" for i in range(500)))) == MAX_QUERY_TOKENS


def test_passage_ranking_finds_the_page_that_answers_in_one_paragraph(small_corpus):
    corpus_file, index = small_corpus
    question = "Which river flows through the Quenton valley near Marrow?"
    by_pages = LocalCorpus(corpus_file, index, ranking="pages").search(question, k=3)
    by_passages = LocalCorpus(corpus_file, index, ranking="passages").search(question, k=3)
    assert by_pages[0].title != "Northern Lands"  # whole-page BM25: the short river pages win
    assert by_passages[0].title == "Northern Lands"
    # The snippet comes from the window that ranked the page: it shows why the result is there.
    assert "Zorblat" in by_passages[0].snippet and "Quenton" in by_passages[0].snippet
    assert passages_path(index).is_dir()


@pytest.mark.parametrize("ranking", ["pages", "passages"])
@pytest.mark.parametrize("query", ["", "   ", "?!...", "東京 大阪", "x" * 10_000, '"Danube" OR NEAR(a b', "AND OR NOT *",
                                   "river " * 2_000])
def test_hostile_queries_give_results_or_nothing_never_an_error(small_corpus, ranking, query):
    corpus_file, index = small_corpus
    corpus = LocalCorpus(corpus_file, index, ranking=ranking)
    results = corpus.search(query, k=5)
    assert isinstance(results, list) and len(results) <= 5
    if query.strip(" ?!.") == "" or query.startswith(("x", "東京")):
        assert results == []
    assert corpus.search_key(query) is not None


def test_an_unknown_ranking_is_refused(small_corpus):
    with pytest.raises(ValueError, match="unknown ranking"):
        LocalCorpus(*small_corpus, ranking="magic")


def test_an_exact_title_still_comes_first_with_passages(small_corpus):
    corpus = LocalCorpus(*small_corpus, ranking="passages")
    assert corpus.search("red river", k=3)[0].title == "Red River"
    assert corpus.search("northern lands", k=1)[0].title == "Northern Lands"


def test_the_retrieval_bench_runs_on_a_tiny_corpus(small_corpus):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import retrieval

    questions = [{"question": "Which river flows through the Quenton valley near Marrow?", "answers": ["Zorblat"],
                  "dataset": "nq"},
                 {"question": "Which valley does the Zorblat flow through?", "answers": ["Quenton"],
                  "dataset": "squad", "article": "Northern Lands"}]
    report = retrieval.run(small_corpus[0], questions)
    names = set(report["rankings"])
    assert {"fts5-pages", "passages", "fts5-windows", "bm25s-pages", "bm25s-windows"} <= names
    assert report["rankings"]["passages"]["open-domain"]["@1"] == 1.0
    assert report["rankings"]["passages"]["squad"]["mrr"] == 1.0
    table = retrieval.format_report(report)
    assert "open-domain" in table and "passages" in table and report["build_seconds"] > 0
