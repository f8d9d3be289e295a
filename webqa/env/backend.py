"""The interface every browsing backend implements (local encyclopedia, live web)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from webqa.types import Document, SearchResult


class BackendError(Exception):
    """A search or fetch failed; the message is meant to be shown as is."""


class PageNotFound(BackendError):
    """The requested page does not exist in this backend."""


class Offline(BackendError):
    """The live web cannot be reached."""


@runtime_checkable
class Backend(Protocol):
    """Search and fetch. Implementations raise `BackendError` with a clear message.

    A backend may also define `search_key(query)`: a value that two queries share when they are bound
    to return the same results (for instance, up to case). Episodes sampled in lockstep then word such
    searches alike and stay in one state (`webqa.policy.rules.shared_searches`).
    """

    name: str

    def search(self, query: str, k: int = 10) -> list[SearchResult]:
        """Return up to k results, best first."""
        ...

    def fetch(self, url: str) -> Document:
        """Return the document at `url` (a backend may also accept a page title)."""
        ...
