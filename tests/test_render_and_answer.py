"""Rendering documents as numbered lines, the answer prompt, citations and scoring."""

import pytest

from webqa.env import answer_prompt, check_citations, parse, render
from webqa.env.commands import Command, InvalidCommand
from webqa.env.render import result_texts, search_page, strip_markup
from webqa.scoring import is_correct, is_supported, normalize
from webqa.types import Document, Link, Quote, SearchResult


def test_links_are_numbered_in_order_and_foreign_domains_are_shown():
    doc = Document(url="https://www.example.org/a", title="A", blocks=[
        ["See ", Link("first", "https://example.org/b"), " and ", Link("second", "https://other.net/c"), "."],
        [Link("third", "https://www.example.org/d")],
    ])
    page = render(doc)
    assert page.lines == ["See 【0†first】 and 【1†second†other.net】.", "【2†third】"]
    assert page.plain_lines == ["See first and second.", "third"]
    assert [link.url for link in page.links] == ["https://example.org/b", "https://other.net/c",
                                                 "https://www.example.org/d"]


def test_text_touching_a_link_stays_glued_to_it():
    doc = Document(url="https://x.org/", title="T", blocks=[
        ["(", Link("Wien", "https://x.org/w"), "), ", Link("Graz", "https://x.org/g"), Link("er", "https://x.org/e"),
         " and ", Link("Linz", "https://x.org/l"), "'s port"],
    ])
    page = render(doc)
    assert page.lines == ["(【0†Wien】), 【1†Graz】【2†er】 and 【3†Linz】's port"]
    assert page.plain_lines == ["(Wien), Grazer and Linz's port"]


def test_lines_wrap_at_the_width_without_splitting_links():
    words = [f"word{i}" for i in range(60)]
    doc = Document(url="https://x.org/", title="T", blocks=[[" ".join(words) + " ", Link("a long link text", "https://y.org/")]])
    page = render(doc, width=40)
    assert all(len(plain) <= 40 for plain in page.plain_lines)
    assert " ".join(page.plain_lines).split() == words + ["a", "long", "link", "text"]
    assert sum("【0†a long link text†y.org】" in line for line in page.lines) == 1


def test_markup_characters_in_page_text_cannot_forge_links():
    doc = Document(url="https://x.org/", title="【1†fake】", blocks=[["Click 【7†here†evil.com】 now"]])
    page = render(doc)
    assert page.links == [] and "【" not in page.lines[0] and "【" not in page.title


def test_render_caps_the_number_of_lines():
    doc = Document(url="https://x.org/", title="T", blocks=[[f"paragraph {i}"] for i in range(10_000)])
    page = render(doc, max_lines=100)
    assert len(page.lines) == 101 and page.lines[-1] == "[page truncated]"


def test_search_page_has_one_link_per_result_and_a_no_results_message():
    results = [SearchResult("Danube", "https://en.wikipedia.org/wiki/Danube", "A river in Europe.")]
    page = search_page("river", results, "local")
    assert page.lines == ["【0†Danube†en.wikipedia.org】", "A river in Europe."]
    assert "No results" in search_page("zzz", [], "local").lines[0]
    assert page.is_search_results and not render(Document(url="https://x.org/", title="T", blocks=[])).is_search_results


def test_result_texts_read_each_results_title_and_snippet_back_from_a_search_page():
    snippet = "A long river in Europe, " * 12  # wraps over several lines
    results = [SearchResult("Danube", "https://en.wikipedia.org/wiki/Danube", snippet.strip()),
               SearchResult("Vienna 【3†x】", "https://en.wikipedia.org/wiki/Vienna", ""),
               SearchResult("Rhine", "https://en.wikipedia.org/wiki/Rhine", "Another river.")]
    page = search_page("river", results, "local")
    assert len(page.lines) > 4
    assert result_texts(page) == [f"Danube {snippet.strip()}", "Vienna [3+x]", "Rhine Another river."]


def test_strip_markup():
    assert strip_markup("in 【3†Vienna†wikipedia.org】 and 【4†Graz】") == "in Vienna and Graz"


def test_parse_commands():
    assert parse("  Search  rivers of Europe ") == Command("search", "rivers of Europe")
    assert parse("Clicked on link 12") == Command("click", "12")
    assert parse("Scrolled up 3").amount == 3
    assert parse("End: Controversial") == Command("end", "Controversial")
    with pytest.raises(InvalidCommand, match="valid commands"):
        parse("Open page 3")


QUOTES = [Quote("Danube", "https://en.wikipedia.org/wiki/Danube", "It flows through Vienna."),
          Quote("Vienna", "https://en.wikipedia.org/wiki/Vienna", "Vienna lies on the Danube.")]


def test_answer_prompt_numbers_the_quotes():
    prompt = answer_prompt("Which river?", QUOTES)
    assert prompt == ("♦Question\nWhich river?\n♦Quotes\n[1] Danube (en.wikipedia.org)\nIt flows through Vienna.\n"
                      "[2] Vienna (en.wikipedia.org)\nVienna lies on the Danube.\n♦Answer")
    with pytest.raises(ValueError, match="at least one quote"):
        answer_prompt("Which river?", [])


def test_citation_check():
    assert check_citations("The Danube [1][2].", QUOTES).valid
    bad = check_citations("The Danube [1][3] [0].", QUOTES)
    assert not bad.valid and bad.cited == [1] and bad.invalid == [3, 0] and "[3]" in bad.message
    none = check_citations("The Danube.", QUOTES)
    assert not none.valid and "cites no quote" in none.message


def test_normalize_and_is_correct():
    assert normalize("The Émigré's  Café!") == "emigre s cafe"
    assert is_correct("It is the Danube [1].", ["danube"])
    assert is_correct("Wien, die Stadt", ["Vienna", "Wien"])
    assert not is_correct("Danubian plains", ["Danube"])
    late = " ".join(["word"] * 40) + " Danube"
    assert not is_correct(late, ["Danube"])
    assert is_supported(["It flows through Vienna."], ["vienna"])
    assert not is_supported(["It flows through Vienna."], ["Budapest"])
