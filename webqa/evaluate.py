"""The evaluation harness: the agent, its ablations and two baselines, on the same questions, in one run.

    webqa qa export --split final --out final.jsonl
    webqa eval --questions final.jsonl --out results/final.json [--n 4] [--limit K] [--systems ...]

Each line of the questions file has `question` and `answers` (gold aliases), and `dataset` (its
source: triviaqa, nq, squad) for the rows per source. Every (system, question) result is appended to
`<out>.jsonl` as soon as it is known, so a killed run resumes where it stopped; the report
(`webqa.report`: 95% intervals, rows per source, paired sign tests of the agent against each other
system) goes to `<out>`.

Systems (the default runs these five, the cheap ones first):
- `policy`: the behavior-cloned browsing agent as `webqa.answer` runs it (best of `--n`, default
  `DEFAULT_N`, with the floor and the answerer); the report also says how far each episode got towards
  the answer (`STAGES`);
- `script`: the same pipeline with a fixed script in place of the language model's navigation
  (`webqa.policy.script`), answering with the extractor; `script-read` with the floor and the answerer;
- `bm25-sentence`: the sentence of the top search result that overlaps the question most;
- `rag`: the base model, not fine-tuned, reading the top search result and answering in one sentence.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from webqa.agent import DEFAULT_N, answer
from webqa.env.backend import Backend
from webqa.env.browser import Browser, BrowserSettings
from webqa.env.local import DEFAULT_RANKING, STOPWORDS, LocalCorpus, recorded_ranking
from webqa.loading import SHIPPED_POLICY
from webqa.policy.config import SamplingConfig
from webqa.policy.model import load_model
from webqa.policy.prompts import POLICY_BROWSER
from webqa.policy.reader import load_reader
from webqa.policy.reading import load_answerer
from webqa.policy.sampler import Sampler
from webqa.policy.script import script_episode
from webqa.qa import read_questions
from webqa.records import append_record, read_records
from webqa.report import STAGES, build_report
from webqa.scoring import is_supported, normalize, score_record
from webqa.text import sentence_spans
from webqa.types import Episode


# The default systems; also the policy without one of its parts (see run_policy and SamplingConfig):
# "policy-unconstrained" (no grammar), "policy-written-quotes" (no quote reader), "policy-model-finds"
# (Find looks for what the model wrote), "policy-model-answers" (the model writes the answer),
# "policy-model-clicks" (clicks open the result the model wrote), "policy-no-last-look", and
# "policy-sentence-quotes" (the model's likelihood chooses quotes), "policy-extract" (the extractor
# answers, without the floor: the agent before the answer step); "policy-n1", the greedy episode alone
# (the same as "policy" at the default n=1). "script" answers with the extractor, "script-read" with the
# floor and the answerer (`--answerer DIR`; see webqa.policy.reading).
SYSTEMS = ("bm25-sentence", "script", "rag", "script-read", "policy")  # in the order they run: cheap first
RAG_CONTEXT_WORDS = 220


def sentences(text: str) -> list[str]:
    """Split text into sentences (each line, a paragraph, apart), as the policy's reader splits them."""
    return [s for line in text.split("\n") for a, b in sentence_spans(line) if (s := line[a:b].strip())]


def _content_words(text: str) -> set[str]:
    """The normalized words of `text` that are not stopwords."""
    return {w for w in normalize(text).split() if w not in STOPWORDS}


def best_sentence(question: str, text: str) -> str:
    """The sentence sharing the most content words with the question (the first one on ties)."""
    return most_overlapping(question, sentences(text) or [text])


def most_overlapping(question: str, candidates: list[str]) -> str:
    """The candidate sharing the most content words with the question (the first one on ties)."""
    words = _content_words(question)
    return max(candidates, key=lambda s: len(words & _content_words(s)))


# --- the systems: each returns a record for one question ---------------------------


def _record(answer: str, quotes: list[str], actions: list[str], seconds: float,
            episode: Episode | None = None) -> dict:
    """One system's answer to one question; with its `episode`, who chose each action and wrote the answer."""
    provenance = {} if episode is None else {"deciders": [step.by for step in episode.steps],
                                             "answered_by": episode.answered_by}
    return {"answer": answer, "quotes": quotes, "actions": actions, "seconds": seconds} | provenance


def run_bm25_sentence(corpus: LocalCorpus) -> Callable[[str], dict]:
    def run(question: str) -> dict:
        start = time.perf_counter()
        results = corpus.search(question, k=1)
        if not results:
            return _record("", [], [f"Search {question}"], time.perf_counter() - start)
        sentence = best_sentence(question, corpus.plain_text(results[0].title))
        return _record(f"{sentence} [1]", [sentence], [f"Search {question}"], time.perf_counter() - start)

    return run


def run_rag(corpus: LocalCorpus, base: str | None = None) -> Callable[[str], dict]:

    model, tokenizer = load_model(base)
    sampler = Sampler(model, tokenizer)

    def run(question: str) -> dict:
        start = time.perf_counter()
        results = corpus.search(question, k=1)
        if not results:
            return _record("", [], [f"Search {question}"], time.perf_counter() - start)
        # The passage around the best sentence, cut to fit a small model's attention.
        text = corpus.plain_text(results[0].title)
        focus = best_sentence(question, text)
        words = text.split()
        at = max(0, len(text[: text.find(focus)].split()) - RAG_CONTEXT_WORDS // 2)
        passage = " ".join(words[at : at + RAG_CONTEXT_WORDS])
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": (
            f"Read the text and answer the question in one short sentence.\n\nText: {passage}\n\n"
            f"Question: {question}")}], tokenize=False, add_generation_prompt=True)
        answer = sampler.sample([prompt], max_new_tokens=48, temperature=0)[0]
        return _record(f"{answer} [1]", [passage], [f"Search {question}"], time.perf_counter() - start)

    return run


def run_script(corpus: LocalCorpus, policy: str | None = None, answerer: str | None = None,
               reading: bool = True) -> Callable[[str], dict]:
    """The `script` ablation: the agent's browser, reader and answer step, a fixed script for the model's
    actions (`reading=False`: the answer extracted, no model at all)."""

    reader = load_reader(policy or SHIPPED_POLICY)
    if reader is None:
        raise ValueError(f"the script needs a policy folder with a reader (reader.json): {policy or SHIPPED_POLICY}")
    browser = Browser(corpus, POLICY_BROWSER)
    model = load_answerer(answerer) if reading else None

    def run(question: str) -> dict:
        start = time.perf_counter()
        episode = script_episode(reader, browser, question, model)
        return _record(episode.answer or "", [q.text for q in episode.quotes], episode.actions,
                       time.perf_counter() - start, episode)

    return run


def run_policy(n: int, policy: str | None = None, reward: str | None = None, constrained: bool = True,
               answerer: str | None = None, backend: Backend | str = "local",
               **sampling: object) -> Callable[[str], dict]:
    """The agent; `constrained=False` lets the model write lines no grammar checks (an ablation); the
    other `sampling` settings (who chooses quotes, what `Find` looks for...) as in `SamplingConfig`."""

    config = SamplingConfig.best_of(n, constrained=constrained, **sampling)

    def run(question: str) -> dict:
        result = answer(question, n=n, backend=backend, policy=policy, reward=reward, sampling=config,
                        answerer=answerer)
        quotes = [ref.quote for ref in result.references]
        return _record(result.text if result.found else "", quotes, result.trajectory.actions, result.seconds,
                       result.trajectory)

    return run


# --- scoring ----------------------------------------------------------------------


def furthest_stage(backend: Backend, settings: BrowserSettings, row: dict, answers: list[str]) -> str:
    """How far an episode of `row` (a scored policy result) got: its actions replayed in a browser."""
    if row["correct"]:
        return STAGES[5]
    if row["supported"]:
        return STAGES[4]
    browser = Browser(backend, BrowserSettings(**vars(settings)))
    browser.reset(row["question"])
    reached = 0
    for action in row["trajectory"]:
        browser.step(action)
        page = browser.page
        if page is None or not is_supported([" ".join(page.plain_lines)], answers):
            continue
        if page.is_search_results:
            reached = max(reached, 1)
            continue
        window = page.plain_lines[browser.cursor : browser.cursor + settings.window_lines]
        reached = max(reached, 3 if is_supported([" ".join(window)], answers) else 2)
    return STAGES[reached]


def log_path(report: Path) -> Path:
    """Where `evaluate` logs one row per system and question, beside the report: `report.json` -> `.jsonl`."""
    return report.with_suffix(".jsonl") if report.suffix == ".json" else report.with_name(report.name + ".jsonl")


def read_log(log: Path, ranking: str | None = None) -> dict[tuple[str, str], dict]:
    """The rows of an evaluation log by (system, question), only those run under `ranking` when given (a log
    may hold runs under both); a line a killed run cut short is skipped."""
    rows = read_records(log, dict, "evaluation row") if log.exists() else []
    return {(row["system"], row["question"]): row for row in rows if ranking in (None, recorded_ranking(row))}


def evaluate(questions_path: Path | str, out: Path | str, n: int = DEFAULT_N, limit: int | None = None,
             systems: tuple[str, ...] = SYSTEMS, policy: str | None = None, reward: str | None = None,
             answerer: str | None = None, ranking: str = DEFAULT_RANKING) -> dict:
    """Run every system on every question (resuming from `<out>.jsonl`), then write and return the summary.

    Every system searches the encyclopedia ranked as `ranking` says (`LocalCorpus`)."""
    out = Path(out)
    log = log_path(out)
    questions = read_questions(questions_path, limit)
    done = read_log(log, ranking)  # rows logged under another ranking are run again
    corpus = LocalCorpus(ranking=ranking)

    def stage_of(row: dict, answers: list[str]) -> dict:
        if not row["system"].startswith("policy"):
            return {}
        return {"stage": furthest_stage(corpus, POLICY_BROWSER, row, answers)}

    def agent(agents: int, **settings):  # every variant writes its answers with the same --answerer
        return lambda: run_policy(agents, policy, reward, answerer=answerer, backend=corpus, **settings)

    makers = {"policy": agent(n),
              "policy-n1": agent(1),
              "script": lambda: run_script(corpus, policy, reading=False),
              "script-read": lambda: run_script(corpus, policy, answerer),
              "policy-extract": agent(n, answers="extract", floor=False),
              "policy-unconstrained": agent(n, constrained=False),
              "policy-written-quotes": agent(n, quotes="written"),
              "policy-sentence-quotes": agent(n, quotes="likelihood"),
              "policy-model-finds": agent(n, specific_finds=False),
              "policy-model-answers": agent(n, answers="model"),
              "policy-model-clicks": agent(n, clicks="model"),
              "policy-no-last-look": agent(n, last_look=None),
              "bm25-sentence": lambda: run_bm25_sentence(corpus),
              "rag": lambda: run_rag(corpus)}
    unknown = [system for system in systems if system not in makers]
    if unknown:
        raise ValueError(f"unknown system {', '.join(unknown)}: choose from {', '.join(makers)}")
    for system in systems:
        todo = [q for q in questions if (system, q["question"]) not in done]
        if not todo:
            continue
        run = makers[system]()
        for item in tqdm(todo, desc=f"eval {system}", unit="q"):
            record = run(item["question"])
            # The figures' "actions" is a count; the actions themselves stay under "trajectory".
            row = {"system": system, "question": item["question"], "ranking": ranking, **record,
                   "trajectory": record["actions"], **score_record(record, item["answers"])}
            row |= stage_of(row, item["answers"])
            append_record(log, row)
            done[(system, item["question"])] = row
    wanted = {q["question"]: q["answers"] for q in questions}
    for (system, question), row in done.items():  # results logged before stages were kept
        if question in wanted and "stage" not in row:
            row |= stage_of(row, wanted[question])
    rows = {s: [r for (system, q), r in done.items() if system == s and q in wanted] for s in systems}
    sources = {q["question"]: q["dataset"] for q in questions if q.get("dataset")}
    report = {"questions_file": str(questions_path), "n": n, "limit": limit, "ranking": ranking}
    report |= build_report(rows, sources)
    out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report
