"""WebBackend against a real loopback HTTP server and a fake search engine."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

from webqa.env import web
from webqa.env.backend import Backend, BackendError, Offline, PageNotFound
from webqa.env.html import TRUNCATED_NOTE
from webqa.env.render import render
from webqa.env.web import WebBackend, WebSettings, address_problem, default_cache_dir
from webqa.types import Link, SearchResult

# --- The loopback server -------------------------------------------------------

ARTICLE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Vienna - City Guide</title>
<link rel="stylesheet" href="/style.css"><script src="/analytics.js"></script>
<script>window.dataLayer = []; function track() { return "TRACKER TEXT"; }</script></head>
<body>
<div id="top-bar"><a href="/">City Guide</a> <a href="/login">Log in</a> <a href="/register">Sign up</a></div>
<header><nav><ul>
  <li><a href="/cities/">Cities</a></li><li><a href="/countries/">Countries</a></li>
  <li><a href="/rivers/">Rivers</a></li><li><a href="/about/">About us</a></li><li><a href="/contact/">Contact</a></li>
</ul></nav></header>
<div class="layout">
<aside class="sidebar"><h3>Popular</h3><ul>
  <li><a href="/guide/salzburg.html">Salzburg</a></li><li><a href="/guide/graz.html">Graz</a></li>
  <li><a href="https://ads.example/flights?src=guide">Cheap flights</a></li>
</ul></aside>
<main><article>
<h1>Vienna</h1>
<p class="byline">Updated 3 March 2024</p>
<p>Vienna is the capital and largest city of <a href="https://en.wikipedia.org/wiki/Austria">Austria</a>,
with about two million inhabitants. It lies on the <a href="danube.html">Danube</a> river in the east of
the country and is its cultural, economic and political centre.</p>
<h2>History</h2>
<p>The city grew from a Roman camp called Vindobona. It became the seat of the
<a href="https://www.habsburg.example/family">Habsburg</a> dynasty and was the capital of a large empire
until 1918, when the monarchy ended and the republic was declared.</p>
<p>Today Vienna hosts many international organisations, including the United Nations and OPEC, and is
known for its music, its coffee houses and its architecture, from Gothic to Art Nouveau.</p>
</article></main>
</div>
<footer><p>&copy; 2024 City Guide. <a href="/privacy">Privacy</a> | <a href="/terms">Terms</a> |
<a href="https://twitter.example/cityguide">Twitter</a></p></footer>
<script>track();</script>
</body></html>"""



class Handler(BaseHTTPRequestHandler):
    """Routes for the tests; counts the requests each path gets."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        server = self.server
        with server.lock:
            server.hits[self.path] = server.hits.get(self.path, 0) + 1
        path = self.path.split("?", 1)[0]
        try:
            if path in ("/article.html", "/cached.html", "/guide/vienna.html"):
                self.send(200, "text/html; charset=utf-8", ARTICLE.encode())
            elif path == "/notes.txt":
                self.send(200, "text/plain", b"Notes\n\nVienna is on the Danube.")
            elif path == "/redirect":
                self.redirect("/guide/vienna.html")
            elif path.startswith("/chain/"):
                left = int(path.rsplit("/", 1)[1])
                self.redirect(f"/chain/{left - 1}" if left > 1 else "/article.html")  # N hops in all
            elif path == "/to-ftp":
                self.redirect("ftp://files.example/secret")
            elif path == "/to-file":
                self.redirect("file:///etc/passwd")
            elif path == "/to-other-loopback":
                self.redirect(f"http://127.0.0.2:{server.server_address[1]}/article.html")
            elif path == "/slow":
                time.sleep(3)
                self.send(200, "text/html", b"<p>too late</p>")
            elif path == "/drip":
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                for _ in range(30):
                    self.wfile.write(b"<p>drop</p>\n")
                    self.wfile.flush()
                    time.sleep(0.1)
            elif path == "/big":
                self.send(200, "text/html", b"<html><body>" + (b"<p>" + b"big page words " * 100 + b"</p>\n") * 2000)
            elif path == "/image.png":
                self.send(200, "image/png", b"\x89PNG\r\n\x1a\n" + bytes(1000))
            elif path == "/download":
                self.send(200, "application/octet-stream", bytes(1000))
            elif path == "/untyped-binary":
                self.send(200, None, bytes(range(256)) * 40)
            elif path == "/nested":  # 100,000 nested <div>s: 1.1 MB that once took 20 s to parse
                self.send(200, "text/html", b"<html><body>" + b"<div>" * 100_000 + b"deep text"
                          + b"</div>" * 100_000 + b"<p>after it</p></body></html>")
            elif path == "/error":
                self.send(500, "text/html", b"<p>oops</p>")
            else:
                self.send(404, "text/html", b"<p>no such page</p>")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading, as it should for the size cap

    def send(self, status: int, content_type: str | None, body: bytes) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    """A threaded HTTP server on 127.0.0.1, shut down after the module."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.hits = {}
    httpd.lock = threading.Lock()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    host, port = httpd.server_address
    httpd.base = f"http://{host}:{port}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def backend(tmp_path: Path):
    """A backend allowed to reach the loopback server, with its own cache. Its read timeout leaves room for a
    loaded CI machine (0.5 s made a page fail there once); the timeout test has a backend of its own."""
    with WebBackend(allow_private=True, cache_dir=tmp_path / "http", read_timeout=5, max_bytes=100_000) as b:
        yield b


def hits(server, path: str) -> int:
    with server.lock:
        return server.hits.get(path, 0)


def text_of(doc) -> str:
    return " ".join(span.text if isinstance(span, Link) else span for block in doc.blocks for span in block)


# --- Fetching ----------------------------------------------------------------------


def test_is_a_backend(backend):
    assert isinstance(backend, Backend)
    assert backend.name == "web"


def test_fetch_article(server, backend):
    doc = backend.fetch(f"{server.base}/guide/vienna.html")
    assert doc.url == f"{server.base}/guide/vienna.html"
    assert doc.title == "Vienna - City Guide"
    text = text_of(doc)
    assert "Roman camp called Vindobona" in text
    assert "Cheap flights" not in text and "TRACKER TEXT" not in text
    page = render(doc)
    assert [link.url for link in page.links] == [
        "https://en.wikipedia.org/wiki/Austria",
        f"{server.base}/guide/danube.html",
        "https://www.habsburg.example/family",
    ]
    rendered = "\n".join(page.lines)
    assert "【0†Austria†en.wikipedia.org】" in rendered
    assert "【1†Danube】" in rendered  # same site: no domain shown


def test_fetch_plain_text(server, backend):
    doc = backend.fetch(f"{server.base}/notes.txt")
    assert doc.blocks == [["Notes"], ["Vienna is on the Danube."]]


def test_one_redirect_is_followed(server, backend):
    doc = backend.fetch(f"{server.base}/redirect")
    assert doc.url == f"{server.base}/guide/vienna.html"  # the final URL: relative links resolve against it
    assert doc.title == "Vienna - City Guide"


def test_five_redirects_are_followed_six_are_not(server, backend):
    assert backend.fetch(f"{server.base}/chain/5").title == "Vienna - City Guide"
    with pytest.raises(BackendError, match="too many redirects: more than 5"):
        backend.fetch(f"{server.base}/chain/6")


@pytest.mark.parametrize("path, target", [("/to-ftp", "ftp://files.example/secret"), ("/to-file", "file:///etc/passwd")])
def test_redirect_to_other_scheme_is_refused(server, backend, path, target):
    with pytest.raises(BackendError, match="only http and https") as error:
        backend.fetch(f"{server.base}{path}")
    assert f"follow the redirect from {server.base}{path} to {target}" in str(error.value)


def test_loopback_is_refused_by_default(server, tmp_path):
    with WebBackend(cache_dir=tmp_path) as backend:
        with pytest.raises(BackendError) as error:
            backend.fetch(f"{server.base}/article.html?guarded")
    message = str(error.value)
    assert message.startswith(f"refusing to fetch {server.base}/article.html?guarded: ")
    assert "loopback address" in message and "allow_private=True" in message
    assert hits(server, "/article.html?guarded") == 0


def test_cached_page_is_still_guarded(server, tmp_path):
    """A page cached by a permissive backend is not served to a strict one."""
    with WebBackend(allow_private=True, cache_dir=tmp_path) as permissive:
        permissive.fetch(f"{server.base}/article.html?shared")
    with WebBackend(cache_dir=tmp_path) as strict:
        with pytest.raises(BackendError, match="loopback address"):
            strict.fetch(f"{server.base}/article.html?shared")


@pytest.fixture
def loopback_1_is_public(monkeypatch):
    """Pretend 127.0.0.1 is a public address, so a strict backend can reach the test server."""
    real = address_problem
    monkeypatch.setattr(web, "address_problem", lambda address: None if address == "127.0.0.1" else real(address))


def test_every_redirect_hop_is_checked(server, tmp_path, loopback_1_is_public):
    with WebBackend(cache_dir=tmp_path) as backend:
        assert backend.fetch(f"{server.base}/article.html").title == "Vienna - City Guide"
        with pytest.raises(BackendError) as error:
            backend.fetch(f"{server.base}/to-other-loopback")
    message = str(error.value)
    assert f"refusing to follow the redirect from {server.base}/to-other-loopback" in message
    assert "127.0.0.2 is a loopback address" in message


def test_address_is_checked_again_when_connecting(server, tmp_path, loopback_1_is_public, monkeypatch):
    """DNS rebinding: a name that resolves to a public address first and a local one next is refused."""
    answers = iter(["127.0.0.1", "127.0.0.2"])
    monkeypatch.setattr(web, "_resolve", lambda host, port, timeout: [next(answers)])
    port = server.server_address[1]
    with WebBackend(cache_dir=tmp_path) as backend:
        with pytest.raises(BackendError) as error:
            backend.fetch(f"http://rebinding.test:{port}/article.html")
    assert "rebinding.test resolves to 127.0.0.2, a loopback address" in str(error.value)


@pytest.mark.parametrize(
    "address, problem",
    [
        ("127.0.0.1", "loopback address"),
        ("::1", "loopback address"),
        ("::ffff:127.0.0.1", "loopback address"),
        ("10.1.2.3", "private address"),
        ("192.168.0.1", "private address"),
        ("172.16.0.1", "private address"),
        ("169.254.169.254", "link-local address"),  # cloud metadata
        ("fe80::1%eth0", "link-local address"),
        ("224.0.0.1", "multicast address"),
        ("0.0.0.0", "unspecified address"),
        ("240.0.0.1", "reserved address"),
        ("100.64.0.1", "non-public address"),
        ("93.184.215.14", None),
        ("2606:4700::6810:84e5", None),
    ],
)
def test_address_problem(address, problem):
    assert address_problem(address) == problem


@pytest.mark.parametrize("url", ["Vienna", "example.com/page", "ftp://example.com/", "file:///etc/passwd", "http://"])
def test_fetch_needs_an_http_url(backend, url):
    with pytest.raises(BackendError, match="not a web address"):
        backend.fetch(url)


def test_a_page_nested_100000_deep_renders_within_five_seconds_of_its_download(server, tmp_path):
    with WebBackend(allow_private=True, cache_dir=tmp_path, read_timeout=5) as backend:  # 5 MB cap: all of it
        start = time.perf_counter()
        text = text_of(backend.fetch(f"{server.base}/nested"))
        assert time.perf_counter() - start < 5
    assert "deep text" in text and "after it" in text


def test_slow_server_times_out(server, tmp_path):
    with WebBackend(allow_private=True, cache_dir=tmp_path, read_timeout=0.5) as backend:
        with pytest.raises(BackendError, match=r"timed out after 0.5 s waiting for .*/slow"):
            backend.fetch(f"{server.base}/slow")


def test_dripping_server_hits_the_total_timeout(server, tmp_path):
    with WebBackend(allow_private=True, cache_dir=tmp_path, total_timeout=0.5) as backend:
        with pytest.raises(BackendError, match=r"still downloading after 0.5 s"):
            backend.fetch(f"{server.base}/drip")


def test_body_over_the_size_cap_is_cut_off(server, backend):
    """Decision: keep the beginning of an oversized page, and say so at its end."""
    doc = backend.fetch(f"{server.base}/big")
    assert doc.blocks[-1] == [TRUNCATED_NOTE]
    assert "big page words" in text_of(doc)
    assert len(text_of(doc)) < 100_000


def test_truncated_pages_are_not_cached(server, backend):
    backend.fetch(f"{server.base}/big?twice")
    backend.fetch(f"{server.base}/big?twice")
    assert hits(server, "/big?twice") == 2


@pytest.mark.parametrize("path, kind", [("/image.png", "image/png"), ("/download", "application/octet-stream")])
def test_disallowed_content_types_are_refused(server, backend, path, kind):
    with pytest.raises(BackendError, match=f"not a web page: .*{path} is {kind}"):
        backend.fetch(f"{server.base}{path}")


def test_binary_without_content_type_is_refused(server, backend):
    with pytest.raises(BackendError, match="not a text page"):
        backend.fetch(f"{server.base}/untyped-binary")


def test_http_errors(server, backend):
    with pytest.raises(PageNotFound, match=r"page not found \(HTTP 404\)"):
        backend.fetch(f"{server.base}/missing")
    with pytest.raises(BackendError, match="HTTP 500"):
        backend.fetch(f"{server.base}/error")


def test_connection_refused_on_a_local_port(backend):
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BackendError, match="cannot connect to 127.0.0.1") as error:
        backend.fetch(f"http://127.0.0.1:{port}/")
    assert not isinstance(error.value, Offline)  # a local failure says nothing about the internet


def test_repeated_fetches_come_from_the_cache(server, tmp_path):
    url = f"{server.base}/cached.html"
    with WebBackend(allow_private=True, cache_dir=tmp_path) as first:
        first.fetch(url)
        first.fetch(url)
    with WebBackend(allow_private=True, cache_dir=tmp_path) as later_episode:
        assert later_episode.fetch(url).title == "Vienna - City Guide"
    assert hits(server, "/cached.html") == 1
    with WebBackend(allow_private=True, cache=False, cache_dir=tmp_path) as uncached:
        uncached.fetch(url)
    assert hits(server, "/cached.html") == 2


def test_cache_dir_follows_webqa_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("WEBQA_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "http"
    monkeypatch.delenv("WEBQA_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "webqa" / "http"


def test_settings_and_overrides():
    settings = WebSettings(read_timeout=3)
    backend = WebBackend(settings, search_engine=FakeDDGS(), connect_timeout=1, cache=False)
    assert backend.settings.read_timeout == 3 and backend.settings.connect_timeout == 1
    assert "webqa" in backend.settings.user_agent
    assert backend.settings.max_redirects == 5 and backend.settings.allow_private is False


# --- Search ------------------------------------------------------------------------


class FakeDDGS:
    """Answers like `ddgs.DDGS().text`: a list of {"title", "href", "body"} dicts, or a ddgs exception."""

    def __init__(self, hits=None, error: Exception | None = None, delay: float = 0) -> None:
        self.hits = hits if hits is not None else [
            {"title": "Vienna - Wikipedia", "href": "https://en.wikipedia.org/wiki/Vienna",
             "body": "Vienna is the capital,  largest city\n and one of nine states of Austria."},
            {"title": "Vienna Tourist Information", "href": "https://www.wien.info/en", "body": "Plan your trip."},
            {"title": "Broken", "href": "javascript:void(0)", "body": "skipped"},
            {"title": "", "href": "https://example.org/untitled", "body": ""},
        ]
        self.error = error
        self.delay = delay
        self.calls: list[tuple[str, int]] = []

    def text(self, query: str, max_results: int = 10, **kwargs) -> list[dict[str, str]]:
        self.calls.append((query, max_results))
        time.sleep(self.delay)
        if self.error:
            raise self.error
        return self.hits[:max_results]


@pytest.fixture
def online(monkeypatch):
    """Make the offline probe say the internet is reachable."""
    monkeypatch.setattr(WebBackend, "_reachable", lambda self: True)


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(WebBackend, "_reachable", lambda self: False)


def test_search_results():
    engine = FakeDDGS()
    backend = WebBackend(search_engine=engine, cache=False)
    results = backend.search("  vienna   capital ", k=10)
    assert engine.calls == [("vienna capital", 10)]
    assert results == [
        SearchResult("Vienna - Wikipedia", "https://en.wikipedia.org/wiki/Vienna",
                      "Vienna is the capital, largest city and one of nine states of Austria.",
                      "Vienna is the capital, largest city and one of nine states of Austria."),
        SearchResult("Vienna Tourist Information", "https://www.wien.info/en", "Plan your trip.", "Plan your trip."),
        SearchResult("https://example.org/untitled", "https://example.org/untitled", ""),
    ]  # the web's passage is the engine's snippet
    assert backend.search("vienna", k=1) == results[:1]


def test_search_accepts_a_plain_function():
    backend = WebBackend(search_engine=lambda query, k: [{"title": query, "href": "https://a.example/", "body": ""}],
                         cache=False)
    assert backend.search("q") == [SearchResult("q", "https://a.example/", "")]


def test_empty_query_is_an_error():
    with pytest.raises(BackendError, match="empty search query"):
        WebBackend(search_engine=FakeDDGS(), cache=False).search("   ")


def test_no_results_is_an_empty_list():
    backend = WebBackend(search_engine=FakeDDGS(error=DDGSException("No results found.")), cache=False)
    assert backend.search("qwxzv") == []


def test_rate_limit_is_reported_plainly(online):
    backend = WebBackend(search_engine=FakeDDGS(error=RatelimitException("202 Ratelimit")), cache=False)
    with pytest.raises(BackendError, match=r"search \(duckduckgo\) is rate limited; wait a minute"):
        backend.search("vienna")


def test_engine_errors_are_reported_plainly(online):
    backend = WebBackend(search_engine=FakeDDGS(error=DDGSException("HTTPError: 500\nserver error")), cache=False)
    with pytest.raises(BackendError, match=r"^search \(duckduckgo\) failed: HTTPError: 500 server error$") as error:
        backend.search("vienna")
    assert not isinstance(error.value, Offline)


def test_engine_timeout(online):
    backend = WebBackend(search_engine=FakeDDGS(error=TimeoutException("timed out")), cache=False)
    with pytest.raises(BackendError, match="failed: timed out"):
        backend.search("vienna")


def test_hanging_engine_is_cut_off(online):
    backend = WebBackend(search_engine=FakeDDGS(delay=2), connect_timeout=0.2, read_timeout=0.2, cache=False)
    with pytest.raises(BackendError, match=r"timed out after 0.4 s"):
        backend.search("vienna")


def test_search_failure_without_network_points_to_the_encyclopedia(offline):
    error = DDGSException("DNSError: error resolving DNS")
    with pytest.raises(Offline, match="web is unreachable.*offline encyclopedia.*run without --web"):
        WebBackend(search_engine=FakeDDGS(error=error), cache=False).search("vienna")


# --- No network ----------------------------------------------------------------------


def test_dns_failure_without_network_is_offline(monkeypatch, tmp_path):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with WebBackend(cache_dir=tmp_path) as backend:
        with pytest.raises(Offline, match=r"unreachable from here \(cannot resolve example.com\).*offline encyclopedia"):
            backend.fetch("https://example.com/")


def test_unresolvable_host_fails_fast_and_clearly(tmp_path):
    """Honest anywhere: `.invalid` never resolves. Offline machines point to the encyclopedia."""
    started = time.monotonic()
    with WebBackend(cache_dir=tmp_path) as backend:
        with pytest.raises(BackendError) as error:
            backend.fetch("http://nonexistent.invalid/")
    assert time.monotonic() - started < 5
    message = str(error.value)
    assert "nonexistent.invalid" in message
    if isinstance(error.value, Offline):
        assert "offline encyclopedia" in message and "run without --web" in message
    else:
        assert message.startswith("no such host: nonexistent.invalid")


def _internet_reachable() -> bool:
    return WebBackend(search_engine=FakeDDGS(), cache=False)._reachable()


@pytest.mark.skipif(_internet_reachable(), reason="this machine can reach the internet")
def test_default_backend_without_network_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("WEBQA_CACHE", str(tmp_path))
    for action in (lambda b: b.search("vienna"), lambda b: b.fetch("https://example.com/")):
        started = time.monotonic()
        with WebBackend() as backend:
            with pytest.raises(Offline, match="web is unreachable.*offline encyclopedia"):
                action(backend)
        assert time.monotonic() - started < 5


def test_searches_differing_in_case_and_spacing_share_a_key(tmp_path):
    with WebBackend(cache_dir=tmp_path) as backend:
        assert backend.search_key("Who wrote  Lolita") == backend.search_key("who wrote lolita")
        assert backend.search_key('"Lolita" author') != backend.search_key("Lolita author")  # quotes mean a phrase
