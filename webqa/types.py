"""Shared types: the data that flows question -> env <-> policy -> answer.

Everything here is a plain dataclass that round-trips through JSON
(`to_dict` / `from_dict`), so episodes, demonstrations and comparisons can be
written as JSON lines and read back by any later stage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Union
from urllib.parse import urlsplit


def domain_of(url: str) -> str:
    """The site of a URL as shown to the model: host without `www.`."""
    host = urlsplit(url).hostname or ""
    return host[4:] if host.startswith("www.") else host


# --- Documents: what a backend returns, before rendering -------------------


@dataclass
class Link:
    """An anchor in a document: the visible text and where it points."""

    text: str
    url: str


Span = Union[str, Link]


@dataclass
class Document:
    """A fetched page as blocks (paragraphs, headings) of text runs and links."""

    url: str
    title: str
    blocks: list[list[Span]]


@dataclass
class SearchResult:
    """One hit of a search engine."""

    title: str
    url: str
    snippet: str
    # The passage that ranked the result (the encyclopedia's best window of the page; the engine's
    # snippet on the web): what the answer step reads of the top result (see `Quote.by`).
    passage: str = ""

    @property
    def domain(self) -> str:
        return domain_of(self.url)


# --- The browsing episode ---------------------------------------------------


@dataclass
class Quote:
    """A passage the agent quoted, with the page it came from."""

    title: str
    url: str
    text: str
    # The passage of the page around the quote (about READ_WORDS words), which the answer step reads.
    context: str = ""
    # Who took it: "" the agent (a `Quote:` action), "floor" the answer step (the passage of the top
    # result of the question itself, which every answer reads: browsing only adds to it).
    by: str = ""

    @property
    def domain(self) -> str:
        return domain_of(self.url)


@dataclass
class StepResult:
    """What `Browser.step` returns: the next observation, and why it failed if it did."""

    observation: str
    done: bool
    error: str | None = None
    # The backend cannot be reached at all (the live web, offline): every further search or click fails too.
    fatal: bool = False


@dataclass
class Step:
    """One step of an episode: the observation shown and the action taken on it."""

    observation: str
    action: str
    error: str | None = None
    # Who chose the action: "model" (the policy wrote it), "reader" (the quote reader chose the quote or the
    # result to open), "rule:<name>" (a hand-made rule: "rule:floor", "rule:specific-find", "rule:last-look",
    # "rule:shared-search"), "script", "expert", "human"; "" when not recorded.
    by: str = ""
    # Where a rule or the reader replaced the model's action: what the model itself wrote.
    proposed: str | None = None


@dataclass
class Episode:
    """A full browsing episode: enough to replay it and to train on it."""

    question: str
    steps: list[Step] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)
    final_observation: str = ""
    end: str | None = None  # "Answer", "Nonsense", "Controversial", or "out of actions"
    answer: str | None = None
    # Who wrote the answer: "model" (the answer step read the quotes), "extractor" (the reader's run of
    # clauses of a quote), "expert", "human", "script"; "" when not recorded.
    answered_by: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def actions(self) -> list[str]:
        return [step.action for step in self.steps]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Episode":
        data = dict(data)
        data["steps"] = [Step(**s) for s in data.get("steps", [])]
        data["quotes"] = [Quote(**q) for q in data.get("quotes", [])]
        return cls(**data)


@dataclass
class Demonstration(Episode):
    """An episode to learn from, with who produced it; one JSON line in a demonstrations file."""

    producer: str = "human"  # "human", "expert" or "policy"
    model: str | None = None  # the policy's model, for producer "policy"
    created: str = ""  # ISO 8601 time
    gold_answers: list[str] = field(default_factory=list)


# --- Answers -----------------------------------------------------------------


@dataclass
class Reference:
    """A numbered source of an answer: the page and the passage quoted from it."""

    title: str
    url: str
    quote: str


@dataclass
class Candidate:
    """One sampled episode's answer, with its references and (once scored) its reward."""

    text: str
    references: list[Reference]
    episode: Episode
    score: float | None = None

    @property
    def found(self) -> bool:
        return bool(self.text and self.references)


@dataclass
class Answer:
    """What `webqa.answer()` returns: the chosen answer, its references, and every candidate."""

    question: str
    text: str
    references: list[Reference]
    trajectory: Episode
    candidates: list[Candidate]
    seconds: float
    found: bool
    error: str | None = None  # why there is no answer when the backend could not be reached (offline)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- Comparisons: what the reward model learns from ----------------------------


@dataclass
class ComparedAnswer:
    """One side of a comparison: an answer and the quotes it cites as [1], [2], ..."""

    text: str
    quotes: list[Quote]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ComparedAnswer":
        return cls(text=data["text"], quotes=[Quote(**q) for q in data.get("quotes", [])])


@dataclass
class Comparison:
    """Two answers to one question and which is better; one JSON line in a comparisons file.

    `preference` is the probability that `a` is the better answer: 1.0 (a), 0.0 (b) or 0.5 (a tie).
    """

    question: str
    a: ComparedAnswer
    b: ComparedAnswer
    preference: float
    producer: str = "human"  # "human" or "synthetic"
    labeller: str = ""  # who judged: a person's name, or the rule that made a synthetic label
    created: str = ""  # ISO 8601 time
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.preference not in (0.0, 0.5, 1.0):
            raise ValueError(f"preference must be 1 (a), 0 (b) or 0.5 (tie), not {self.preference!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Comparison":
        data = dict(data)
        data["a"] = ComparedAnswer.from_dict(data["a"])
        data["b"] = ComparedAnswer.from_dict(data["b"])
        if isinstance(data.get("created"), datetime):
            # `datasets` reads ISO times as UTC timestamps without their zone: write them back as written.
            created = data["created"]
            data["created"] = (created if created.tzinfo else created.replace(tzinfo=timezone.utc)).isoformat()
        return cls(**data)
