"""html_to_document: main-content extraction, links, charsets, and hostile pages."""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webqa.env.backend import BackendError
from webqa.env.html import MAX_LINKS, TRUNCATED_NOTE, html_to_document
from webqa.env.render import render
from webqa.types import Link

URL = "http://site.test/guide/vienna.html"

ARTICLE = """<!doctype html>
<html><head><title>Vienna - City Guide</title>
<script>document.write('SCRIPT TEXT')</script><style>p { color: red }</style></head>
<body>
<header><a href="/">Home</a> | <a href="/login">Log in</a> | <a href="/register">Register</a></header>
<nav><ul>
  <li><a href="/cities">Cities</a></li><li><a href="/countries">Countries</a></li>
  <li><a href="/rivers">Rivers</a></li><li><a href="/about">About us</a></li>
</ul></nav>
<aside><h3>Related cities</h3><ul>
  <li><a href="/guide/salzburg.html">Salzburg</a></li><li><a href="/guide/graz.html">Graz</a></li>
  <li><a href="https://ads.example/buy">Cheap flights</a></li>
</ul></aside>
<main><article>
<h1>Vienna</h1>
<p>Vienna is the capital and largest city of <a href="https://en.wikipedia.org/wiki/Austria">Austria</a>,
with about two million inhabitants. It lies on the <a href="danube.html">Danube</a> river in the east of
the country and is its cultural, economic and political centre.</p>
<h2>History</h2>
<p>The city grew from a Roman camp called Vindobona. It became the seat of the
<a href="https://www.habsburg.example/family">Habsburg</a> dynasty and was the capital of a large empire
until 1918. See <a href="#notes">the notes</a>, <a href="javascript:alert(1)">this script</a> and
<a href="mailto:editor@site.test">the editor</a>.</p>
<p>Today Vienna hosts many international organisations, including the United Nations and OPEC, and is
known for its music, its coffee houses and its architecture, from Gothic to Art Nouveau.</p>
</article></main>
<footer><p>&copy; 2024 City Guide. <a href="/privacy">Privacy</a> <a href="/terms">Terms</a></p></footer>
<script>var tracker = "TRACKER TEXT";</script>
</body></html>"""


def bounded(function: Callable[[], Any], seconds: float = 60) -> Any:
    """Run `function`, failing the test (instead of hanging the suite) if it never returns."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = function()
        except BaseException as error:  # noqa: BLE001
            box["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not finish within {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def text_of(doc) -> str:
    return "\n".join(
        "".join(span.text if isinstance(span, Link) else span for span in block) for block in doc.blocks
    )


def links_of(doc) -> list[Link]:
    return [span for block in doc.blocks for span in block if isinstance(span, Link)]


# --- Real-world-shaped pages ---------------------------------------------------


def test_article_main_text_is_extracted_without_boilerplate():
    doc = html_to_document(ARTICLE.encode(), URL, "text/html; charset=utf-8")
    text = text_of(doc)
    assert doc.title == "Vienna - City Guide"
    assert "capital and largest city of Austria" in text
    assert "Roman camp called Vindobona" in text
    assert "History" in text
    for boilerplate in ("Log in", "Countries", "Cheap flights", "Privacy", "SCRIPT TEXT", "TRACKER TEXT", "color"):
        assert boilerplate not in text


def test_links_are_absolute_and_numbered_in_order_after_render():
    page = render(html_to_document(ARTICLE.encode(), URL, "text/html"))
    assert [link.url for link in page.links] == [
        "https://en.wikipedia.org/wiki/Austria",
        "http://site.test/guide/danube.html",
        "https://www.habsburg.example/family",
    ]
    rendered = "\n".join(page.lines)
    assert "【0†Austria†en.wikipedia.org】" in rendered
    assert "【1†Danube】" in rendered  # same site: no domain
    assert "【2†Habsburg†habsburg.example】" in rendered  # www. is not shown
    # Fragment-only, javascript: and mailto: anchors stay as plain words.
    assert "the notes" in rendered and "this script" in rendered and "the editor" in rendered


def test_base_href_and_odd_links():
    html = """<html><head><base href="https://cdn.test/docs/"></head><body><p>
    <a href="intro.html#part2">Intro</a> <a href="  /top  ">Top</a> <a href="//other.test/x">Other</a>
    <a href="ftp://files.test/a">FTP</a> <a href="data:text/html,hi">Data</a> <a href="http://[oops/">Broken</a>
    <a href="">Empty</a> <a>No href</a> <a href="https://cdn.test/docs/#x">Top of base</a></p></body></html>"""
    links = links_of(html_to_document(html, "https://site.test/page"))
    assert [(link.text, link.url) for link in links] == [
        ("Intro", "https://cdn.test/docs/intro.html"),  # fragment dropped
        ("Top", "https://cdn.test/top"),
        ("Other", "https://other.test/x"),
        ("Top of base", "https://cdn.test/docs/"),
    ]


def test_links_to_the_page_itself_are_dropped():
    html = '<p>Jump to <a href="vienna.html#history">history</a> or <a href="graz.html">Graz</a>.</p>'
    assert [link.text for link in links_of(html_to_document(html, URL))] == ["Graz"]


def test_link_list_page_falls_back_to_the_whole_page():
    # Only links: an extractor keeps (almost) nothing, so the whole page is shown.
    html = "<html><head><title>Index</title></head><body><ul>" + "".join(
        f'<li><a href="/p{i}">Page number {i}</a></li>' for i in range(30)
    ) + "</ul></body></html>"
    doc = html_to_document(html, "http://site.test/")
    assert len(links_of(doc)) == 30
    assert links_of(doc)[0] == Link(text="Page number 0", url="http://site.test/p0")


def test_short_page_is_shown_whole():
    doc = html_to_document("<html><body><div>Just one line.</div></body></html>", "http://site.test/")
    assert text_of(doc) == "Just one line."
    assert doc.title == ""


def test_title_falls_back_to_first_h1():
    doc = html_to_document("<body><h1> The  Heading </h1><p>Body.</p></body>", "http://site.test/")
    assert doc.title == "The Heading"


def test_hidden_elements_are_dropped():
    html = """<body><p>Visible words.</p><div hidden>HIDDEN ONE</div><p style="display: none">HIDDEN TWO</p>
    <template><p>HIDDEN THREE</p></template><noscript>HIDDEN FOUR</noscript></body>"""
    text = text_of(html_to_document(html, "http://site.test/"))
    assert "Visible words." in text and "HIDDEN" not in text


def test_tables_keep_cells_apart():
    html = "<body><table><tr><th>City</th><th>People</th></tr><tr><td>Vienna</td><td>2,000,000</td></tr></table></body>"
    text = text_of(html_to_document(html, "http://site.test/"))
    assert "Vienna" in text and "2,000,000" in text and "Vienna2" not in text


def test_plain_text_paragraphs():
    data = b"A Title Line\n\nFirst paragraph\ncontinues here.\n\n\n  Second paragraph.  \n"
    doc = html_to_document(data, "http://site.test/notes.txt", "text/plain; charset=utf-8")
    assert doc.blocks == [["A Title Line"], ["First paragraph continues here."], ["Second paragraph."]]
    assert doc.title == "A Title Line"


def test_text_without_markup_and_without_content_type_is_plain_text():
    doc = html_to_document(b"just words\n\nmore words", "http://site.test/x")
    assert doc.blocks == [["just words"], ["more words"]]


def test_xhtml_with_xml_declaration():
    data = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        b"<head><title>X</title></head><body><p>Caf\xc3\xa9 <a href=\"menu\">menu</a></p></body></html>"
    )
    doc = html_to_document(data, "http://site.test/", "application/xhtml+xml")
    assert doc.title == "X"
    assert text_of(doc) == "Café menu"
    assert links_of(doc) == [Link(text="menu", url="http://site.test/menu")]


def test_empty_page():
    doc = html_to_document(b"", "http://site.test/", "text/html")
    assert doc.blocks == [] and doc.url == "http://site.test/"
    assert render(doc).title == "http://site.test/"


# --- Charsets --------------------------------------------------------------------


def test_latin1_bytes_declared_as_utf8_are_detected():
    data = "<html><body><p>Un café à Zürich, très bien. Ça coûte cher.</p></body></html>".encode("latin-1")
    doc = html_to_document(data, "http://site.test/", "text/html; charset=utf-8")
    assert text_of(doc) == "Un café à Zürich, très bien. Ça coûte cher."


def test_cp1251_declared_in_meta():
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
        "<title>Москва</title></head><body><p>Москва — столица России.</p></body></html>"
    )
    doc = html_to_document(html.encode("cp1251"), "http://site.test/", "text/html")
    assert doc.title == "Москва"
    assert text_of(doc) == "Москва — столица России."


def test_header_charset_wins_over_meta():
    html = '<html><head><meta charset="windows-1251"></head><body><p>Grüße aus Köln</p></body></html>'
    doc = html_to_document(html.encode("utf-8"), "http://site.test/", "text/html; charset=utf-8")
    assert text_of(doc) == "Grüße aus Köln"


def test_unknown_charset_falls_back():
    data = "<p>naïve</p>".encode("utf-8")
    doc = html_to_document(data, "http://site.test/", "text/html; charset=no-such-charset")
    assert text_of(doc) == "naïve"


def test_utf16_with_bom():
    data = "<html><body><p>Wien an der Donau</p></body></html>".encode("utf-16")
    assert text_of(html_to_document(data, "http://site.test/", "text/html")) == "Wien an der Donau"


# --- Hostile pages -----------------------------------------------------------------


@pytest.mark.parametrize("tag", ["div", "b", "span", "h1", "table"])
def test_ten_thousand_deep_nesting_still_yields_the_text(tag):
    html = f"<html><body>{f'<{tag}>x ' * 10_000}<p>the deep text</p>{f'</{tag}>' * 10_000}<p>after it</p></body></html>"
    doc = bounded(lambda: html_to_document(html, "http://site.test/", "text/html"))
    text = text_of(doc)
    assert "the deep text" in text and "after it" in text
    assert render(doc).lines


def test_twenty_megabyte_body_is_cut_off():
    paragraph = "<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 5 + "</p>\n"
    data = ("<html><body>" + paragraph * (20_000_000 // len(paragraph) + 1)).encode()
    assert len(data) > 20_000_000
    doc = bounded(lambda: html_to_document(data, "http://site.test/", "text/html"))
    assert doc.blocks[-1] == [TRUNCATED_NOTE]
    assert len(text_of(doc)) < 2_100_000
    page = render(doc)
    assert page.lines[-1] == "[page truncated]"


def test_one_huge_text_node():
    data = ("<html><body><p>" + "word " * 4_000_000).encode()
    doc = bounded(lambda: html_to_document(data, "http://site.test/", "text/html"))
    assert doc.blocks[-1] == [TRUNCATED_NOTE]
    assert render(doc).lines[0].startswith("word word")


@pytest.mark.parametrize("data", [os.urandom(200_000), b"\x89PNG\r\n\x1a\n" + os.urandom(5000), b"%PDF-1.7\n%\xe2\xe3"])
def test_binary_data_is_refused(data):
    with pytest.raises(BackendError, match="not a text page"):
        html_to_document(data, "http://site.test/file", "text/html")


def test_binary_data_already_decoded_is_refused():
    garbage = os.urandom(50_000).decode("latin-1")
    with pytest.raises(BackendError, match="not a text page"):
        html_to_document(garbage, "http://site.test/file")


def test_five_thousand_links():
    html = "<html><head><title>Links</title></head><body><h1>Links</h1>" + "".join(
        f'<p>Item {i}: <a href="/page/{i}">page {i}</a> and <a href="https://other.example/{i}">elsewhere</a></p>'
        for i in range(2500)
    ) + "</body></html>"
    page = render(bounded(lambda: html_to_document(html, "http://site.test/", "text/html")))
    assert len(page.links) == 5000
    assert page.links[0].url == "http://site.test/page/0"
    assert page.links[4999].url == "https://other.example/2499"
    assert "Item 2499: 【4998†page 2499】 and 【4999†elsewhere†other.example】" in page.lines


def test_links_beyond_the_cap_become_text():
    html = "<body><p>" + '<a href="/x">go</a> ' * (MAX_LINKS + 500) + "</p></body>"
    doc = bounded(lambda: html_to_document(html, "http://site.test/", "text/html"))
    assert len(links_of(doc)) == MAX_LINKS
    assert text_of(doc).count("go") == MAX_LINKS + 500


def test_scripts_never_run_and_never_show():
    html = "<body><p>Safe text.</p><script>while(true){}</script><img src=x onerror=alert(1)><p>More.</p></body>"
    text = text_of(html_to_document(html, "http://site.test/"))
    assert "Safe text." in text and "while" not in text and "alert" not in text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["<p>", "</p>", "<div>", "</div>", "<a href='/x'>", "<a href='javascript:x'>", "</a>",
                             "<script>", "</script>", "<table><tr><td>", "<br>", "<!--", "-->", "<base href='ftp://x'>",
                             "<title>", "</title>", "<h1>", "&amp;", "&#0;", "<?xml version='1.0' encoding='latin-1'?>"]),
            st.text(max_size=20),
        ),
        max_size=40,
    )
)
def test_any_markup_gives_a_document_or_a_clear_error(pieces):
    try:
        doc = html_to_document("".join(pieces), "http://site.test/a/b", "text/html")
    except BackendError as error:
        assert "not a text page" in str(error)
        return
    for link in links_of(doc):
        assert link.url.startswith(("http://", "https://")) and "#" not in link.url
    render(doc)
