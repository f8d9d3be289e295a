#!/usr/bin/env python
"""Make the README's screenshots of the terminal UI: docs/tui-ask.png, docs/tui-record.png, docs/tui-compare.png.

Usage: .venv/bin/python scripts/screenshots.py [--out docs] [--size 100x30]

Each mode runs headless over the embedded encyclopedia with a fixed script (the
ask mode's agent is `webqa.tui.scripted`, so no model is loaded), Textual saves
an SVG, and `rsvg-convert` (Debian: librsvg2-bin; the 【】 link brackets need a
CJK font such as fonts-noto-cjk) turns it into a PNG. The same script gives
the same pictures.
"""

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webqa.env import LocalCorpus
from webqa.tui import TuiOptions, WebQAApp
from webqa.tui.scripted import scripted_agent

QUESTION = "Which river flows through Vienna?"
QUOTE = "the most populous of the cities on the river Danube"
ACTIONS = ["Search Vienna river", "Clicked on link 0", f"Quote: {QUOTE}", "End: Answer"]
ANSWERS = ["The Danube [1].", "Vienna lies on the Danube, the river it is the most populous city of [1]."]


async def settle(pilot) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def type_text(pilot, text: str) -> None:
    await pilot.press(*["space" if char == " " else char for char in text])


async def shoot(app: WebQAApp, size: tuple[int, int], script) -> str:
    """Run `script(pilot)` on the app, then return its screen as SVG."""
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await script(pilot)
        await settle(pilot)
        return app.export_screenshot(title=f"webqa {app.options.mode}")


async def ask(pilot) -> None:
    await pilot.click("#question")
    await type_text(pilot, QUESTION)
    await pilot.press("enter")


async def record(pilot) -> None:
    for text, key in [("Vienna river", "enter"), ("0", "enter"), (QUOTE, "f3")]:
        await type_text(pilot, text)
        await pilot.press(key)
        await settle(pilot)


async def nothing(pilot) -> None:
    pass


def to_png(svg: str, path: Path) -> None:
    # Textual writes spaces as no-break spaces, which librsvg drops at the start of a text run
    # unless whitespace is preserved: without this, indented lines lose their indent.
    svg = svg.replace("<svg ", '<svg xml:space="preserve" ', 1)
    subprocess.run(["rsvg-convert", "--format", "png", "-o", str(path)], input=svg.encode(), check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs"))
    parser.add_argument("--size", default="100x30", help="terminal columns x rows")
    args = parser.parse_args(argv)
    if shutil.which("rsvg-convert") is None:
        print("rsvg-convert is missing: apt-get install librsvg2-bin fonts-noto-cjk", file=sys.stderr)
        return 1
    size = tuple(int(x) for x in args.size.split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = LocalCorpus.default()
    agent = scripted_agent(corpus, ACTIONS, ANSWERS, scores=[0.4, 1.3])
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / "questions.jsonl").write_text(json.dumps({"question": QUESTION}) + "\n")
        (scratch / "pool.json").write_text(json.dumps(agent(QUESTION, n=2).to_dict()))
        apps = {
            "ask": (WebQAApp(TuiOptions(mode="ask", n=2), answer_fn=agent), ask),
            "record": (WebQAApp(TuiOptions(mode="record", backend=corpus, demos=scratch / "demos.jsonl",
                                           questions=scratch / "questions.jsonl")), record),
            "compare": (WebQAApp(TuiOptions(mode="compare", pairs=scratch / "pool.json",
                                            comparisons=scratch / "comparisons.jsonl")), nothing),
        }
        for mode, (app, script) in apps.items():
            svg = asyncio.run(shoot(app, size, script))
            to_png(svg, out / f"tui-{mode}.png")
            print(out / f"tui-{mode}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
