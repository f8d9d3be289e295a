"""A stand-in for the agent that takes fixed actions: for screenshots, demos and tests without a model.

    answer_fn = scripted_agent(LocalCorpus.default(), ["Search Vienna river", "Clicked on link 0", ...],
                               answers=["The Danube [1]."])
    WebQAApp(TuiOptions(mode="ask"), answer_fn=answer_fn).run()

It drives real browsers in lockstep and calls `on_step` after each step, as
`webqa.agent.answer` does; only the choice of actions and answers is fixed.
"""

from __future__ import annotations

from webqa.env.backend import Backend
from webqa.env.browser import Browser
from webqa.tui.ask import AnswerFn
from webqa.types import Answer, Candidate, Reference


def scripted_agent(source: Backend, actions: list[str], answers: list[str],
                   scores: list[float] | None = None) -> AnswerFn:
    """An `answer_fn`: episode i takes `actions` and answers `answers[i % len(answers)]`, scored `scores[i]`.

    It always browses `source` (the `backend` it is asked for is ignored) and reports 1.0 s, so that
    screenshots of it are the same every time.
    """

    def answer_fn(question: str, *, n: int = 1, backend: str = "local", on_step=None) -> Answer:
        from webqa.policy.prompts import POLICY_BROWSER

        browsers = [Browser(source, POLICY_BROWSER) for _ in range(n)]
        for browser in browsers:
            browser.reset(question)
        for action in actions:
            for index, browser in enumerate(browsers):
                if not browser.done:
                    result = browser.step(action)
                    if on_step is not None:
                        on_step(index, action, result, browser)
        candidates = []
        for index, browser in enumerate(browsers):
            browser.episode.answer = answers[index % len(answers)]
            references = [Reference(title=q.title, url=q.url, quote=q.text) for q in browser.episode.quotes]
            score = None if scores is None else scores[index % len(scores)]
            candidates.append(Candidate(browser.episode.answer, references, browser.episode, score))
        best = max(candidates, key=lambda c: c.score) if scores else candidates[0]
        return Answer(question=question, text=best.text, references=best.references, trajectory=best.episode,
                      candidates=candidates, seconds=1.0, found=bool(best.references))

    return answer_fn
