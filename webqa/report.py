"""The evaluation report: each system's figures with 95% intervals, rows per source, paired tests.

`build_report(rows, questions)` turns the scored per-question rows of `webqa.evaluate` into the JSON
report; `format_report(report)` prints it as small tables:

- every system's figures, its accuracy with a 95% Wilson interval;
- accuracy per source (TriviaQA, NQ, SQuAD), each with its interval;
- the agent against each other system on the same questions: how many only the agent got right, how
  many only the other, and the exact two-sided sign test's p-value (McNemar's exact test);
- each other policy variant (an ablation such as `policy-n1`) paired the same way with the baselines.
"""

from __future__ import annotations

import statistics

from webqa.stats import paired, wilson

# How far a policy episode got towards a gold answer, each stage including the ones before.
STAGES = ("answer never shown", "answer in search results only", "answer on a page opened", "answer in view",
          "answer quoted and cited", "correct")
AGENT = "policy"  # the system the others are compared with, when it ran


def summarize(rows: list[dict]) -> dict:
    """Mean figures of one system over its questions, with 95% intervals for accuracy and support."""
    if not rows:
        return {}
    answered = [r for r in rows if r["answered"]] or rows
    actions = sum(r["actions"] for r in rows)
    correct, supported = sum(r["correct"] for r in rows), sum(r["supported"] for r in rows)
    return {
        "questions": len(rows),
        "accuracy": correct / len(rows),
        "accuracy_ci": list(wilson(correct, len(rows))),
        "supported": supported / len(rows),
        "supported_ci": list(wilson(supported, len(rows))),
        "citation_validity": statistics.mean(r["citations_valid"] for r in answered),
        "answered": statistics.mean(r["answered"] for r in rows),
        "mean_words": statistics.mean(r["words"] for r in answered),
        "mean_actions": actions / len(rows),
        "invalid_action_rate": sum(r["invalid_actions"] for r in rows) / max(1, actions),
        "median_seconds": statistics.median(r["seconds"] for r in rows),
    } | ({"stages": {stage: statistics.mean(r["stage"] == stage for r in rows) for stage in STAGES}}
         if all("stage" in r for r in rows) else {})


def agent_of(systems: list[str]) -> str | None:
    """The system the others are compared with: `policy` if it ran, else the first policy variant."""
    if AGENT in systems:
        return AGENT
    return next((s for s in systems if s.startswith("policy")), None)


def build_report(rows: dict[str, list[dict]], sources: dict[str, str]) -> dict:
    """`rows`: system -> its scored rows (each with `question`); `sources`: question -> its source
    (TriviaQA, NQ, SQuAD; questions without one count as "all" alone)."""
    systems = [s for s in rows if rows[s]]
    report = {"systems": {s: summarize(rows[s]) for s in rows}}
    names = sorted({sources.get(r["question"], "") for s in systems for r in rows[s]} - {""})
    report["sources"] = {name: {s: summarize([r for r in rows[s] if sources.get(r["question"]) == name])
                                for s in systems} for name in names}
    agent = agent_of(systems)
    if agent is not None:
        report["agent"] = agent
        report["paired"] = _pairs(rows, agent, [s for s in systems if s != agent])
        # Each other policy variant (an ablation such as `policy-n1`) against the systems that are not the agent.
        variants = [s for s in systems if s.startswith("policy") and s != agent]
        if variants:
            report["variants"] = {v: _pairs(rows, v, [s for s in systems if s not in (agent, v)]) for v in variants}
    return report


def _pairs(rows: dict[str, list[dict]], first: str, others: list[str]) -> dict:
    """`first` against each of `others` on their shared questions: who alone was right, and the sign test."""
    mine = {r["question"]: r["correct"] for r in rows[first]}
    tests = {}
    for other in others:
        test = paired(mine, {r["question"]: r["correct"] for r in rows[other]})
        tests[other] = {"questions": test["questions"], "agent_only": test["first_only"],
                        "other_only": test["second_only"], "p_value": test["p_value"]}
    return tests


def _interval(figures: dict, name: str = "accuracy") -> str:
    low, high = figures[f"{name}_ci"]
    return f"{figures[name]:.3f} [{low:.2f},{high:.2f}]"


def format_report(report: dict) -> str:
    """The report as small tables, one column per system."""
    systems = [s for s, figures in report["systems"].items() if figures]
    if not systems:
        return "no results"
    column = max([20] + [len(s) + 2 for s in systems])
    rows = [("questions", "{:.0f}"), ("accuracy", None), ("supported", None),
            ("citation_validity", "{:.3f}"), ("answered", "{:.3f}"), ("mean_words", "{:.1f}"),
            ("mean_actions", "{:.1f}"), ("invalid_action_rate", "{:.3f}"), ("median_seconds", "{:.2f}")]
    width = max([24] + [len(f"accuracy {name} (0000)") for name in report.get("sources", {})])
    lines = [" ".ljust(width) + "".join(f"{s:>{column}}" for s in systems)]
    for name, fmt in rows:
        cells = [_interval(report["systems"][s], name) if fmt is None and f"{name}_ci" in report["systems"][s]
                 else (fmt or "{:.3f}").format(report["systems"][s][name]) for s in systems]
        lines.append(name.ljust(width) + "".join(f"{cell:>{column}}" for cell in cells))
    for source, by_system in report.get("sources", {}).items():
        count = next((f["questions"] for f in by_system.values() if f), 0)
        cells = [_interval(by_system[s]) if by_system.get(s) else "-" for s in systems]
        lines.append(f"accuracy {source} ({count})".ljust(width) + "".join(f"{c:>{column}}" for c in cells))
    pairings = ({report["agent"]: report["paired"]} if report.get("paired") else {}) | report.get("variants", {})
    for agent, tests in pairings.items():
        lines += ["", f"{agent} against".ljust(width) + f"{'questions':>11}{agent + ' only':>18}{'other only':>12}"
                  f"{'sign test p':>13}"]
        for other, test in tests.items():
            lines.append(other.ljust(width) + f"{test['questions']:>11}{test['agent_only']:>18}"
                         f"{test['other_only']:>12}{test['p_value']:>13.3g}")
    staged = [s for s in systems if "stages" in report["systems"][s]]
    if staged:
        width = max(map(len, STAGES))
        lines += ["", "how far the episodes got".ljust(width) + "".join(f"{s:>{column}}" for s in staged)]
        lines += [stage.ljust(width) + "".join(f"{report['systems'][s]['stages'][stage]:>{column}.3f}"
                                               for s in staged) for stage in STAGES]
    return "\n".join(lines)


def markdown(report: dict) -> str:
    """The report's headline as Markdown tables (for the README): `python -m webqa.report REPORT.json`."""
    systems = [s for s, figures in report["systems"].items() if figures]
    lines = ["| | " + " | ".join(f"`{s}`" for s in systems) + " |", "| --- |" + " --- |" * len(systems)]

    def row(name: str, cells: list[str]) -> None:
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    figures = report["systems"]
    row("questions", [f"{figures[s]['questions']}" for s in systems])
    row("accuracy [95% CI]", [_interval(figures[s]) for s in systems])
    for source, by_system in report.get("sources", {}).items():
        count = next((f["questions"] for f in by_system.values() if f), 0)
        row(f"accuracy, {source} ({count})", [_interval(by_system[s]) if by_system.get(s) else "-" for s in systems])
    row("supported [95% CI]", [_interval(figures[s], "supported") for s in systems])
    row("mean answer words", [f"{figures[s]['mean_words']:.1f}" for s in systems])
    row("median seconds", [f"{figures[s]['median_seconds']:.2f}" for s in systems])
    pairings = ({report["agent"]: report["paired"]} if report.get("paired") else {}) | report.get("variants", {})
    for first, tests in pairings.items():
        lines += ["", f"| `{first}` against | questions | only `{first}` right | only the other right | sign test p |",
                  "| --- | --- | --- | --- | --- |"]
        for other, test in tests.items():
            lines.append(f"| `{other}` | {test['questions']} | {test['agent_only']} | {test['other_only']} | "
                         f"{test['p_value']:.3g} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    print(markdown(json.loads(open(sys.argv[1], encoding="utf-8").read())))
