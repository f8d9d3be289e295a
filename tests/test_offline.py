"""With no network, `webqa.answer(backend="web")`, `webqa ask --web` and the TUI say so at once."""

import asyncio
import time

import pytest

import webqa.agent
from tests.test_tui_ask import ScriptedSampler, ask
from tests.tui_helpers import QUESTION, settle, text_of
from webqa.cli import main
from webqa.env.backend import Offline
from webqa.env.web import OFFLINE_HINT, WebBackend


class NoNetworkEngine:
    """A search engine on a machine without network: every call fails the way ddgs does."""

    calls = 0

    def text(self, query, max_results=10):
        NoNetworkEngine.calls += 1
        raise ConnectionError("[Errno -3] Temporary failure in name resolution")


@pytest.fixture
def offline_web(monkeypatch):
    monkeypatch.setattr(WebBackend, "_reachable", lambda self: False)

    def no_model(policy=None):
        raise AssertionError("the model must not be loaded when the web is unreachable")

    monkeypatch.setattr(webqa.agent, "load_sampler", no_model)
    return WebBackend(search_engine=NoNetworkEngine(), cache=False)


def test_answer_stops_before_loading_the_model_and_carries_the_error(offline_web):
    start = time.perf_counter()
    result = webqa.agent.answer(QUESTION, backend=offline_web)
    assert time.perf_counter() - start < 5
    assert not result.found and result.references == [] and result.candidates == []
    assert result.error == result.text and "web is unreachable" in result.error
    assert "offline encyclopedia" in result.error and not result.text.startswith("No answer found")


def test_answer_stops_at_the_first_step_that_finds_the_web_unreachable(corpus, monkeypatch):
    """The backend was reachable when asked, then the connection went: the rollout stops at that step."""

    class DroppingBackend:
        name = "web"
        searches = 0

        def check(self):
            return None

        def search(self, query, k=10):
            DroppingBackend.searches += 1
            raise Offline(OFFLINE_HINT.format(reason="search with duckduckgo failed"))

        def fetch(self, url):
            raise Offline(OFFLINE_HINT.format(reason="cannot connect"))

    monkeypatch.setattr(webqa.agent, "load_sampler",
                        lambda policy=None: ScriptedSampler([f"Search {QUESTION}"] * 4 + ["End: Answer"] * 4))
    result = webqa.agent.answer(QUESTION, n=1, backend=DroppingBackend())
    assert DroppingBackend.searches == 1  # not five actions of failed searches
    assert not result.found and "search with duckduckgo failed" in result.error


def test_ask_web_offline_is_one_line_within_seconds(offline_web, monkeypatch, capsys):
    monkeypatch.setattr(webqa.agent, "make_backend", lambda backend: offline_web)
    start = time.perf_counter()
    assert main(["ask", "--web", QUESTION]) == 1
    assert time.perf_counter() - start < 5
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert error.startswith("webqa: the web is unreachable from here") and "\n" not in error
    assert "No answer found" not in captured.out + captured.err


def test_the_tui_says_the_web_is_unreachable(offline_web, monkeypatch):
    from webqa.tui import TuiOptions, WebQAApp

    monkeypatch.setattr(webqa.agent, "make_backend", lambda backend: offline_web)
    app = WebQAApp(TuiOptions(mode="ask", n=1, backend="web"))

    async def scenario():
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await ask(pilot, QUESTION)
            status = text_of(app.screen.query_one("#status"))
            assert status.startswith("the web is unreachable from here"), status
            assert app.is_running and not app.screen.busy

    asyncio.run(scenario())
