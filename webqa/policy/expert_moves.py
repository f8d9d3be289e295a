"""Moving on a page as the expert does: the fewest finds and scrolls that bring lines into view.

    plan_moves(page, cursor, first, last, settings, needles)   # e.g. ["Find in page: Super Bowl"]

(The quote command, `quote_action`, is in `webqa.text`: the policy writes it too.)
"""

from __future__ import annotations

import bisect
import random
import re

from webqa.env.browser import BrowserSettings, matching_lines
from webqa.env.render import Page

MAX_PATH = 4  # the most moves (finds, scrolls) the expert plans to bring a passage into view
P_DETOUR = 0.25  # on a fresh page, scroll down once before finding (generation only)


def plan_moves(page: Page, cursor: int, first: int, last: int, settings: BrowserSettings, needles: list[str],
               rng: random.Random | None = None) -> list[str] | None:
    """The shortest moves that bring lines first..last into the window (empty: in view already); None if none.

    With `rng`, one of the shortest plans is drawn (finds and short scrolls preferred), and on a
    fresh page sometimes a scroll down comes first, as a reader skims before searching.
    """
    window = settings.window_lines
    if last - first >= window:
        return None
    goal = range(max(0, last - window + 1), first + 1)
    bottom = max(0, len(page.lines) - window)
    hits = {f"Find in page: {n}": h for n in needles if (h := matching_lines(page.plain_lines, n))}

    def moves(at: int) -> list[tuple[str, int]]:
        out = []
        for action, lines in hits.items():  # Find goes to the next match below the cursor, wrapping around
            below = bisect.bisect_right(lines, at)
            out.append((action, lines[below] if below < len(lines) else lines[0]))
        for n in (1, 2, 3):
            out += [(f"Scrolled down {n}", min(at + n * window, bottom)), (f"Scrolled up {n}", max(at - n * window, 0))]
        out.append(("Top", 0))
        return [(a, to) for a, to in out if to != at]

    # Breadth-first over cursor positions, keeping a few shortest ways to each.
    paths: dict[int, list[list[str]]] = {cursor: [[]]}
    frontier = [cursor]
    for _ in range(MAX_PATH + 1):
        options = [p for c in frontier if c in goal for p in paths[c]]
        if options:
            if rng is None or not options[0]:
                return options[0]
            if cursor == 0 and rng.random() < P_DETOUR:
                detour = [[a] for a, to in moves(cursor) if a == "Scrolled down 1" and to < goal.start]
                if detour:
                    return detour[0]
            weights = [3 if p[0].startswith("Find") else 2 if p[0] == "Scrolled down 1" else 1 for p in options]
            return rng.choices(options, weights=weights)[0]
        reached: dict[int, list[list[str]]] = {}
        for at in frontier:
            for action, to in moves(at):
                if to not in paths:
                    reached.setdefault(to, []).extend(p + [action] for p in paths[at][:4])
        paths.update(reached)
        frontier = list(reached)
    return None


def link_lines(page: Page) -> dict[int, int]:
    """The line each numbered link appears on."""
    found: dict[int, int] = {}
    for number, line in enumerate(page.lines):
        for match in re.finditer(r"【(\d+)†", line):
            found.setdefault(int(match.group(1)), number)
    return found

