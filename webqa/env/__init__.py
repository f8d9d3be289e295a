"""The text browser and its backends.

    from webqa.env import Browser, LocalCorpus, WebBackend
    browser = Browser(LocalCorpus.default())
"""

from webqa.env.answering import CitationCheck, answer_prompt, check_citations
from webqa.env.backend import Backend, BackendError, Offline, PageNotFound
from webqa.env.browser import Browser, BrowserSettings, replay
from webqa.env.commands import InvalidCommand, parse
from webqa.env.local import LocalCorpus
from webqa.env.render import Page, render

__all__ = [
    "Backend", "BackendError", "Browser", "BrowserSettings", "CitationCheck", "InvalidCommand", "LocalCorpus",
    "Offline", "Page", "PageNotFound", "WebBackend", "answer_prompt", "check_citations", "parse", "render", "replay",
]


def __getattr__(name: str):
    # The live web pulls in httpx and trafilatura; load them only when asked for.
    if name == "WebBackend":
        from webqa.env.web import WebBackend

        return WebBackend
    raise AttributeError(f"module 'webqa.env' has no attribute {name!r}")
