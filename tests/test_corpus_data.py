"""Checks on the committed offline encyclopedia, webqa/data/corpus.jsonl.gz.

The file is built by scripts/build_corpus.py; these tests read it as it is
committed and check the format other code relies on.
"""

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "webqa" / "data" / "corpus.jsonl.gz"
FIELDS = ["title", "url", "source", "description", "text"]
LINK = re.compile(r"\[\[([^\[\]|]+)(?:\|([^\[\]|]+))?\]\]")
HEADING = re.compile(r"(==|===) \S(?:.*\S)? \1")


@pytest.fixture(scope="module")
def pages() -> list[dict]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def titles(pages) -> set[str]:
    return {p["title"] for p in pages}


def test_fields_and_types(pages):
    for page in pages:
        assert list(page) == FIELDS, page.get("title")
        assert all(isinstance(page[f], str) for f in FIELDS), page["title"]
        assert page["title"].strip() and page["text"].strip(), page["title"]


def test_urls_are_https(pages):
    for page in pages:
        assert page["url"].startswith("https://"), page["title"]
        assert " " not in page["url"], page["title"]


def test_titles_unique_and_sorted(pages):
    titles = [p["title"] for p in pages]
    assert titles == sorted(titles)
    duplicates = [t for t, n in Counter(t.casefold() for t in titles).items() if n > 1]
    assert not duplicates


def test_sources_present_with_plausible_counts(pages):
    counts = Counter(p["source"] for p in pages)
    assert set(counts) == {"vital-articles", "squad-articles", "world-factbook", "gensim-enwiki"}
    assert counts["vital-articles"] > 9000
    assert counts["squad-articles"] >= 90
    assert counts["world-factbook"] >= 250
    assert counts["gensim-enwiki"] >= 90


def test_well_known_titles_exist(titles):
    for title in ["Vienna", "Danube", "Austria", "Anarchism", "Warsaw", "Albert Einstein"]:
        assert title in titles
    assert "Austria (World Factbook)" in titles  # Wikipedia has "Austria" too


def test_link_targets_exist(pages, titles):
    missing = Counter()
    for page in pages:
        for match in LINK.finditer(page["text"]):
            if match.group(1) not in titles:
                missing[match.group(1)] += 1
            assert match.group(1) != page["title"], f"self-link in {page['title']}"
    assert not missing, missing.most_common(10)


def test_no_stray_markup(pages):
    for page in pages:
        for paragraph in page["text"].split("\n\n"):
            assert paragraph.strip() == paragraph and paragraph, f"empty or padded paragraph in {page['title']}"
            if paragraph.startswith("="):
                assert HEADING.fullmatch(paragraph), f"{page['title']}: {paragraph[:80]!r}"
                assert "[[" not in paragraph, f"link in a heading of {page['title']}"
                continue
            plain = LINK.sub("", paragraph)
            for mark in ("[[", "]]", "|", "{{", "}}", "<ref", "'''", "\n"):
                assert mark not in plain, f"{mark!r} in {page['title']}: {paragraph[:120]!r}"
            assert not re.search(r"</?(?:br|p|b|strong|em|i|span|div)\b[^>]*>", plain), page["title"]


def test_link_anchor_differs_from_target(pages):
    """`[[Title|Title]]` is written `[[Title]]`."""
    for page in pages:
        for match in LINK.finditer(page["text"]):
            assert match.group(2) != match.group(1), page["title"]
