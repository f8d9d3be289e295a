"""Compare mode: pairs from sampled candidates, judged by key, each judgement appended as a comparison."""

import asyncio
import json

from tests.tui_helpers import QUESTION, QUOTE, scripted_answer, settle, text_of
from webqa.comparisons import append_comparison, read_comparisons
from webqa.tui import TuiOptions, WebQAApp
from webqa.tui.pairs import load_pairs
from webqa.types import ComparedAnswer, Comparison, Quote

VIENNA = "https://en.wikipedia.org/wiki/Vienna"


def candidate(text: str, score: float | None = None, quote: str = QUOTE) -> dict:
    """A candidate as a pool line of `webqa sample` holds it."""
    return {"text": text, "quotes": [{"title": "Vienna", "url": VIENNA, "text": quote}], "score": score,
            "end": "Answer", "actions": [], "correct": None, "supported": None}


def write_pool(path):
    lines = [
        {"question": QUESTION, "id": "q1", "answers": ["Danube"],
         "candidates": [candidate("The Danube [1].", 1.5), candidate("The Rhine [1].", -0.5),
                        candidate("The Danube [1].", 1.5),  # the same answer twice: judged once
                        {"text": "", "quotes": [], "score": None}]},  # no answer: nothing to judge
        {"question": "What is Vienna?", "candidates": [candidate("A city [1]."), candidate("A capital [1].")]},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_pairs_come_from_pools_ask_json_and_comparisons(corpus, tmp_path):
    pool = load_pairs(write_pool(tmp_path / "pool.jsonl"))
    assert [(p.question, sorted([p.a.text, p.b.text])) for p in pool] == [
        (QUESTION, ["The Danube [1].", "The Rhine [1]."]), ("What is Vienna?", ["A capital [1].", "A city [1]."])]
    first = pool[0]
    assert first.metadata["question_id"] == "q1"
    assert sorted(first.metadata["candidates"]) == [0, 1]
    # The scores follow their answers when the coin puts the second candidate on the left.
    assert first.metadata["scores"][0] == (1.5 if first.a.text == "The Danube [1]." else -0.5)

    # `webqa ask --n 3 --json`, twice into one file: pretty-printed documents back to back.
    answer_fn = scripted_answer(corpus, answers=("The Danube [1].", "Danube [1].", "The Danube [1]."))
    documents = [answer_fn(QUESTION, n=3).to_dict() for _ in range(2)]
    (tmp_path / "asked.json").write_text("\n".join(json.dumps(d, indent=1) for d in documents))
    asked = load_pairs(tmp_path / "asked.json")
    assert len(asked) == 2 and all({p.a.text, p.b.text} == {"The Danube [1].", "Danube [1]."} for p in asked)
    assert asked[0].a.quotes[0].text == QUOTE

    comparison = Comparison(QUESTION, ComparedAnswer("The Danube [1].", [Quote("Vienna", VIENNA, QUOTE)]),
                            ComparedAnswer("The Rhine [1].", [Quote("Vienna", VIENNA, QUOTE)]), 1.0, "synthetic")
    append_comparison(tmp_path / "synthetic.jsonl", comparison)
    (again,) = load_pairs(tmp_path / "synthetic.jsonl")
    assert {again.a.text, again.b.text} == {"The Danube [1].", "The Rhine [1]."}
    assert again.metadata["was"] == {"producer": "synthetic", "preference": 1.0}


def test_judging_appends_comparisons_at_once_and_a_restart_skips_judged_pairs(tmp_path):
    pool = write_pool(tmp_path / "pool.jsonl")
    out = tmp_path / "comparisons.jsonl"
    options = TuiOptions(mode="compare", pairs=pool, comparisons=out, labeller="tester")
    app = WebQAApp(options)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            screen = app.screen
            pair = screen.pair
            assert text_of(screen.query_one("#question")) == f"Pair 1 of 2: {QUESTION}"
            assert pair.a.text in text_of(screen.query_one("#answer-a"))
            assert pair.b.text in text_of(screen.query_one("#answer-b"))
            assert QUOTE in text_of(screen.query_one("#answer-a")) and VIENNA in text_of(screen.query_one("#answer-b"))
            await pilot.press("2")  # the right answer is better
            (saved,) = read_comparisons(out)  # on disk before the next key
            assert (saved.a.text, saved.b.text, saved.preference) == (pair.a.text, pair.b.text, 0.0)
            assert saved.producer == "human" and saved.labeller == "tester" and saved.created
            assert saved.metadata["question_id"] == "q1"
            assert text_of(screen.query_one("#question")) == "Pair 2 of 2: What is Vienna?"
            await pilot.press("s")  # skipped: nothing written
            assert len(read_comparisons(out)) == 1
            assert "No pairs left" in text_of(screen.query_one("#question"))

    asyncio.run(scenario())

    app = WebQAApp(options)  # the judged pair is not shown again; the skipped one is

    async def again():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            screen = app.screen
            assert screen.done_before == 1
            assert text_of(screen.query_one("#question")) == "Pair 2 of 2: What is Vienna?"
            await pilot.press("t")
            await settle(pilot)

    asyncio.run(again())
    comparisons = read_comparisons(out)
    assert [c.preference for c in comparisons] == [0.0, 0.5]
    assert comparisons[1].question == "What is Vienna?"
    # The file is the reward model's format: every line reads back as a Comparison, unchanged.
    lines = out.read_text().splitlines()
    assert [Comparison.from_dict(json.loads(line)).to_dict() for line in lines] == [json.loads(x) for x in lines]


def test_left_key_prefers_the_left_answer(tmp_path):
    app = WebQAApp(TuiOptions(mode="compare", pairs=write_pool(tmp_path / "pool.jsonl"),
                              comparisons=tmp_path / "c.jsonl"))

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            left = app.screen.pair.a.text
            await pilot.press("left")
            await settle(pilot)
            return left

    left = asyncio.run(scenario())
    (saved,) = read_comparisons(tmp_path / "c.jsonl")
    assert saved.preference == 1.0 and saved.a.text == left
