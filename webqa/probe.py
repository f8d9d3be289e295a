"""The reading probe: with the answer in front of it, does the policy quote it?

    webqa probe --questions dev200.jsonl [--limit K] [--policy DIR] [--out PROBE.json]

`webqa eval` measures whole episodes: about forty minutes for 200 questions on two
CPU cores, and an episode fails for many reasons (the search, a click, a scroll, the
quote, the answer). The probe isolates the skill the evaluation points at, reading,
in a few minutes, so that a training run can be checked before it is evaluated.

For every question whose top search result holds a passage with a gold answer (as
the expert finds one, `expert_text.passages`), the browser is put where the expert
would quote: the question searched, the top result opened, the passage brought into
view with the expert's moves. From there five choosers pick a sentence:

- `policy`: the policy acts (greedy, constrained) until it quotes, leaves the page or
  ends, at most MAX_ACTIONS times; a hit when its quote holds a gold answer;
- `likelihood`: the sentence in view the policy finds likeliest as its next line
  (`Quote: ...`, mean log-probability per token; `Sampler.score`);
- `overlap`: the sentence in view sharing the most content words with the question
  (the rule of the `bm25-sentence` baseline);
- `reader`: the sentence the policy's quote reader ranks first (`webqa.policy.reader`; counted as
  a miss for a policy without one);
- `chance`: a sentence in view drawn at random (the expected hit rate).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from webqa.env.backend import Backend
from webqa.env.browser import Browser, BrowserSettings
from webqa.evaluate import most_overlapping
from webqa.qa import read_questions
from webqa.policy.constraints import action_grammar
from webqa.policy.expert_moves import plan_moves
from webqa.policy.expert_text import passages
from webqa.policy.prompts import POLICY_BROWSER, action_example
from webqa.policy.config import SamplingConfig
from webqa.policy.sampler import Sampler, mean_log_probabilities
from webqa.scoring import is_supported
from webqa.text import quote_action, sentences_in_view

MAX_ACTIONS = 4  # the policy's actions from the probe state before it counts as not quoting
CHOOSERS = ("policy", "likelihood", "overlap", "reader", "chance")


@dataclass
class ProbeState:
    """One probed question: the sentences in view and what each chooser made of them."""

    question: str
    sentences: list[str]  # complete sentences in the window
    holds_answer: list[bool]  # whether each holds a gold answer
    likelihood_pick: int  # index into sentences
    overlap_pick: int
    reader_pick: int | None = None  # None: the policy has no reader
    policy_actions: list[str] = field(default_factory=list)
    policy_quote: str | None = None  # the passage the policy quoted, if it did
    policy_hit: bool = False  # its quote holds a gold answer

    def hits(self) -> dict[str, float]:
        return {"policy": float(self.policy_hit),
                "likelihood": float(self.holds_answer[self.likelihood_pick]),
                "overlap": float(self.holds_answer[self.overlap_pick]),
                "reader": float(self.reader_pick is not None and self.holds_answer[self.reader_pick]),
                "chance": statistics.mean(self.holds_answer)}


def probe_state(backend: Backend, settings: BrowserSettings, question: str, gold: list[str]) -> Browser | None:
    """A browser on the top result of the question's search, its best gold passage in view; None if none."""
    browser = Browser(backend, replace(settings))
    browser.reset(question)
    browser.step(f"Search {question}")
    if browser.page is None or not browser.page.links:
        return None
    browser.step("Clicked on link 0")
    page = browser.page
    if page is None or page.is_search_results:
        return None
    found = passages(page, question, gold, settings.line_width)
    if not found:
        return None
    moves = plan_moves(page, browser.cursor, found[0].first_line, found[0].last_line, settings, needles=[])
    for move in moves or []:
        browser.step(move)
    return browser if moves is not None else None


def run_policy_from(sampler: Sampler, browser: Browser) -> tuple[list[str], str | None]:
    """The policy's actions from here (greedy, constrained) until it quotes or leaves; and its quote."""
    url, actions = browser.page.url, []
    for _ in range(MAX_ACTIONS):
        prompt = action_example(browser.observation(), "", sampler.prompt_format)[0]
        action = sampler.sample([prompt], SamplingConfig.max_action_tokens, temperature=0.0,
                                grammars=[action_grammar(browser)])[0]
        actions.append(action)
        quotes = len(browser.quotes)
        browser.step(action)
        if len(browser.quotes) > quotes:
            return actions, browser.quotes[-1].text
        if browser.done or browser.page is None or browser.page.url != url:
            break
    return actions, None


def probe_question(sampler: Sampler, backend: Backend, settings: BrowserSettings, question: str,
                   gold: list[str]) -> ProbeState | None:
    """The probe on one question; None when its top result holds no gold passage the expert would quote."""
    browser = probe_state(backend, settings, question, gold)
    if browser is None:
        return None
    sentences = sentences_in_view(browser)  # slices of the page's text, so each is quotable as it stands
    holds = [is_supported([s], gold) for s in sentences]
    if not any(holds):
        return None
    page_text = " ".join(browser.page.plain_lines)
    prompt = action_example(browser.observation(), "", sampler.prompt_format)[0]
    likeliest = int(mean_log_probabilities(sampler, prompt, [quote_action(s, page_text) for s in sentences]).argmax())
    overlapping = sentences.index(most_overlapping(question, sentences))
    reader = sampler.reader.choose(question, browser.page.title, sentences) if sampler.reader else None
    state = ProbeState(question, sentences, holds, likeliest, overlapping, reader)
    state.policy_actions, state.policy_quote = run_policy_from(sampler, browser)
    state.policy_hit = state.policy_quote is not None and is_supported([state.policy_quote], gold)
    return state


def probe(sampler: Sampler, backend: Backend, settings: BrowserSettings, questions: list[dict],
          out: Path | str | None = None) -> dict:
    """Run the probe on `questions` (`question`, `answers`); the summary, also written to `out` with every state."""
    states = []
    for item in tqdm(questions, desc="probe", unit="q"):
        state = probe_question(sampler, backend, settings, item["question"], item["answers"])
        if state is not None:
            states.append(state)
    hits = [state.hits() for state in states]
    summary = {"questions": len(questions), "states": len(states),
               "policy_quotes": statistics.mean(s.policy_quote is not None for s in states) if states else 0.0,
               "sentences_in_view": statistics.mean(len(s.sentences) for s in states) if states else 0.0,
               **{name: statistics.mean(h[name] for h in hits) if hits else 0.0 for name in CHOOSERS}}
    if out is not None:
        Path(out).write_text(json.dumps({"summary": summary, "states": [asdict(s) for s in states]}, indent=1,
                                        ensure_ascii=False), encoding="utf-8")
    return summary


def format_summary(summary: dict) -> str:
    """The probe's figures as a small table."""
    rows = [("questions", f"{summary['questions']}"), ("probed states", f"{summary['states']}"),
            ("sentences in view (mean)", f"{summary['sentences_in_view']:.1f}"),
            ("policy quotes at all", f"{summary['policy_quotes']:.3f}")]
    rows += [(f"{name} picks an answer sentence", f"{summary[name]:.3f}") for name in CHOOSERS]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value:>7}" for name, value in rows)


def main(questions_path: str, limit: int | None = None, policy: str | None = None, out: str | None = None) -> dict:
    """`webqa probe`: load the policy, probe the questions, print the table."""
    from webqa.loading import load_sampler, make_backend

    summary = probe(load_sampler(policy), make_backend("local"), POLICY_BROWSER,
                    read_questions(questions_path, limit), out)
    print(format_summary(summary))
    return summary
