"""The agent: question -> browsing episodes -> candidates -> the chosen answer.

    import webqa
    result = webqa.answer("Which river flows through Vienna?")
    print(result.text)
    for number, ref in enumerate(result.references, 1):
        print(number, ref.title, ref.url, ref.quote)
"""

from __future__ import annotations

import time

from webqa.env.answering import check_citations
from webqa.env.backend import Backend, Offline
from webqa.env.browser import Browser, BrowserSettings
from webqa.loading import load_reward, load_sampler, make_backend
from webqa.types import Answer, Candidate, Episode, Reference

NO_ANSWER = "No answer found: the agent collected no quotes for this question."
# One greedy episode. Best-of-n is the default only where it gains >= 3 points over n=1 at <= 2x its
# median time (issue 27). On dev, with the extractor's answers, best-of-4 gained 2.0 points (0.310
# against 0.290) at 2.46x the time (webqa/data/reward/README.md), and the reward model has not been
# trained on the answerer's written answers. `n=4` still samples four episodes for the reward model.
DEFAULT_N = 1


def candidate_from_episode(episode) -> Candidate:
    """An episode's answer and its quotes as numbered references."""
    references = [Reference(title=q.title, url=q.url, quote=q.text) for q in episode.quotes]
    return Candidate(text=episode.answer or "", references=references, episode=episode)


def answer(question: str, *, n: int = DEFAULT_N, backend: str | Backend = "local", policy: str | None = None,
           browser_settings: BrowserSettings | None = None, sampling=None, on_step=None,
           reward: str | None = None, answerer: str | None = None) -> Answer:
    """Answer `question` by browsing: sample n episodes in lockstep and return the best answer.

    One episode is greedy. With n > 1 the first episode stays greedy and the others are sampled
    (`SamplingConfig.best_of`); the reward model (`reward`, a folder; by default the shipped one) scores
    every answer and the highest wins; every candidate is kept on the Answer with its `.score`.

    With `sampling.answers == "read"` (the default), the answerer (`answerer`, a folder; by default
    the shipped one, else the base model) reads the episode's quotes and writes the answer; with
    `sampling.floor`, every episode first searches the question as asked and the passage of its top
    result is read too (`webqa.policy.reading`).

    `on_step(index, action, result, browser)` is called after every browser step (a live view);
    see `webqa.policy.rollout.StepCallback`.

    When the backend cannot be reached (the live web, offline), the agent stops at once: before the
    model is loaded where the backend can tell (`check()`), else at the first step that finds it
    unreachable. The Answer then has `found=False` and the backend's message as `error` and `text`.
    """
    start = time.perf_counter()
    source = make_backend(backend)
    check = getattr(source, "check", None)
    try:
        if check is not None:
            check()  # before importing torch and loading the model: seconds
        # Imported here, after the check: torch loads with them, and `import webqa` stays light.
        from webqa.policy.config import SamplingConfig
        from webqa.policy.prompts import POLICY_BROWSER
        from webqa.policy.reading import load_answerer
        from webqa.policy.rollout import run_episodes

        settings = browser_settings or POLICY_BROWSER
        browsers = [Browser(source, settings) for _ in range(n)]  # each its own copy of the settings
        sampling = sampling or SamplingConfig.best_of(n)
        reader = load_answerer(answerer) if sampling.answers == "read" else None
        episodes = run_episodes(load_sampler(policy), browsers, question, sampling,
                                on_step=_stopping_when_unreachable(on_step), answerer=reader)
    except Offline as error:
        return unreachable(question, str(error), time.perf_counter() - start)
    candidates = [candidate_from_episode(e) for e in episodes]
    found = [c for c in candidates if c.found]
    best = _choose(question, candidates, found, reward) if found else candidates[0]
    return Answer(question=question, text=best.text if found else NO_ANSWER,
                  references=best.references if found else [], trajectory=best.episode,
                  candidates=candidates, seconds=time.perf_counter() - start, found=bool(found))


def _stopping_when_unreachable(on_step):
    """`on_step`, then stop the rollout (raising `Offline`) after a step the backend could not be reached for."""

    def step(index, action, result, browser) -> None:
        if on_step is not None:
            on_step(index, action, result, browser)
        if result.fatal:
            raise Offline(result.error)

    return step


def unreachable(question: str, message: str, seconds: float) -> Answer:
    """The Answer when the backend cannot be reached: no answer, the backend's message as the error."""
    return Answer(question=question, text=message, references=[], trajectory=Episode(question=question),
                  candidates=[], seconds=seconds, found=False, error=message)


def _choose(question: str, candidates: list[Candidate], found: list[Candidate], reward: str | None) -> Candidate:
    """Best-of-n: the reward model's highest-scored candidate (all scored in one forward pass).

    One candidate, or no reward model: the first candidate whose citations all point at its quotes.
    """
    model = load_reward(reward) if len(candidates) > 1 else None
    if model is None:
        return _pick(found)
    from webqa.reward.model import choose, score_candidates  # torch: as the imports in answer()

    score_candidates(model, question, candidates)
    return candidates[choose([c.score for c in candidates])]


def _pick(candidates: list[Candidate]) -> Candidate:
    valid = [c for c in candidates if check_citations(c.text, c.episode.quotes).valid]
    return (valid or candidates)[0]
