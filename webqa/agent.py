"""The agent: question -> browsing episodes -> candidates -> the chosen answer.

    import webqa
    result = webqa.answer("Which river flows through Vienna?")
    print(result.text)
    for number, ref in enumerate(result.references, 1):
        print(number, ref.title, ref.url, ref.quote)
"""

from __future__ import annotations

import time
from functools import lru_cache

from webqa.env.backend import Backend
from webqa.env.browser import Browser, BrowserSettings
from webqa.paths import DATA_DIR
from webqa.types import Answer, Candidate, Reference

SHIPPED_POLICY = DATA_DIR / "policy"
NO_ANSWER = "No answer found: the agent collected no quotes for this question."


def make_backend(backend: str | Backend) -> Backend:
    """"local" (the embedded encyclopedia), "web" (the live web), or a backend object."""
    if not isinstance(backend, str):
        return backend
    if backend == "local":
        from webqa.env.local import LocalCorpus

        return LocalCorpus.default()
    if backend == "web":
        from webqa.env.web import WebBackend

        return WebBackend()
    raise ValueError(f"unknown backend {backend!r}: use 'local' or 'web'")


@lru_cache(maxsize=2)
def load_sampler(policy: str | None = None):
    """The policy model wrapped for sampling; by default the shipped behavior-cloned adapter."""
    from webqa.policy.rollout import Sampler
    from webqa.policy.train import load_policy

    path = policy or (str(SHIPPED_POLICY) if (SHIPPED_POLICY / "adapter_config.json").exists() else None)
    model, tokenizer = load_policy(path)
    return Sampler(model, tokenizer)


def candidate_from_episode(episode) -> Candidate:
    """An episode's answer and its quotes as numbered references."""
    references = [Reference(title=q.title, url=q.url, quote=q.text) for q in episode.quotes]
    return Candidate(text=episode.answer or "", references=references, episode=episode)


def answer(question: str, *, n: int = 1, backend: str | Backend = "local", policy: str | None = None,
           browser_settings: BrowserSettings | None = None, sampling=None) -> Answer:
    """Answer `question` by browsing: sample n episodes in lockstep and return the best answer."""
    from webqa.policy.expert import POLICY_BROWSER
    from webqa.policy.rollout import SamplingConfig, run_episodes

    start = time.perf_counter()
    source = make_backend(backend)
    settings = browser_settings or POLICY_BROWSER
    browsers = [Browser(source, BrowserSettings(**vars(settings))) for _ in range(n)]
    # One episode: greedy is best; several: sample, so that the candidates differ.
    sampling = sampling or SamplingConfig(temperature=0.0 if n == 1 else 0.7)
    episodes = run_episodes(load_sampler(policy), browsers, question, sampling)
    candidates = [candidate_from_episode(e) for e in episodes]
    found = [c for c in candidates if c.found]
    # With no reward model yet, prefer a candidate whose citations all point at its quotes.
    best = _pick(found) if found else candidates[0]
    return Answer(question=question, text=best.text if found else NO_ANSWER,
                  references=best.references if found else [], trajectory=best.episode,
                  candidates=candidates, seconds=time.perf_counter() - start, found=bool(found))


def _pick(candidates: list[Candidate]) -> Candidate:
    from webqa.env.answering import check_citations

    valid = [c for c in candidates if check_citations(c.text, c.episode.quotes).valid]
    return (valid or candidates)[0]
