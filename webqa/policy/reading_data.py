"""Examples that teach the answer step to read, and a probe that measures it (no browsing needed).

An example is what the answer step sees at the end of an episode, built from one search:

- passage [1] is the question's top result's passage (the floor every answer reads);
- the gold passage is the first result, in rank order, whose passage holds a gold answer, else whose
  page does: then the READ_WORDS words around the sentence that holds the answer and shares most
  words with the question (as a quote with its context). It is [1] when the top result's own passage
  holds it, else it takes a random place after [1], as a quote the agent took would;
- one to three more results' passages without a gold answer are distractors.

The target is the gold answer as the passage writes it, and the passage's number: "the Danube [2]".

    python -m webqa.policy.reading_data --split train --n 6000 --out runs/reading/train.jsonl.gz
    python -m webqa.policy.reading_data --split dev --n 300 --out runs/reading/dev.jsonl.gz
    python -m webqa.policy.reading_data --probe runs/reading/dev.jsonl.gz [--answerer DIR] [--limit 200]

The probe prints the share of examples answered correctly (a gold answer in the answer, as `webqa
eval` scores) and citing the gold passage, with 95% intervals.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from webqa.env.answering import CITATION, passage_around
from webqa.env.local import LocalCorpus
from webqa.policy.expert_text import alias_span
from webqa.records import append_record, read_records
from webqa.scoring import is_correct
from webqa.stats import wilson
from webqa.text import sentence_spans
from webqa.types import Quote

RESULTS = 8  # search results the passages come from
_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if len(w) > 3}


def gold_passage(corpus: LocalCorpus, question: str, answers: list[str], results) -> tuple[int, str, bool] | None:
    """(rank, passage, whether it is the result's own passage) of the first result whose passage, else
    whose page, holds a gold answer."""
    for rank, result in enumerate(results):
        if alias_span(result.passage, answers, question):
            return rank, result.passage, True
        text = corpus.plain_text(result.title)
        spans = [(a, b) for a, b in sentence_spans(text) if alias_span(text[a:b], answers, question)]
        if spans:
            asked = _words(question)
            a, b = max(spans, key=lambda span: len(asked & _words(text[span[0]:span[1]])))
            return rank, passage_around(text, text[a:b]), False
    return None


def build_example(corpus: LocalCorpus, record: dict, rng: random.Random) -> dict | None:
    """One example for a question record (`question`, `answers`), or None when no result holds an answer."""
    question, answers = record["question"], record["answers"]
    results = corpus.search(question, k=RESULTS)
    found = gold_passage(corpus, question, answers, results) if results else None
    if found is None:
        return None
    rank, gold, own = found
    clean = [r for r in results if r.passage and not alias_span(r.passage, answers)]
    if rank == 0 and own:  # the floor holds the answer
        chosen = rng.sample(clean, min(rng.randint(1, 3), len(clean)))
        passages = [(results[0].title, gold)] + [(r.title, r.passage) for r in chosen]
    else:  # the floor holds none: it stays [1], the gold passage (a quote) goes somewhere after it
        top = [(r.title, r.passage) for r in clean[:1] if r is results[0]]
        pool = [r for r in clean if r is not results[0]]
        rest = [(r.title, r.passage) for r in rng.sample(pool, min(rng.randint(0, 2), len(pool)))]
        rest.insert(rng.randint(0, len(rest)), (results[rank].title, gold))
        passages = top + rest
    number = passages.index((results[rank].title, gold)) + 1
    start, end = alias_span(gold, answers, question)
    return {"question": question, "answers": answers, "dataset": record.get("dataset", ""),
            "passages": [list(p) for p in passages], "target": f"{gold[start:end]} [{number}]", "gold": number}


def examples(corpus: LocalCorpus, records: list[dict], n: int, seed: int = 0) -> Iterator[dict]:
    """Up to n examples, one per question, in the records' order (each question's draws seeded by it)."""
    made = 0
    for record in records:
        if made >= n:
            return
        example = build_example(corpus, record, random.Random(f"{seed}:{record['question']}"))
        if example is not None:
            made += 1
            yield example


def quotes_of(example: dict) -> list[Quote]:
    """An example's passages as the quotes the answer step reads."""
    return [Quote(title=title, url="", text=text, context=text) for title, text in example["passages"]]


def read_examples(path: str | Path) -> list[dict]:
    return read_records(path, dict, "reading example")


def probe(path: str | Path, answerer: str | None = None, limit: int | None = None) -> dict:
    """The answerer's answers to the examples: share correct, share citing the gold passage."""
    # The probe alone needs the model (torch); making examples only searches.
    from webqa.policy.constraints import AnswerGrammar
    from webqa.policy.reading import MAX_ANSWER_TOKENS, MAX_ANSWER_WORDS, load_answerer, reading_prompt

    items = read_examples(path)[:limit]
    sampler = load_answerer(answerer)
    correct = cited = 0
    start = time.perf_counter()
    rows = []
    for item in tqdm(items, desc="reading probe", unit="example"):
        quotes = quotes_of(item)
        prompt = reading_prompt(sampler.tokenizer, item["question"], quotes)
        answer = sampler.sample([prompt], MAX_ANSWER_TOKENS, temperature=0.0,
                                grammars=[AnswerGrammar(len(quotes), MAX_ANSWER_WORDS)])[0]
        right = is_correct(answer, item["answers"])
        cites = str(item["gold"]) in CITATION.findall(answer)
        correct, cited = correct + right, cited + cites
        rows.append({"question": item["question"], "answer": answer, "correct": right, "cites_gold": cites})
    n = len(items)
    return {"examples": n, "correct": correct / n, "correct_ci": list(wilson(correct, n)),
            "cites_gold": cited / n, "cites_gold_ci": list(wilson(cited, n)),
            "mean_words": sum(len(r["answer"].split()) for r in rows) / n,
            "seconds_per_example": (time.perf_counter() - start) / n, "answerer": answerer or "shipped or base",
            "rows": rows}


def main(argv: list[str] | None = None) -> int:
    from webqa.qa import load_questions

    parser = argparse.ArgumentParser(prog="python -m webqa.policy.reading_data", description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="train", choices=["train", "dev"], help="never final")
    parser.add_argument("--n", type=int, default=6000, help="examples to make")
    parser.add_argument("--out", help="examples file (.jsonl or .jsonl.gz); appended to, resumable")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe", metavar="FILE", help="measure an answerer on an examples file instead")
    parser.add_argument("--answerer", help="with --probe: an adapter folder or model (default: shipped, else base)")
    parser.add_argument("--limit", type=int, help="with --probe: the first K examples")
    parser.add_argument("--report", help="with --probe: write the figures and answers as JSON here")
    args = parser.parse_args(argv)
    if args.probe:
        figures = probe(args.probe, args.answerer, args.limit)
        print(f"{figures['examples']} examples: correct {figures['correct']:.3f} "
              f"[{figures['correct_ci'][0]:.2f},{figures['correct_ci'][1]:.2f}], cites the gold passage "
              f"{figures['cites_gold']:.3f}, {figures['mean_words']:.1f} words, "
              f"{figures['seconds_per_example']:.2f} s each")
        if args.report:
            Path(args.report).parent.mkdir(parents=True, exist_ok=True)
            Path(args.report).write_text(json.dumps(figures, indent=1), encoding="utf-8")
        return 0
    if not args.out:
        parser.error("--out is needed to make examples")
    out = Path(args.out)
    done = {e["question"] for e in read_examples(out)} if out.exists() else set()
    records = load_questions(split=args.split)
    random.Random(args.seed).shuffle(records)
    # Open-domain and SQuAD questions in turn, so that either half of the file has as many of each.
    groups = [[r for r in records if r["dataset"] == "squad"], [r for r in records if r["dataset"] != "squad"]]
    records = [r for pair in itertools.zip_longest(*groups) for r in pair if r is not None]
    corpus = LocalCorpus(ranking="passages")
    todo = [r for r in records if r["question"] not in done]
    for example in tqdm(examples(corpus, todo, args.n - len(done), args.seed), total=max(0, args.n - len(done)),
                        desc=f"reading examples -> {out.name}", unit="example"):
        append_record(out, example)
    print(f"{len(read_examples(out))} examples in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
