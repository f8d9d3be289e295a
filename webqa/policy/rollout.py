"""The episode loop: sampling browsing episodes from the policy, several in lockstep.

    sampler = Sampler(model, tokenizer)
    episodes = run_episodes(sampler, [Browser(corpus) for _ in range(4)], question, SamplingConfig())

Every step, the live episodes' observations go through the model together, one
line each (`webqa.policy.sampler`): episodes in the same state share their
prompt, which is read once. The parts beside the model (`webqa.policy.rules`)
take the choices it makes poorly: whether and what to quote, which search
result to open, what to find; its knobs are `SamplingConfig` (`webqa.policy.config`).

By default each line is constrained (`webqa.policy.constraints`): the sampler
draws only among the likeliest tokens that keep the line a command the browser
would accept, or an answer whose citations name collected quotes. With
`SamplingConfig(constrained=False)` the model writes freely, and unparseable
output is passed to the browser, which counts it as an invalid action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from webqa.env.answering import CITATION
from webqa.env.browser import Browser
from webqa.policy.config import SamplingConfig
from webqa.policy.constraints import QUOTE, SEARCH, AnswerGrammar, CitationEnding, action_grammar
from webqa.policy.extractor import extract_answer
from webqa.policy.prompts import action_example, answer_example
from webqa.policy.reading import MAX_ANSWER_TOKENS, MAX_ANSWER_WORDS, floor_quote, reading_prompt, reading_quotes
from webqa.policy.rules import quotable_sentences, reader_quote, revise, shared_searches
from webqa.policy.sampler import Sampler
from webqa.text import sentences_in_view
from webqa.types import Episode, Quote, StepResult

# Called after every browser step with the browser's index in `browsers`, the action it took, the
# step's result, and the browser itself (read what you need at once: the next step changes it).
# Runs on the rollout's thread; an exception it raises stops the rollout (a UI cancels that way).
StepCallback = Callable[[int, str, StepResult, Browser], None]


def run_episodes(sampler: Sampler, browsers: list[Browser], question: str,
                 config: SamplingConfig | None = None, on_step: StepCallback | None = None,
                 answerer: Sampler | None = None) -> list[Episode]:
    """Browse with every browser in lockstep, then write each episode's answer from its quotes.

    `on_step`, when given, is called after each browser step (see `StepCallback`). `answerer`: the model
    that reads and writes the answer (`SamplingConfig.answers == "read"`).
    """
    config = config or SamplingConfig()
    temperatures = config.temperatures(len(browsers))
    readings = config.reading_temperatures(len(browsers))
    configs = [replace(config, temperature=t, reading_temperature=r) for t, r in zip(temperatures, readings)]
    generator = None
    if config.seed is not None:
        generator = torch.Generator(device=sampler.device).manual_seed(config.seed)
    for browser in browsers:
        browser.reset(question)
    floors: list[Quote | None] = [None] * len(browsers)
    if config.floor:  # the rule "floor": the question as asked, its top result's passage kept for the answer
        for index, browser in enumerate(browsers):
            result = browser.step(f"{SEARCH}{question}", by="rule:floor")
            floors[index] = floor_quote(browser.results)
            if on_step is not None:
                on_step(index, f"{SEARCH}{question}", result, browser)
    pages_read: list[dict[str, dict[str, None]]] = [{} for _ in browsers]  # per episode: page URL -> sentences
    while True:
        live = [(index, b) for index, b in enumerate(browsers) if not b.done]
        if not live:
            break
        reader = sampler.reader if config.quotes == "reader" else None
        in_view: dict[int, list[str]] = {}
        if reader:  # what each episode has read on each page, for a quote the model decides on later
            for index, b in live:
                if b.page is not None and not b.page.is_search_results:
                    in_view[index] = sentences_in_view(b, partial=True)
                    pages_read[index].setdefault(b.page.url, {}).update(dict.fromkeys(in_view[index]))
        # Where the reader quotes, the model need not act.
        read = [reader_quote(reader, b, None, readings[index], generator, (), in_view.get(index)) if reader
                else None for index, b in live]
        acting = [(i, b) for (i, b), quote in zip(live, read) if quote is None]
        earlier = {i: list(pages_read[i].get(b.page.url, {})) if b.page else [] for i, b in acting}
        prompts = [action_example(b.observation(), "", sampler.prompt_format)[0] for _, b in acting]
        grammars = [action_grammar(b) for _, b in acting] if config.constrained else None
        # Where the reader will choose what a `Quote:` quotes, the model's words after it are not needed.
        stop_at = [QUOTE if reader and quotable_sentences(b, True, earlier[i], in_view.get(i)) else None
                   for i, b in acting]
        written = iter(sampler.sample(prompts, config.max_action_tokens, [temperatures[i] for i, _ in acting],
                                      config.top_p, generator, grammars, stop_at) if acting else [])
        proposed = [None if quote else next(written) for quote in read]  # what the model wrote, where asked
        actions, chosen_by = list(read), ["reader"] * len(read)
        for position, (index, browser) in enumerate(live):
            if proposed[position] is not None:
                actions[position], chosen_by[position] = revise(proposed[position], browser, sampler,
                                                                configs[index], generator, earlier[index],
                                                                in_view.get(index))
        worded = shared_searches([b for _, b in live], actions)
        chosen_by = [by if new == old else "rule:shared-search" for by, new, old in zip(chosen_by, worded, actions)]
        for (index, browser), action, by, wrote in zip(live, worded, chosen_by, proposed):
            replaced = wrote is not None and wrote != action and by != "model"  # by a rule or the reader
            result = browser.step(action, by=by, proposed=wrote if replaced else None)
            if on_step is not None:
                on_step(index, action, result, browser)
    # WebGPT answers from whatever was quoted, also when the actions ran out.
    answering = [i for i, b in enumerate(browsers)
                 if (b.quotes or floors[i]) and b.episode.end in ("Answer", "out of actions")]
    # The answer rests on the floor (when kept) and the agent's quotes: the episode records them all.
    if config.floor:
        for i in answering:
            browsers[i].episode.quotes = reading_quotes(floors[i], browsers[i].quotes)
    episodes = [browsers[i].episode for i in answering]
    if config.answers == "read" and answerer is not None:
        read_answers(answerer, question, episodes, [temperatures[i] for i in answering], config.top_p, generator)
        for episode in episodes:  # the extractor where the answerer cited nothing (it cannot, constrained)
            episode.answered_by = "model"
            if not CITATION.search(episode.answer or "") and sampler.reader is not None:
                episode.answer = extract_answer(sampler.reader, question, episode.quotes)
                episode.answered_by = "extractor"
    elif sampler.reader is not None and config.answers in ("extract", "read"):
        for i, episode in zip(answering, episodes):
            episode.answer = extract_answer(sampler.reader, question, episode.quotes, readings[i], generator)
            episode.answered_by = "extractor"
    elif answering:
        prompts = [answer_example(question, e.quotes, "")[0] for e in episodes]
        grammars = [AnswerGrammar(len(e.quotes)) for e in episodes] if config.constrained else None
        answers = sampler.sample(prompts, config.max_answer_tokens, [temperatures[i] for i in answering],
                                 config.top_p, generator, grammars)
        if config.constrained:
            answers = finish_answers(sampler, prompts, answers, [len(e.quotes) for e in episodes])
        for episode, text in zip(episodes, answers):
            episode.answer, episode.answered_by = text, "model"
    return [b.episode for b in browsers]


def read_answers(answerer: Sampler, question: str, episodes: list[Episode], temperatures: list[float],
                 top_p: float = 0.95, generator: torch.Generator | None = None) -> None:
    """Each episode's answer, written by the answerer from the episode's quotes (`webqa.policy.reading`)."""
    if not episodes:
        return
    prompts = [reading_prompt(answerer.tokenizer, question, e.quotes) for e in episodes]
    counts = [len(e.quotes) for e in episodes]
    answers = answerer.sample(prompts, MAX_ANSWER_TOKENS, temperatures, top_p, generator,
                              [AnswerGrammar(count, MAX_ANSWER_WORDS) for count in counts])
    answers = finish_answers(answerer, prompts, answers, counts)
    for episode, text in zip(episodes, answers):
        episode.answer = text.strip()


def finish_answers(sampler: Sampler, prompts: list[str], answers: list[str], quotes: list[int],
                   max_tokens: int = 8) -> list[str]:
    """Each answer, with a citation written after those the token cap cut off before they cited one."""
    cut = [i for i, (text, count) in enumerate(zip(answers, quotes)) if not AnswerGrammar(count).complete(text)]
    if not cut:
        return answers
    endings = sampler.sample([prompts[i] + answers[i] for i in cut], max_tokens, temperature=0.0,
                             grammars=[CitationEnding(answers[i], quotes[i]) for i in cut])
    finished = list(answers)
    for i, ending in zip(cut, endings):
        # The sampler returns lines stripped; a citation after a word gets its space back.
        space = " " if ending.startswith("[") and not answers[i].endswith(("[", " ")) else ""
        finished[i] = answers[i] + space + ending
    return finished
