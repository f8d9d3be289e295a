"""Pools of sampled answers: N episodes per question, written as one JSON line per question.

The candidates file is what `webqa sample` and `webqa eval --pool N` write, what
synthetic comparisons and best-of-k estimates are made from, and what the
terminal UI's comparison mode reads. One line per question:

    {"question": "Which river flows through Vienna?",
     "candidates": [{"text": "The Danube [1].",
                     "quotes": [{"title": "Vienna", "url": "https://...", "text": "..."}],
                     "score": 1.37}, ...],
     "id": "...", "answers": ["Danube"], "policy": "...", "reward_model": "..." or null}

`question` and, per candidate, `text`, `quotes` and `score` (the reward model's, or
null: not scored, or no answer) are the shared part. The rest is this module's:
the gold `answers` when known, and per candidate `end` (how the episode ended),
`actions`, and `correct` / `supported` (`webqa.scoring.score_record`). A candidate with
no answer has text "" and may have no quotes. Files may be gzip (`.gz`);
appends are crash-safe (`webqa.records`), and sampling resumes by question.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from webqa.env.browser import Browser, BrowserSettings
from webqa.policy.config import SamplingConfig
from webqa.policy.prompts import POLICY_BROWSER
from webqa.policy.rollout import run_episodes
from webqa.records import append_record, read_records
from webqa.scoring import score_record
from webqa.types import Episode, Quote



@dataclass
class PoolConfig:
    """How a pool is sampled."""

    n: int = 8  # episodes per question
    # The shipped pools' temperature (the reward model's training pools, the dev pool of its card), and
    # live best-of-n's (`BEST_OF_TEMPERATURE`).
    temperature: float = 0.7
    reading_temperature: float | None = None  # the reader's choices (`SamplingConfig`); None: temperature
    top_p: float = 0.95
    seed: int = 0  # each question's sampling seed comes from (seed, question), so a resumed run is the same
    browser: BrowserSettings | None = None  # None: the policy's settings (webqa.policy.prompts.POLICY_BROWSER)


@dataclass
class PoolCandidate:
    """One sampled answer of a pool."""

    text: str
    quotes: list[Quote]
    score: float | None = None
    end: str | None = None
    actions: list[str] = field(default_factory=list)
    correct: bool | None = None
    supported: bool | None = None
    deciders: list[str] = field(default_factory=list)  # who chose each action (`Step.by`)
    answered_by: str = ""  # who wrote the answer (`Episode.answered_by`)

    @property
    def answered(self) -> bool:
        return bool(self.text and self.quotes)

    @property
    def grade(self) -> int:
        """2: correct and supported by a cited quote, 1: correct only, 0: wrong or no answer."""
        if not (self.answered and self.correct):
            return 0
        return 2 if self.supported else 1

    def to_dict(self) -> dict:
        return {"text": self.text, "quotes": [vars(q) for q in self.quotes], "score": self.score, "end": self.end,
                "actions": self.actions, "correct": self.correct, "supported": self.supported,
                "deciders": self.deciders, "answered_by": self.answered_by}

    @classmethod
    def from_dict(cls, data: dict) -> "PoolCandidate":
        return cls(text=data.get("text") or "", quotes=[Quote(**q) for q in data.get("quotes", [])],
                   score=data.get("score"), end=data.get("end"), actions=list(data.get("actions", [])),
                   correct=data.get("correct"), supported=data.get("supported"),
                   deciders=list(data.get("deciders", [])), answered_by=data.get("answered_by", ""))


@dataclass
class PoolRecord:
    """One question's pool: one line of a candidates file."""

    question: str
    candidates: list[PoolCandidate]
    id: str | None = None
    answers: list[str] | None = None
    policy: str | None = None
    reward_model: str | None = None

    def to_dict(self) -> dict:
        return {"question": self.question, "candidates": [c.to_dict() for c in self.candidates], "id": self.id,
                "answers": self.answers, "policy": self.policy, "reward_model": self.reward_model}

    @classmethod
    def from_dict(cls, data: dict) -> "PoolRecord":
        return cls(question=data["question"], candidates=[PoolCandidate.from_dict(c) for c in data["candidates"]],
                   id=data.get("id"), answers=data.get("answers"), policy=data.get("policy"),
                   reward_model=data.get("reward_model"))


def read_pool(path: str | Path) -> list[PoolRecord]:
    """Every question's pool in a candidates file (a cut-off last line is skipped with a warning)."""
    return read_records(path, PoolRecord.from_dict, "pool record")


def candidate_of(episode: Episode, answers: list[str] | None) -> PoolCandidate:
    """An episode as a pool candidate, graded against the gold answers when they are known."""
    candidate = PoolCandidate(text=episode.answer or "", quotes=list(episode.quotes), end=episode.end,
                              actions=episode.actions, deciders=[step.by for step in episode.steps],
                              answered_by=episode.answered_by)
    return graded(candidate, answers) if answers is not None else candidate


def graded(candidate: PoolCandidate, answers: list[str]) -> PoolCandidate:
    """The candidate with `correct` and `supported` set against the gold answers (`webqa.scoring.score_record`)."""

    figures = score_record({"answer": candidate.text, "quotes": [q.text for q in candidate.quotes],
                     "actions": candidate.actions}, answers)
    candidate.correct, candidate.supported = figures["correct"], figures["supported"]
    return candidate


def score_pool(reward_model, question: str, candidates: list[PoolCandidate]) -> list[float | None]:
    """The reward model's scores of the answered candidates (one forward pass); None for the others."""
    answered = [c for c in candidates if c.answered]
    scores = iter(reward_model.score([(question, c.quotes, c.text) for c in answered]))
    return [next(scores) if c.answered else None for c in candidates]


def question_seed(seed: int, question: str) -> int:
    return int(hashlib.sha1(f"{seed}:{question}".encode("utf-8")).hexdigest()[:8], 16)


def sample_pool(questions: list[dict], out: str | Path, config: PoolConfig, sampler, backend, *,
                reward_model=None, policy_name: str | None = None, reward_name: str | None = None,
                on_episodes: Callable[[dict, list[Episode], PoolRecord], None] | None = None,
                progress: bool = True) -> dict:
    """Sample `config.n` episodes for each question not yet in `out`, appending one record per question.

    `questions`: dicts with `question`, and optionally `answers` (gold) and `id`. `sampler`: a
    `Sampler`, or a function that makes one (called only when a question is left to sample). With a reward
    model, every answered candidate is scored. `on_episodes(item, episodes, record)` sees the
    full episodes (observations included) before the record is written. Returns counts.
    """

    out = Path(out)
    done = {r.question for r in read_pool(out)} if out.exists() else set()
    todo = [item for item in questions if item["question"] not in done]
    settings = config.browser or POLICY_BROWSER
    stats = {"questions": len(questions), "already_done": len(questions) - len(todo), "sampled": 0,
             "episodes": 0, "answered": 0, "seconds": 0.0}
    if todo and callable(sampler) and not hasattr(sampler, "sample"):
        sampler = sampler()
    start = time.perf_counter()
    for item in tqdm(todo, desc=f"sampling {config.n} per question -> {out.name}", unit="q", disable=not progress):
        browsers = [Browser(backend, settings) for _ in range(config.n)]
        # The extractor's answers, without the floor: the reward model is trained on these (issue 27 item 7
        # moves it to the answerer's written answers).
        sampling = SamplingConfig(temperature=config.temperature, reading_temperature=config.reading_temperature,
                                  top_p=config.top_p, seed=question_seed(config.seed, item["question"]),
                                  floor=False, answers="extract")
        episodes = run_episodes(sampler, browsers, item["question"], sampling)
        candidates = [candidate_of(e, item.get("answers")) for e in episodes]
        if reward_model is not None:
            for candidate, value in zip(candidates, score_pool(reward_model, item["question"], candidates)):
                candidate.score = value
        record = PoolRecord(question=item["question"], candidates=candidates, id=item.get("id"),
                            answers=item.get("answers"), policy=policy_name, reward_model=reward_name)
        if on_episodes is not None:
            on_episodes(item, episodes, record)
        append_record(out, record.to_dict())
        stats["sampled"] += 1
        stats["episodes"] += len(episodes)
        stats["answered"] += sum(c.answered for c in candidates)
    stats["seconds"] = round(time.perf_counter() - start, 1)
    return stats
