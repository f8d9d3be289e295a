"""The live-web backend: search with a ddgs engine, fetch pages with httpx.

Fetching is careful, since the agent follows links chosen by whoever wrote the
page it is reading:

- only http(s); redirects are followed by hand (at most `max_redirects`) so
  every hop is checked again;
- the host must resolve only to public addresses (unless `allow_private`). The
  check runs before each request, for a clear message, and again when the
  socket is opened, on the very address it connects to, so a name that
  resolves differently the second time (DNS rebinding) cannot slip through;
- bounded time (connect, read, and total) and size (the body is streamed and
  cut off at `max_bytes`; the page keeps its beginning and says it was cut);
- only HTML, XHTML and plain text are accepted;
- successful responses are cached on disk with hishel (SQLite), keyed by
  URL, for `cache_ttl` seconds, whatever the site's caching headers say: an
  evaluation replays the same pages without fetching them again.

Every failure is a `BackendError` with one line meant for the model or the
user. When the internet itself is unreachable (checked with a quick probe
after a failure) the error is `Offline` and points at the offline encyclopedia.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from math import ceil
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urldefrag, urljoin, urlsplit

import httpcore
import httpx

from webqa.env.backend import BackendError, Offline, PageNotFound
from webqa.env.html import html_to_document
from webqa.types import Document, SearchResult

USER_AGENT = "Mozilla/5.0 (compatible; webqa/0.1; browsing question-answering agent)"
OFFLINE_HINT = (
    "the web is unreachable from here ({reason}). Use the offline encyclopedia instead: "
    "it is the default backend (run without --web)."
)
REDIRECTS = (301, 302, 303, 307, 308)

# A search engine: query and number of results -> ddgs-shaped dicts {"title", "href", "body"}.
SearchFunction = Callable[[str, int], list[dict[str, Any]]]


def default_cache_dir() -> Path:
    """`$WEBQA_CACHE/http`, or `~/.cache/webqa/http`."""
    root = os.environ.get("WEBQA_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "webqa") / "http"


@dataclass(frozen=True)
class WebSettings:
    """Knobs of the live-web backend."""

    search_engine: str = "duckduckgo"  # a ddgs text backend: duckduckgo, bing, brave, google, ...
    region: str = "us-en"
    safesearch: str = "moderate"
    connect_timeout: float = 5.0  # seconds, also the bound on a DNS lookup
    read_timeout: float = 10.0  # seconds without data from the server
    total_timeout: float = 30.0  # seconds for a whole download (a server dripping bytes)
    max_redirects: int = 5
    max_bytes: int = 5_000_000  # longer bodies are cut off here
    content_types: tuple[str, ...] = ("text/html", "application/xhtml+xml", "text/plain")
    user_agent: str = USER_AGENT
    cache: bool = True
    cache_dir: Path | None = None  # None: default_cache_dir()
    cache_ttl: float = 7 * 24 * 3600  # seconds
    allow_private: bool = False  # allow loopback, private, link-local... addresses
    probe_host: str = "duckduckgo.com"  # resolved and connected to, to tell "offline" from "site down"


class WebBackend:
    """Search and fetch on the live web. See the module docstring for the safeguards."""

    name = "web"

    def __init__(
        self,
        settings: WebSettings | None = None,
        *,
        search_engine: SearchFunction | Any | None = None,
        **overrides: Any,
    ) -> None:
        """`WebBackend(read_timeout=2, allow_private=True)` overrides single settings.

        `search_engine` replaces ddgs: an object with a ddgs-like
        `text(query, max_results=k)` method, or a function `(query, k)`.
        """
        self.settings = replace(settings or WebSettings(), **overrides)
        self._search = _search_function(search_engine, self.settings)
        self._probe_lock = threading.Lock()
        self._probe: tuple[float, bool] | None = None  # (when, reachable)
        self._client = self._make_client()

    # --- Backend protocol ---------------------------------------------------

    def search(self, query: str, k: int = 10) -> list[SearchResult]:
        """Up to k results from the search engine, best first."""
        query = " ".join(query.split())
        if not query:
            raise BackendError("empty search query")
        if k <= 0:
            return []
        engine = self.settings.search_engine
        deadline = self.settings.connect_timeout + self.settings.read_timeout
        try:
            hits = _with_deadline(lambda: self._search(query, k), deadline)
        except TimeoutError:
            self._raise_if_offline(f"search timed out after {deadline:g} s")
            raise BackendError(f"search ({engine}) timed out after {deadline:g} s; try again") from None
        except Exception as error:  # noqa: BLE001 - engines raise anything; each becomes one line
            kind = type(error).__name__
            message = _one_line(error)
            if kind == "RatelimitException" or "ratelimit" in message.lower():
                raise BackendError(
                    f"search ({engine}) is rate limited; wait a minute, or configure another engine"
                ) from None
            if message == "No results found.":  # how ddgs says "nothing" when no engine failed
                return []
            self._raise_if_offline(f"search with {engine} failed")
            raise BackendError(f"search ({engine}) failed: {message}") from None

        results = []
        for hit in hits:
            url = str(hit.get("href") or hit.get("url") or "").strip()
            if urlsplit(url).scheme not in ("http", "https"):
                continue
            title = " ".join(str(hit.get("title") or "").split()) or url
            snippet = " ".join(str(hit.get("body") or hit.get("snippet") or "").split())
            results.append(SearchResult(title=title, url=url, snippet=snippet, passage=snippet))
        return results[:k]

    def check(self) -> None:
        """Raise `Offline` at once (within the probe's 2 s) when the internet cannot be reached; a caller
        about to spend time on the web (loading a model, then browsing) asks first."""
        self._raise_if_offline(f"cannot connect to {self.settings.probe_host}")

    def search_key(self, query: str) -> str:
        """Queries with equal keys get the same results (see `Backend`): search engines ignore case and spacing."""
        return " ".join(query.split()).casefold()

    def fetch(self, url: str) -> Document:
        """The page at an http(s) URL, following up to `max_redirects` checked redirects."""
        start = url = url.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(f"not a web address: {url!r}; the web backend fetches http(s) URLs only")
        url = urldefrag(url)[0]
        previous = None
        for _hop in range(self.settings.max_redirects + 1):
            self._check(url, previous)
            with self._request(url) as response:
                if response.status_code in REDIRECTS and "location" in response.headers:
                    previous, url = url, urldefrag(urljoin(url, response.headers["location"].strip()))[0]
                    continue
                return self._read(url, response)
        raise BackendError(f"too many redirects: more than {self.settings.max_redirects}, starting from {start}")

    # --- Fetching -----------------------------------------------------------

    def _make_client(self) -> httpx.Client:
        settings = self.settings
        transport: httpx.BaseTransport = _GuardedTransport(self._resolve_checked)
        if settings.cache:
            from hishel import SqliteStorage
            from hishel.httpx import CacheTransport

            storage = SqliteStorage(
                database_path=(settings.cache_dir or default_cache_dir()) / "cache.sqlite",
                default_ttl=settings.cache_ttl,
                max_stream_size=settings.max_bytes,  # pages we cut off are never stored
            )
            transport = CacheTransport(next_transport=transport, storage=storage)
        return httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            headers={
                "User-Agent": settings.user_agent,
                "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1",
            },
            follow_redirects=False,  # each hop is checked by fetch()
            trust_env=False,  # no proxies from the environment: they would bypass the address guard
        )

    @contextmanager
    def _request(self, url: str) -> Iterator[httpx.Response]:
        """A streamed GET, with transport errors turned into clear `BackendError`s."""
        host = urlsplit(url).hostname or ""
        try:
            with self._client.stream("GET", url) as response:
                yield response
        except _Refused as refused:  # the connect-time check (see _GuardedNetwork)
            raise BackendError(f"refusing to fetch {url}: {refused}") from None
        except httpx.ConnectTimeout:
            self._raise_if_offline(f"connecting to {host} timed out", host)
            raise BackendError(f"timed out connecting to {host}: {url}") from None
        except httpx.TimeoutException:
            raise BackendError(f"timed out after {self.settings.read_timeout:g} s waiting for {url}") from None
        except httpx.ConnectError as error:
            reason = _one_line(error)
            self._raise_if_offline(f"cannot connect to {host}: {reason}", host)
            raise BackendError(f"cannot connect to {host} ({reason}): {url}") from None
        except httpx.HTTPError as error:
            raise BackendError(f"network error fetching {url}: {_one_line(error)}") from None

    def _read(self, url: str, response: httpx.Response) -> Document:
        """Check status and content type, read at most `max_bytes`, and parse."""
        status = response.status_code
        if status in (404, 410):
            raise PageNotFound(f"page not found (HTTP {status}): {url}")
        if status in REDIRECTS:
            raise BackendError(f"redirect without a Location (HTTP {status}): {url}")
        if not 200 <= status < 300:
            reason = f" {response.reason_phrase}" if response.reason_phrase else ""
            raise BackendError(f"HTTP {status}{reason}: {url}")
        content_type = response.headers.get("content-type")
        mime = (content_type or "").partition(";")[0].strip().lower()
        if mime and mime not in self.settings.content_types:
            raise BackendError(
                f"not a web page: {url} is {mime} (only {', '.join(self.settings.content_types)} are read)"
            )

        settings = self.settings
        chunks, size, truncated = [], 0, False
        give_up = time.monotonic() + settings.total_timeout
        try:
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > settings.max_bytes:
                    truncated = True  # keep the beginning; closing the stream drops the rest
                    break
                if time.monotonic() > give_up:
                    raise BackendError(f"gave up on {url}: still downloading after {settings.total_timeout:g} s")
        except httpx.TimeoutException:
            raise BackendError(f"timed out after {settings.read_timeout:g} s reading {url}") from None
        except httpx.HTTPError as error:
            raise BackendError(f"network error reading {url}: {_one_line(error)}") from None
        body = b"".join(chunks)[: settings.max_bytes]
        return html_to_document(body, url, content_type, truncated=truncated)

    # --- The address guard --------------------------------------------------

    def _check(self, url: str, previous: str | None) -> None:
        """Refuse non-http(s) URLs and hosts with non-public addresses, with a clear message."""
        action = f"follow the redirect from {previous} to {url}" if previous else f"fetch {url}"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise BackendError(f"refusing to {action}: only http and https URLs can be fetched")
        if not parts.hostname:
            raise BackendError(f"refusing to {action}: the URL has no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise BackendError(f"refusing to {action}: invalid port") from None
        try:
            self._resolve_checked(parts.hostname, port)
        except _Refused as refused:
            raise BackendError(f"refusing to {action}: {refused}") from None

    def _resolve_checked(self, host: str, port: int) -> list[str]:
        """The addresses of `host`, all checked; raises `_Refused`, or `BackendError` if unresolvable."""
        try:
            addresses = _resolve(host, port, self.settings.connect_timeout)
        except TimeoutError:
            self._raise_if_offline(f"looking up {host} timed out")
            raise BackendError(f"looking up {host} timed out") from None
        except (OSError, UnicodeError) as error:
            self._raise_if_offline(f"cannot resolve {host}")
            raise BackendError(f"no such host: {host} ({_one_line(error)})") from None
        if not self.settings.allow_private:
            for address in addresses:
                problem = address_problem(address)
                if problem:
                    where = f"{host} is a" if address == host else f"{host} resolves to {address}, a"
                    raise _Refused(f"{where} {problem}; pass allow_private=True to fetch local and private addresses")
        return addresses

    # --- Offline detection --------------------------------------------------

    def _raise_if_offline(self, reason: str, host: str | None = None) -> None:
        """Raise `Offline` if the internet itself is unreachable; else return.

        A failure on a local or private host says nothing about the internet.
        """
        if host and _is_local_name(host):
            return
        if not self._reachable():
            raise Offline(OFFLINE_HINT.format(reason=reason))

    def _reachable(self) -> bool:
        """Whether the probe host resolves and accepts a connection; remembered for 30 s."""
        with self._probe_lock:
            now = time.monotonic()
            if self._probe and now - self._probe[0] < 30:
                return self._probe[1]
            timeout = min(self.settings.connect_timeout, 2.0)
            try:
                address = _resolve(self.settings.probe_host, 443, timeout)[0]
                socket.create_connection((address, 443), timeout=timeout).close()
                reachable = True
            except (OSError, TimeoutError, UnicodeError, IndexError):
                reachable = False
            self._probe = (now, reachable)
            return reachable

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "WebBackend":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class _Refused(BackendError):
    """An address the guard does not allow."""


def address_problem(address: str) -> str | None:
    """Why an IP address is not a public internet address (e.g. 'loopback address'), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone: fe80::1%eth0
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    checks = (
        ("is_loopback", "loopback address"),
        ("is_unspecified", "unspecified address"),
        ("is_link_local", "link-local address"),
        ("is_multicast", "multicast address"),
        ("is_reserved", "reserved address"),  # before is_private, which also covers 240.0.0.0/4
        ("is_private", "private address"),
    )
    for attribute, problem in checks:
        if getattr(ip, attribute):
            return problem
    if not ip.is_global:
        return "non-public address"  # e.g. 100.64.0.0/10, shared by carriers
    return None


def _is_local_name(host: str) -> bool:
    """An IP literal that is not public, or a name like `localhost`."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return address_problem(host) is not None
    except ValueError:
        return False


def _resolve(host: str, port: int, timeout: float) -> list[str]:
    """getaddrinfo bounded by `timeout` (it can hang for long with no network)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return [host]  # an address already
    except ValueError:
        pass
    infos = _with_deadline(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OSError(f"no addresses for {host}")
    return addresses


def _with_deadline(function: Callable[[], Any], seconds: float) -> Any:
    """Run `function` in a daemon thread; raise TimeoutError if it takes longer than `seconds`.

    The thread is left to finish on its own (DNS lookups and some engines cannot be cancelled).
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = function()
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            box["error"] = error

    thread = threading.Thread(target=run, daemon=True, name="webqa-deadline")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"took longer than {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _search_function(engine: SearchFunction | Any | None, settings: WebSettings) -> SearchFunction:
    """A `(query, k) -> hits` function from an injected engine, or ddgs."""
    if engine is None:
        from ddgs import DDGS

        ddgs = DDGS(timeout=max(1, ceil(settings.read_timeout)))

        def search(query: str, k: int) -> list[dict[str, Any]]:
            return ddgs.text(
                query,
                max_results=k,
                backend=settings.search_engine,
                region=settings.region,
                safesearch=settings.safesearch,
            )

        return search
    if hasattr(engine, "text"):
        return lambda query, k: engine.text(query, max_results=k)
    return engine


class _GuardedNetwork(httpcore.SyncBackend):
    """Opens TCP connections only to addresses the guard allows.

    It resolves the name itself and connects to the checked address, so the
    address checked is the address used.
    """

    def __init__(self, resolve_checked: Callable[[str, int], list[str]]) -> None:
        self._resolve_checked = resolve_checked

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in self._resolve_checked(host, port)[:2]:  # two tries: e.g. IPv6, then IPv4
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as failure:
                error = failure
        assert error is not None
        raise error


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with `_GuardedNetwork` underneath."""

    def __init__(self, resolve_checked: Callable[[str, int], list[str]]) -> None:
        super().__init__(trust_env=False)
        # httpx has no public way to pass httpcore a network backend, so the
        # pool is rebuilt with one (TLS still verifies the name, not the address).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_GuardedNetwork(resolve_checked),
        )
