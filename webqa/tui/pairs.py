"""Pairs of answers to judge, read from sampled candidates, and the comparisons made of them.

A pairs file holds JSON documents, one after another (JSON lines, or pretty-printed
objects back to back; plain or .gz), each one of:

- a question with candidates: a line of a candidates pool as `webqa sample` writes it
  (candidates with `text` and `quotes`, `webqa.reward.pool`), or an answer as
  `webqa ask --n 4 --json` prints it (candidates with `text` and `references`).
  Every two candidates that found an answer, and differ, make a pair;
- a comparison, as in a comparisons file: its two answers make a pair (its
  preference is ignored, so that a person can judge synthetic labels afresh).

    webqa sample --questions dev200.jsonl --n 4 --out pool.jsonl
    webqa ask "Which river flows through Vienna?" --n 4 --json >> pool.json
    webqa compare --pairs pool.jsonl --comparisons comparisons.jsonl
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path
from typing import Any

from webqa.types import ComparedAnswer, Comparison, Quote

PREFERENCES = {"left": 1.0, "right": 0.0, "tie": 0.5}  # the probability that a (the left answer) is better


@dataclass
class Pair:
    """Two answers to one question, a on the left and b on the right."""

    question: str
    a: ComparedAnswer
    b: ComparedAnswer
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple:
        """The same two answers to the same question, in either order."""
        return pair_key(self.question, self.a, self.b)


def pair_key(question: str, a: ComparedAnswer, b: ComparedAnswer) -> tuple:
    sides = sorted((x.text, tuple(q.text for q in x.quotes)) for x in (a, b))
    return (" ".join(question.split()), tuple(sides))


def _documents(text: str) -> Iterator[Any]:
    """Every JSON document in `text`, whatever whitespace separates them."""
    decoder, position = json.JSONDecoder(), 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return
        document, position = decoder.raw_decode(text, position)
        yield document


def load_pairs(path: str | Path, seed: int = 0) -> list[Pair]:
    """Every pair in a pairs file, in file order; which answer goes left is a seeded coin per pair."""
    path = Path(path)
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
    pairs: list[Pair] = []
    try:
        for number, document in enumerate(_documents(text), 1):
            for item in document if isinstance(document, list) else [document]:
                pairs += _pairs_of(item, f"{path.name}#{number}", seed)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON at line {exc.lineno}: {exc.msg}") from None
    return pairs


def _pairs_of(item: dict, source: str, seed: int) -> list[Pair]:
    if not isinstance(item, dict) or "question" not in item:
        raise ValueError(f"{source}: neither an answer with candidates nor a comparison")
    question = item["question"]
    if "candidates" in item:
        answers = []
        for index, candidate in enumerate(item["candidates"]):
            quotes = [Quote(**q) for q in candidate.get("quotes", [])]  # a pool's candidate
            quotes += [Quote(title=r["title"], url=r["url"], text=r["quote"]) for r in candidate.get("references", [])]
            if candidate.get("text") and quotes:
                answers.append((index, ComparedAnswer(text=candidate["text"], quotes=quotes), candidate.get("score")))
        pairs, seen = [], set()
        for (i, a, score_a), (j, b, score_b) in combinations(answers, 2):
            key = pair_key(question, a, b)
            if a == b or key in seen:  # two identical answers: nothing to judge
                continue
            seen.add(key)
            meta = {"source": source, "candidates": [i, j], "scores": [score_a, score_b]}
            if "id" in item:
                meta["question_id"] = item["id"]
            pairs.append(_placed(Pair(question, a, b, meta), seed))
        return pairs
    if "a" in item and "b" in item:
        comparison = Comparison.from_dict({**item, "preference": 0.5})
        meta = {"source": source, "was": {"producer": comparison.producer, "preference": item.get("preference")}}
        return [_placed(Pair(question, comparison.a, comparison.b, meta), seed)]
    raise ValueError(f"{source}: neither an answer with candidates nor a comparison")


def _placed(pair: Pair, seed: int) -> Pair:
    """Put the answers left and right by a seeded coin, so that neither side is always the first sample."""
    coin = random.Random(f"{seed}:{pair.question}:{pair.a.text}:{pair.b.text}").random()
    if coin < 0.5:
        return pair
    meta = dict(pair.metadata)
    for name in ("candidates", "scores"):
        if name in meta:
            meta[name] = meta[name][::-1]
    return Pair(pair.question, pair.b, pair.a, meta)


def judgement(pair: Pair, choice: str, labeller: str = "") -> Comparison:
    """The comparison a person made: `choice` is left, right or tie."""
    return Comparison(question=pair.question, a=pair.a, b=pair.b, preference=PREFERENCES[choice],
                      producer="human", labeller=labeller,
                      created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      metadata=dict(pair.metadata))
