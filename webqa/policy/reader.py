"""The quote reader: whether a sentence in view answers the question, and which.

A small language model reading a window of text token by token is poor at
reading: on the reading probe its likelihood picks an answer sentence hardly
more often than chance, and with the answer in view it mostly moves on with
`Find in page`. The reader does that part of the policy's work with two small
linear models over a few reading features of each whole sentence in view (the
question words it shares, how rare they are in the window, whether it holds
the kind of thing asked for), both fitted to the expert's demonstrations:

- the ranker: which sentence the expert quoted, among those in view (a softmax
  over the window's sentences);
- the decision: whether the expert quoted here at all, from the best-ranked
  sentence's features (a logistic regression over every state on a page).

    reader = fit_reader(list(reading_states(demos, backend)))   # a minute on a CPU
    reader.choose(question, title, sentences)     # index of the sentence to quote
    reader.quote_probability(question, title, sentences)
    reader.save(folder / READER_FILE)

A policy folder that holds `reader.json` reads with it (`SamplingConfig.quotes`).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from webqa.demos import read_demonstrations
from webqa.env.backend import Backend
from webqa.env.browser import Browser, BrowserSettings
from webqa.env.local import LocalCorpus, recorded_ranking
from webqa.text import question_stems, sentences_in_view, stemmed_words
from webqa.types import Demonstration

READER_FILE = "reader.json"  # in a policy's folder

# Of a sentence, with the question: content words shared; the same weighted by rarity in the window;
# that as a share of the question's weight; the share of the question's words in the sentence or the
# page title; word pairs shared; shared words not in the title; whether it holds the kind of thing asked
# (a year for "when", a number for "how many", a new name for "who"); words new to the question and
# title (log); length (log characters); position in the window (0 top, 1 bottom).
FEATURES = ("shared", "shared_rare", "coverage", "covered_with_title", "pairs", "outside_title", "kind_asked",
            "new_words", "length", "position")

_YEAR = re.compile(r"\b(1\d{3}|20\d{2})s?\b")
_MONTH = re.compile(r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b")
_NUMBER = re.compile(r"\d")
_CAPITAL = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+")


def _asks_for(question: str) -> str | None:
    """What kind of thing the question asks for: a time, a number, a name; None when it does not say."""
    q = question.lower()
    if re.search(r"\b(when|what year|which year|what date|what century|what decade)\b", q):
        return "time"
    if re.search(r"\b(how many|how much|how long|how old|how far|how big|how tall|what percentage|what number)\b", q):
        return "number"
    if re.search(r"\b(who|whom|whose|where|which city|which country|what city|what country)\b", q):
        return "name"
    return None


def _holds_kind(kind: str | None, sentence: str, known: set[str]) -> float:
    if kind == "time":
        return float(bool(_YEAR.search(sentence) or _MONTH.search(sentence)))
    if kind == "number":
        return float(bool(_NUMBER.search(sentence)))
    if kind == "name":  # a capitalized word the question does not already name
        return float(bool(set(stemmed_words(" ".join(_CAPITAL.findall(sentence)))) - known))
    return 0.0


def features(question: str, title: str, sentences: list[str]) -> list[list[float]]:
    """One row of FEATURES per sentence. Rarity is measured on these sentences themselves, so a word
    the whole window repeats (the page's subject) counts less than one only the answer shares."""
    asked = question_stems(question)
    title_stems = set(stemmed_words(title))
    known = asked | title_stems
    words = [stemmed_words(s) for s in sentences]
    stems = [set(w) for w in words]
    rarity = {w: math.log((len(sentences) + 1) / (1 + sum(w in s for s in stems))) + 1.0 for w in asked}
    total = sum(rarity.values()) or 1.0
    asked_words = stemmed_words(question)
    question_pairs = set(zip(asked_words, asked_words[1:]))
    kind = _asks_for(question)
    rows = []
    for index, (sentence, found, tokens) in enumerate(zip(sentences, stems, words)):
        shared = asked & found
        pairs = question_pairs & set(zip(tokens, tokens[1:]))
        rows.append([
            len(shared),
            sum(rarity[w] for w in shared),
            sum(rarity[w] for w in shared) / total,
            len(asked & (found | title_stems)) / max(1, len(asked)),
            len(pairs),
            len(shared - title_stems),
            _holds_kind(kind, sentence, known),
            math.log1p(len(found - known)),
            math.log1p(len(sentence)),
            index / max(1, len(sentences) - 1),
        ])
    return rows


@dataclass
class QuoteReader:
    """The ranker's score of a sentence is `weights . z`, with z its standardized features
    ((features - mean) / scale); the decision's log-odds of quoting now is `quote_weights . z + quote_bias`
    for the best-ranked sentence's z."""

    weights: list[float]
    mean: list[float]
    scale: list[float]
    quote_weights: list[float]
    quote_bias: float
    # Greedy decoding quotes when the decision's probability exceeds this (0.5 as fitted; 0.35, more
    # eager, was no better on dev questions 1-60: 6 correct of 55 against 7).
    threshold: float = 0.5

    def _standard(self, question: str, title: str, sentences: list[str]) -> torch.Tensor:
        rows = torch.tensor(features(question, title, sentences), dtype=torch.float64)
        return (rows - torch.tensor(self.mean, dtype=torch.float64)) / torch.tensor(self.scale, dtype=torch.float64)

    def scores(self, question: str, title: str, sentences: list[str]) -> list[float]:
        """The ranker's score of each sentence (higher: likelier the one to quote)."""
        return (self._standard(question, title, sentences) @ torch.tensor(self.weights, dtype=torch.float64)).tolist()

    def choose(self, question: str, title: str, sentences: list[str]) -> int:
        """The index of the sentence to quote (the first of equals)."""
        scores = self.scores(question, title, sentences)
        return max(range(len(sentences)), key=lambda i: (scores[i], -i))

    def quote_probability(self, question: str, title: str, sentences: list[str]) -> float:
        """How likely the expert would quote the best-ranked sentence now, rather than read on."""
        if not sentences:
            return 0.0
        best = self._standard(question, title, sentences)[self.choose(question, title, sentences)]
        return float(torch.sigmoid(best @ torch.tensor(self.quote_weights, dtype=torch.float64) + self.quote_bias))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self) | {"features": FEATURES}, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> QuoteReader:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if tuple(data.pop("features", ())) != FEATURES:
            raise ValueError(f"{path}: a reader fitted on other features; fit it again with `webqa train reader`")
        try:
            return cls(**data)
        except TypeError as error:
            raise ValueError(f"{path}: not a quote reader ({error})") from None


def draw(probabilities: torch.Tensor, generator: torch.Generator | None) -> int:
    """An index drawn with `probabilities`, on the generator's device (a CUDA generator draws on CUDA);
    how sampled decoding draws the reader's choices (quotes, clicks, answers)."""
    device = generator.device if generator is not None else "cpu"
    return int(torch.multinomial(probabilities.to(device), 1, generator=generator))


def load_reader(folder: str | Path | None) -> QuoteReader | None:
    """The reader saved in a policy's folder, or None."""
    path = Path(folder) / READER_FILE if folder else None
    return QuoteReader.load(path) if path is not None and path.is_file() else None


@dataclass
class ReadingState:
    """A state of a demonstration on a page: the sentences in view, and the one the expert quoted
    (None when it did something else)."""

    question: str
    title: str
    sentences: list[str]
    chosen: int | None


def reading_states(demos: Iterable[Demonstration], backend: Backend) -> Iterator[ReadingState]:
    """Replay each demonstration in the browser; yield a state for each step on a page with a whole
    sentence in view. A quote counts as chosen when it holds, or is held by, one of them.

    The states hold the complete sentences in view, as the expert quotes only those; in an episode
    the reader also reads the ones the window's edge cuts (`webqa.policy.rules.quotable_sentences`)."""
    names = BrowserSettings.__dataclass_fields__
    for demo in demos:
        browser = Browser(backend, BrowserSettings(**{k: v for k, v in demo.settings.items() if k in names}))
        browser.reset(demo.question)
        for step in demo.steps:
            page = browser.page
            sentences = unquoted_in_view(browser) if page is not None and not page.is_search_results else []
            quoted = len(browser.quotes)
            browser.step(step.action)
            if sentences:
                chosen = None
                if len(browser.quotes) > quoted:
                    text = browser.quotes[-1].text
                    holding = [i for i, s in enumerate(sentences) if text in s or s in text]
                    if not holding:  # a quote of something else than a whole sentence: no lesson here
                        continue
                    chosen = holding[0]
                yield ReadingState(demo.question, page.title, sentences, chosen)
            if browser.done:
                break


def unquoted(browser: Browser, sentences: Iterable[str]) -> list[str]:
    """The sentences that no quote of the browser holds yet (nor is held by one)."""
    quoted = [quote.text for quote in browser.quotes]
    return [s for s in sentences if not any(s in text or text in s for text in quoted)]


def unquoted_in_view(browser: Browser, partial: bool = False) -> list[str]:
    """The whole sentences in view (with `partial`, also those the window cuts) that no quote holds yet."""
    return unquoted(browser, sentences_in_view(browser, partial))


def fit_reader(states: list[ReadingState], l2: float = 1e-3) -> QuoteReader:
    """The ranker, fitted to the states where the expert quoted among several sentences, then the
    decision, fitted to all states; each by L-BFGS with a little L2."""
    ranked = [s for s in states if s.chosen is not None and len(s.sentences) > 1]
    if not ranked:
        raise ValueError("no states to fit the reader on: the demonstrations hold no quote among several sentences")
    rows = [torch.tensor(features(s.question, s.title, s.sentences), dtype=torch.float64) for s in states]
    stacked = torch.cat(rows)
    mean, scale = stacked.mean(0), stacked.std(0).clamp_min(1e-6)
    standard = [(r - mean) / scale for r in rows]
    ranked_rows = [z for z, s in zip(standard, states) if s.chosen is not None and len(s.sentences) > 1]
    chosen = torch.tensor([s.chosen for s in ranked])
    weights = _minimize(lambda w: ranker_loss(ranked_rows, chosen, w), len(FEATURES), l2)

    # The decision reads the sentence the ranker would pick; its label is whether the expert quoted.
    best = torch.stack([z[int((z @ weights).argmax())] for z in standard])
    quoted = torch.tensor([float(s.chosen is not None) for s in states], dtype=torch.float64)
    decision = _minimize(lambda w: torch.nn.functional.binary_cross_entropy_with_logits(
        best @ w[:-1] + w[-1], quoted), len(FEATURES) + 1, l2)
    return QuoteReader(weights.tolist(), mean.tolist(), scale.tolist(), decision[:-1].tolist(), float(decision[-1]))


def _minimize(loss, size: int, l2: float, steps: int = 300) -> torch.Tensor:
    weights = torch.zeros(size, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = loss(weights) + l2 * weights.pow(2).sum()
        value.backward()
        return value

    optimizer.step(closure)
    return weights.detach()


def ranker_loss(rows: list[torch.Tensor], chosen: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean negative log-probability of each chosen sentence under a softmax of its state's scores."""
    return torch.stack([-torch.log_softmax(r @ weights, 0)[c] for r, c in zip(rows, chosen)]).mean()


def reader_figures(reader: QuoteReader, states: list[ReadingState]) -> dict[str, float]:
    """How the reader agrees with the expert on `states`: the ranker's hit rate where the expert quoted
    among several sentences, and the decision's precision and recall (quote when p > 0.5)."""
    ranked = [s for s in states if s.chosen is not None and len(s.sentences) > 1]
    hits = sum(reader.choose(s.question, s.title, s.sentences) == s.chosen for s in ranked)
    said = [reader.quote_probability(s.question, s.title, s.sentences) > 0.5 for s in states]
    right = sum(yes and s.chosen is not None for yes, s in zip(said, states))
    quoted = sum(s.chosen is not None for s in states)
    return {"states": len(states), "quote_states": quoted, "ranker_accuracy": hits / len(ranked) if ranked else 0.0,
            "decision_precision": right / sum(said) if any(said) else 0.0,
            "decision_recall": right / quoted if quoted else 0.0}


# --- command line ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`webqa train reader`: fit the reader to demonstrations and save it into a policy folder."""
    parser = argparse.ArgumentParser(prog="webqa train reader", description=(
        "Fit the quote reader to the expert's demonstrations and save it as reader.json in a policy folder."))
    parser.add_argument("--demos", required=True, nargs="+", help="demonstration files (JSONL, .gz allowed)")
    parser.add_argument("--out", required=True, help="the policy folder to save reader.json into")
    parser.add_argument("--held-out", type=int, default=200, help="demonstrations kept out of fitting, to measure")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    demos = [demo for path in args.demos for demo in read_demonstrations(path)]
    random.Random(args.seed).shuffle(demos)
    held_out, fitting = demos[: args.held_out], demos[args.held_out :]
    corpora = {ranking: LocalCorpus(ranking=ranking) for ranking in {recorded_ranking(d.settings) for d in demos}}

    def replayed(group):  # each demonstration on the encyclopedia ranked as when it was recorded
        return [state for demo in group for state in reading_states([demo], corpora[recorded_ranking(demo.settings)])]

    states = replayed(tqdm(fitting, desc="replay", unit="demo"))
    test = replayed(held_out)
    reader = fit_reader(states)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    reader.save(Path(args.out) / READER_FILE)
    rows = [("fitted on", reader_figures(reader, states)), ("held out", reader_figures(reader, test))]
    print(f"{'':10} {'states':>7} {'quotes':>7} {'ranker':>7} {'quote precision':>16} {'quote recall':>13}")
    for name, f in rows:
        print(f"{name:10} {f['states']:>7} {f['quote_states']:>7} {f['ranker_accuracy']:>7.3f} "
              f"{f['decision_precision']:>16.3f} {f['decision_recall']:>13.3f}")
    print(f"saved to {Path(args.out) / READER_FILE}")
    return 0
