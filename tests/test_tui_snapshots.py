"""Snapshots of each mode's main screen at 80x24 (pytest-textual-snapshot; update with --snapshot-update).

Everything on them is fixed: scripted answers over the real corpus, fixed file names, no clock.
"""

import json

from tests.test_tui_compare import write_pool
from tests.tui_helpers import QUESTION, QUOTE, scripted_answer, settle, type_text
from webqa.tui import TuiOptions, WebQAApp

SIZE = (80, 24)


def test_ask_answer_with_candidates(snap_compare, corpus):
    app = WebQAApp(TuiOptions(mode="ask", n=2),
                   answer_fn=scripted_answer(corpus, answers=("The Danube [1].", "It is the Danube [1]."),
                                             scores=[0.25, 1.5]))

    async def run_before(pilot):
        await pilot.click("#question")
        await type_text(pilot, QUESTION)
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_ask_live_page(snap_compare, corpus):
    app = WebQAApp(TuiOptions(mode="ask", n=4), answer_fn=scripted_answer(corpus))  # four episodes live

    async def run_before(pilot):
        await pilot.click("#question")
        await type_text(pilot, QUESTION)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("f3")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def record_app(corpus, tmp_path):
    (tmp_path / "questions.jsonl").write_text(json.dumps({"question": QUESTION}) + "\n")
    return WebQAApp(TuiOptions(mode="record", backend=corpus, demos=tmp_path / "demos.jsonl",
                               questions=tmp_path / "questions.jsonl"))


async def search_open_and_quote(pilot) -> None:
    """In record mode: search, open the first result, quote a sentence of it."""
    await settle(pilot)
    for text, key in [("Vienna river", "enter"), ("0", "enter"), (QUOTE, "f3")]:
        await type_text(pilot, text)
        await pilot.press(key)
        await settle(pilot)


def test_record_browsing(snap_compare, corpus, tmp_path):
    async def run_before(pilot):
        await search_open_and_quote(pilot)

    assert snap_compare(record_app(corpus, tmp_path), terminal_size=SIZE, run_before=run_before)


def test_record_answer_editor(snap_compare, corpus, tmp_path):
    async def run_before(pilot):
        await search_open_and_quote(pilot)
        await pilot.press("f6", "a")
        await settle(pilot)
        await type_text(pilot, "The Danube ")
        await pilot.press("f1")

    assert snap_compare(record_app(corpus, tmp_path), terminal_size=SIZE, run_before=run_before)


def test_compare_pair(snap_compare, tmp_path):
    app = WebQAApp(TuiOptions(mode="compare", pairs=write_pool(tmp_path / "pool.jsonl"),
                              comparisons=tmp_path / "comparisons.jsonl"))
    assert snap_compare(app, terminal_size=SIZE)
