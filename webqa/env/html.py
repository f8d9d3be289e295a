"""Turn a fetched web page (HTML or plain text) into a `Document`.

Links are resolved to absolute http(s) URLs with lxml, and the text of each
kept anchor is wrapped in a marker, `⟦17⟧anchor text⟦⟧`, that survives
trafilatura's main-content extraction whatever path it takes (some of its
fallbacks drop anchors). The <a> elements stay in place, so its boilerplate
heuristics (link density of menus and footers) still work. Markers are then
parsed back into `Link` spans; `render()` numbers them. When extraction finds
nothing, or too little of the page, the visible text of <body> is used.

Pages are hostile input: nothing is executed, the input is capped, deep nesting
is flattened, binary data is refused, and every tree walk is iterative.
"""

from __future__ import annotations

import codecs
import copy
import re
from urllib.parse import urldefrag, urljoin, urlsplit

import charset_normalizer
import lxml.etree
import lxml.html
import trafilatura

from webqa.env.backend import BackendError
from webqa.types import Document, Link, Span

MAX_INPUT = 2_000_000  # bytes (or characters) of page source that are parsed at all
MAX_URL = 2048  # longer hrefs are treated as plain text
MAX_TITLE = 300
MAX_LINKS = 10_000  # anchors past this are kept as plain text
MAX_EXTRACT_ELEMENTS = 50_000  # bigger trees skip trafilatura (seconds per 100k) for the whole page
# Fall back to the whole page when extraction keeps less than this much text...
MIN_EXTRACTED_CHARS = 200
# ...or less than this share of the page's visible text.
MIN_EXTRACTED_SHARE = 0.2
TRUNCATED_NOTE = "[Page truncated: it is too long, only its beginning was read.]"

TEXT_TYPES = ("text/plain",)  # anything else is parsed as HTML

# Elements whose content is never shown.
_INVISIBLE = ("script", "style", "noscript", "template", "svg", "math", "iframe", "object",
              "embed", "canvas", "video", "audio", "select", "button", "head")
# Elements that start a new block in the whole-page rendering.
_HTML_BLOCKS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 li ul ol dl dt dd table tr caption thead tbody tfoot section "
    "article header footer nav aside main blockquote pre form fieldset legend figure figcaption "
    "address hr br details summary body".split()
)
# The same for trafilatura's tree (`lb` is its <br>).
_XML_BLOCKS = frozenset("p head item list row table quote code lb graphic label".split())
# Container tags replaced by a paragraph break when a page nests too deep to parse.
_FLATTEN_BLOCKS = _HTML_BLOCKS - {"p", "li", "br", "body"} | {"center", "td", "th"}
_KEEP_WHEN_FLAT = frozenset("html head body title meta base a p li br".split())

_SPACE = re.compile(r"\s+")
# Link markers: `⟦17⟧` opens link 17, `⟦⟧` closes it. The brackets are removed from pages first.
_OPEN, _CLOSE = "⟦{}⟧", "⟦⟧"
_MARKED = re.compile(r"⟦(\d+)⟧([^⟦⟧]*)⟦⟧")
_MARKER_PIECES = re.compile(r"⟦\d*⟧?|⟧")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)\b[^>]*>")
_EMPTY_PARAGRAPHS = re.compile(r"<p>(?:\s*<p>)+")
_SCRIPT_BLOCK = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_MAGIC = ((b"%PDF", "a PDF document"), (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"),
          (b"\xff\xd8\xff", "a JPEG image"), (b"PK\x03\x04", "a ZIP archive"),
          (b"\x1f\x8b", "gzip data"))


def html_to_document(
    data: str | bytes, url: str, content_type: str | None = None, truncated: bool = False
) -> Document:
    """Parse a page into a `Document`; raise `BackendError` if it is not text at all.

    `truncated` says the caller already cut the page short; either way the
    document then ends with a note saying so.
    """
    mime, charset = _parse_content_type(content_type)
    truncated = truncated or len(data) > MAX_INPUT
    data = data[:MAX_INPUT]
    text = _decode(data, charset, url) if isinstance(data, bytes) else data
    if _looks_garbled(text):
        raise BackendError(f"not a text page: {url} looks like binary data")

    if mime in TEXT_TYPES or (mime is None and "<" not in text[:1024]):
        doc = text_to_document(text, url)
    else:
        doc = _html_to_document(text, url)
    if truncated:
        doc.blocks.append([TRUNCATED_NOTE])
    return doc


def text_to_document(text: str, url: str) -> Document:
    """A plain-text page: paragraphs are separated by blank lines."""
    paragraphs = [_SPACE.sub(" ", p).strip() for p in re.split(r"\n\s*\n", text)]
    blocks: list[list[Span]] = [[p] for p in paragraphs if p]
    first_line = text.strip().split("\n", 1)[0].strip()
    title = first_line if 0 < len(first_line) <= 100 else ""
    return Document(url=url, title=title, blocks=blocks)


# --- Decoding ----------------------------------------------------------------


def _parse_content_type(content_type: str | None) -> tuple[str | None, str | None]:
    """`text/html; charset=UTF-8` -> (`text/html`, `utf-8`)."""
    if not content_type:
        return None, None
    mime, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'").lower() or None
    return mime.strip().lower() or None, charset


def _decode(data: bytes, charset: str | None, url: str) -> str:
    """Bytes to text: BOM, then the declared charsets, then UTF-8, then detection."""
    what = _binary_kind(data[:8192])
    if what:
        raise BackendError(f"not a text page: {url} is {what}")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")

    meta = _META_CHARSET.search(data[:4096])
    declared = [charset, meta.group(1).decode("ascii").lower() if meta else None, "utf-8"]
    for encoding in declared:
        text = _strict_decode(data, encoding)
        if text is not None:
            return text

    # Nothing declared fits: guess from a sample, then decode everything that way.
    best = charset_normalizer.from_bytes(data[:200_000]).best()
    encoding = best.encoding if best is not None else "cp1252"
    return data.decode(encoding, errors="replace")


def _strict_decode(data: bytes, encoding: str | None) -> str | None:
    """Decode if every byte fits `encoding`, else None. A cut-off last character is fine."""
    if not encoding:
        return None
    if encoding in ("iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii"):
        encoding = "cp1252"  # what browsers do (WHATWG encoding standard)
    if encoding.startswith("utf-16") or encoding.startswith("utf-32"):
        encoding = "utf-8"  # only a BOM can make a page UTF-16; a <meta> saying so is wrong
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError:
        return None
    try:
        return decoder.decode(data, final=False)
    except UnicodeDecodeError:
        return None


def _binary_kind(sample: bytes) -> str | None:
    """Why `sample` is not text (e.g. 'a PNG image'), or None if it looks like text."""
    for magic, what in _MAGIC:
        if sample.startswith(magic):
            return what
    if any(sample.startswith(bom) for bom, _ in _BOMS):
        return None  # UTF-16/32 text legitimately contains NUL bytes
    controls = sum(1 for b in sample if b < 32 and b not in b"\t\n\r\f\x1b")
    if b"\x00" in sample or controls > len(sample) * 0.1:
        return "binary data"
    return None


def _looks_garbled(text: str) -> bool:
    """Already-decoded text that is mostly control characters or replacement marks."""
    sample = text[:8192]
    bad = sum(1 for c in sample if c == "\ufffd" or (c < " " and c not in "\t\n\r\f"))
    return bad > len(sample) * 0.1


# --- HTML --------------------------------------------------------------------


def _html_to_document(text: str, url: str) -> Document:
    # Characters XML cannot hold would make lxml refuse our edits; brackets are link markers.
    text = _NOT_XML.sub(" ", text).replace("⟦", "[").replace("⟧", "]")
    root = _parse(text)
    title = _title(root)
    urls = _mark_links(root, url)  # before <head> goes: it may hold a <base>
    for element in list(root.iter(*_INVISIBLE)):
        if element.getparent() is not None:
            element.drop_tree()  # keeps the tail text
    _drop_hidden(root)

    body = root.find("body")
    whole = _blocks(body if body is not None else root, _HTML_BLOCKS)
    too_big = sum(1 for _ in root.iter()) > MAX_EXTRACT_ELEMENTS
    main = [] if too_big else _extract(root, url)
    visible = sum(map(len, whole))
    extracted = sum(map(len, main))
    if extracted < MIN_EXTRACTED_CHARS or extracted < MIN_EXTRACTED_SHARE * visible:
        main = whole
    return Document(url=url, title=title, blocks=[spans for block in main if (spans := _linkify(block, urls))])


def _parse(text: str) -> lxml.html.HtmlElement:
    """Parse HTML; flatten it first if it nests deeper than libxml2 allows (256)."""
    text = _XML_DECLARATION.sub("", text, count=1)  # lxml refuses str input that declares bytes
    if not text.strip():
        return lxml.html.document_fromstring("<html><body></body></html>")
    root, too_deep = _parse_once(text)
    if too_deep:
        # libxml2 silently drops everything below depth 256: rebuild the page with
        # container tags turned into paragraph breaks, so no element can nest.
        root, too_deep = _parse_once(_flatten(text))
    if too_deep:
        # Even the flattened page nests too deep: keep its text and nothing else.
        plain = _TAG.sub(" ", _SCRIPT_BLOCK.sub(" ", text))
        root = lxml.html.document_fromstring("<html><body></body></html>")
        body = root.find("body")
        for paragraph in re.split(r"\n\s*\n", plain):
            lxml.etree.SubElement(body, "p").text = paragraph
    return root


def _parse_once(text: str) -> tuple[lxml.html.HtmlElement, bool]:
    parser = lxml.html.HTMLParser(huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        root = lxml.html.document_fromstring(text, parser=parser)
    except (lxml.etree.ParserError, ValueError):
        root = lxml.html.document_fromstring("<html><body></body></html>")
    too_deep = any("Excessive depth" in str(error.message) for error in parser.error_log)
    return root, too_deep


def _flatten(text: str) -> str:
    """Remove every tag that can nest, turning block containers into paragraph breaks."""
    text = _SCRIPT_BLOCK.sub(" ", text)

    def replace(match: re.Match[str]) -> str:
        tag = match.group(2).lower()
        if tag in _KEEP_WHEN_FLAT:
            return match.group(0)
        return "\n<p>" if tag in _FLATTEN_BLOCKS and not match.group(1) else " "

    # Runs of empty paragraphs (10,000 closing </div>s) would only slow the extractor down. The pattern
    # starts at a `<p>`: one starting at whitespace would rescan a long run of it from every position
    # (200,000 nested <div>s took 45 s).
    return _EMPTY_PARAGRAPHS.sub("\n<p>", _TAG.sub(replace, text))


def _title(root: lxml.html.HtmlElement) -> str:
    """<title>, else the first <h1>, whitespace-normalised."""
    for tag in ("title", "h1"):
        element = next(root.iter(tag), None)
        if element is not None:
            title = _SPACE.sub(" ", element.text_content()).strip()
            if title:
                return title[:MAX_TITLE]
    return ""


def _mark_links(root: lxml.html.HtmlElement, url: str) -> list[str]:
    """Resolve each <a href> and wrap its text in a marker; return the URLs by marker number.

    Anchors that do not lead to another http(s) page lose their href and stay plain text.
    """
    base = url
    base_element = next(root.iter("base"), None)
    if base_element is not None and base_element.get("href"):
        base = _absolute(url, base_element.get("href", "")) or url
    page = urldefrag(url)[0]
    urls: list[str] = []
    for anchor in list(root.iter("a")):  # a list: the loop edits the tree
        target = _absolute(base, anchor.get("href") or "") if len(urls) < MAX_LINKS else None
        anchor.attrib.clear()
        if target is None or target == page:  # not http(s), or a link to this very page
            continue
        text = _SPACE.sub(" ", anchor.text_content()).strip()
        if not text:
            continue  # e.g. an image link: nothing to show
        anchor.set("href", target)  # kept, for trafilatura's link-density heuristics
        for child in list(anchor):
            anchor.remove(child)
        anchor.text = _OPEN.format(len(urls)) + text + _CLOSE
        urls.append(target)
    return urls


def _absolute(base: str, href: str) -> str | None:
    """`href` resolved against `base`, without fragment, if it is an http(s) URL."""
    href = href.strip()
    if not href or href.startswith("#") or len(href) > MAX_URL:
        return None
    try:
        target = urldefrag(urljoin(base, href))[0]
        parts = urlsplit(target)
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return target


def _drop_hidden(root: lxml.html.HtmlElement) -> None:
    """Remove elements that a browser would not show."""
    hidden = [
        element
        for element in root.iter()
        if isinstance(element.tag, str)
        and (
            element.get("hidden") is not None
            or element.get("aria-hidden") == "true"
            or _HIDDEN_STYLE.search(element.get("style") or "")
        )
    ]
    for element in hidden:
        if element.getparent() is not None:
            element.drop_tree()


def _extract(root: lxml.html.HtmlElement, url: str) -> list[str]:
    """The main content as text blocks (with link markers), via trafilatura; [] if it finds none.

    `bare_extraction` hands back trafilatura's own tree (the elements of its XML
    output: p, head, list/item, table/row/cell, ...), which saves serialising it
    and the text fingerprint that `extract(output_format="xml")` computes.
    """
    try:
        result = trafilatura.bare_extraction(
            copy.deepcopy(root),  # trafilatura edits the tree it is given
            url=url,
            include_links=False,  # the markers carry the links
            include_tables=True,
            include_comments=False,
            include_images=False,
            favor_recall=True,
            deduplicate=False,
            with_metadata=False,
        )
    except Exception:  # noqa: BLE001 - a crash in extraction just means "use the whole page"
        return []
    body = getattr(result, "body", None)
    return _blocks(body, _XML_BLOCKS) if body is not None else []


def _blocks(root: lxml.etree._Element, block_tags: frozenset[str]) -> list[str]:
    """Walk a tree (iteratively, so any depth is fine) into whitespace-normalised text blocks."""
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        text = _SPACE.sub(" ", "".join(current)).strip()
        if text:
            blocks.append(text)
        current.clear()

    for event, element in lxml.etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else None  # None: a comment or PI
        if event == "start":
            if tag in block_tags:
                flush()
            if tag in ("td", "th", "cell"):
                current.append(" ")
            if tag is not None and element.text:
                current.append(element.text)
        else:
            if tag in block_tags:
                flush()
            if element is not root and element.tail:
                current.append(element.tail)
    flush()
    return blocks


def _linkify(block: str, urls: list[str]) -> list[Span]:
    """Turn the link markers of a text block into `Link` spans; drop broken markers."""
    spans: list[Span] = []

    def add_text(text: str) -> None:
        text = _MARKER_PIECES.sub("", text)
        if text.strip():
            spans.append(text)

    position = 0
    for match in _MARKED.finditer(block):
        add_text(block[position : match.start()])
        number, text = int(match.group(1)), match.group(2).strip()
        if text and number < len(urls):
            spans.append(Link(text=text, url=urls[number]))
        else:
            add_text(text)
        position = match.end()
    add_text(block[position:])
    return spans
