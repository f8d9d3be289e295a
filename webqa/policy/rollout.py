"""Sampling browsing episodes from the policy, several in lockstep.

    sampler = Sampler(model, tokenizer)
    episodes = run_episodes(sampler, [Browser(corpus) for _ in range(4)], question, SamplingConfig())

Every step, the live episodes' observations go through the model together, one
line each (`webqa.policy.sampler`): episodes in the same state share their
prompt, which is read once. The policy's reader (`webqa.policy.reader`) takes
the choices the model makes poorly: whether and what to quote, which search
result to open, and which run of clauses answers.

By default each line is constrained (`webqa.policy.constraints`): the sampler
draws only among the likeliest tokens that keep the line a command the browser
would accept, or an answer whose citations name collected quotes. With
`SamplingConfig(constrained=False)` the model writes freely, and unparseable
output is passed to the browser, which counts it as an invalid action.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import torch

from webqa.env.answering import CITATION
from webqa.env.browser import Browser, matching_lines
from webqa.env.render import result_texts
from webqa.policy.constraints import (
    FIND, MIN_QUOTE_WORDS, QUOTE, SEARCH, AnswerGrammar, CitationEnding, action_grammar,
    rejected_pages,
)
from webqa.policy.expert_moves import quote_action
from webqa.policy.expert_text import find_needles, sentences_in_view
from webqa.policy.extractor import extract_answer
from webqa.policy.prompts import action_example, answer_example
from webqa.policy.reader import QuoteReader, draw, unquoted, unquoted_in_view
from webqa.policy.reading import MAX_ANSWER_TOKENS, MAX_ANSWER_WORDS, floor_quote, reading_prompt, reading_quotes
from webqa.policy.sampler import Sampler, mean_log_probabilities
from webqa.types import Episode, Quote, StepResult

# Called after every browser step with the browser's index in `browsers`, the action it took, the
# step's result, and the browser itself (read what you need at once: the next step changes it).
# Runs on the rollout's thread; an exception it raises stops the rollout (a UI cancels that way).
StepCallback = Callable[[int, str, StepResult, Browser], None]

CLICK = "Clicked on link "
LEAVING = ("Back", "End:", SEARCH, CLICK)  # actions that leave the page in view
BEST_OF_TEMPERATURE = 0.7  # the sampled episodes of best-of-n (see `SamplingConfig.best_of`)


@dataclass
class SamplingConfig:
    """How actions and answers are sampled."""

    temperature: float = 0.7  # 0 means greedy
    # The temperature of the reader's choices: whether to quote now and which sentence, and which run of
    # clauses answers. None: `temperature`, which then governs the model's actions and the clicks alone.
    reading_temperature: float | None = None
    # With several episodes, the first is greedy and only the others are sampled: the likeliest episode,
    # the one n=1 gives, stays among the candidates of best-of-n.
    greedy_first: bool = False
    top_p: float = 0.95
    max_action_tokens: int = 48
    max_answer_tokens: int = 96
    seed: int | None = None
    constrained: bool = True  # sample only tokens that keep the line valid (see webqa.policy.constraints)
    # How quotes are chosen:
    # - "reader": the policy's reader (`webqa.policy.reader`, `reader.json` in its folder), where it has
    #   one, decides on every page whether to quote a sentence in view and which; where it does not
    #   quote, the model acts, and a `Quote:` the model writes quotes the sentence the reader ranks first
    #   (the model's line stops at `Quote: `, its words being thrown away). A policy without a reader quotes
    #   as written.
    # - "likelihood": once the model writes `Quote:`, its likelihood (mean log-probability per token)
    #   chooses among the line it wrote and the whole sentences in view.
    # - "written": the line the model wrote.
    quotes: str = "reader"
    # When the model writes `Find in page:`, look for the question's most specific words on the page
    # instead (`specific_find`): the model's needles are mostly single common words, found many times.
    specific_finds: bool = True
    # Every episode starts with `Search <the question>`, and the passage of its top result (the floor,
    # what `rag` reads) is the first passage the answer step reads (`webqa.policy.reading.floor_quote`).
    # Off by default, with answers="read", until a trained answerer is measured on dev (issue 27).
    floor: bool = False
    # How the answer is written from the quotes:
    # - "read": the answerer (`webqa.policy.reading`) reads the floor and the quotes, each with its page's
    #   passage around it, and writes a short answer citing them; where it is not given, as "extract"
    #   (`webqa eval --systems policy-n1-read,script-read` measures it).
    # - "extract": the run of whole clauses of a quoted sentence that the policy's reader ranks first
    #   (`webqa.policy.extractor`); the model writes it where the policy has no reader.
    # - "model": the policy writes it (it mostly copies the first clauses of its first quote).
    answers: str = "extract"
    # When the model leaves a page it quoted nothing from (back, a click, a search, the end), the reader
    # takes a last look at what it read there and quotes its best sentence if its probability of quoting
    # exceeds this (None: no last look). The reader was fitted to an expert that never leaves the answer
    # unquoted; leaving, it is now or never.
    last_look: float | None = 0.25
    # Which result a click on a page of search results opens: "reader", the one the reader ranks first by
    # its title and snippet (the model clicks them in order: 0, back, 1, back, 2); "model", the one written.
    clicks: str = "reader"

    @classmethod
    def best_of(cls, n: int, **settings) -> "SamplingConfig":
        """The agent's sampling for n episodes: greedy for one; for several, the first greedy and the rest
        sampled at BEST_OF_TEMPERATURE, so that the candidates differ.

        Why 0.7: the hotter the sampled episodes, the more they differ from the greedy one, and the more
        best-of-n gains over it. Estimated exactly from pools of 8 sampled episodes per question on the 200 dev
        questions (best-of-4 with the greedy episode first, the reward model choosing; greedy alone 0.290):
        0.289 at 0.3, 0.301 at 0.5 and 0.315 at 0.7. Cooler episodes are faster (they more often share a state,
        whose prompt lockstep reads once), but at 0.3 best-of-4 gains nothing over the greedy episode.
        Sampling only the reader's choices while the model navigates greedily (`temperature=0,
        reading_temperature=0.7`) was cheaper but gained nothing either (0.290 both on all 200)."""
        return cls(**({"temperature": 0.0 if n == 1 else BEST_OF_TEMPERATURE, "greedy_first": n > 1} | settings))

    def temperatures(self, n: int) -> list[float]:
        """Each of n episodes' temperature."""
        return [0.0 if self.greedy_first and i == 0 else self.temperature for i in range(n)]

    @property
    def reader_temperature(self) -> float:
        """The temperature of the reader's choices: `reading_temperature`, or `temperature` where unset."""
        return self.temperature if self.reading_temperature is None else self.reading_temperature

    def reading_temperatures(self, n: int) -> list[float]:
        """Each of n episodes' temperature for the reader's choices."""
        return [0.0 if self.greedy_first and i == 0 else self.reader_temperature for i in range(n)]


def choose_quote(sampler: Sampler, browser: Browser, prompt: str, action: str, temperature: float = 0.0,
                 generator: torch.Generator | None = None) -> str:
    """The quote the policy finds likeliest after `prompt`: `action` (the `Quote: ...` it wrote) or a whole
    sentence in view (`SamplingConfig.quotes == "likelihood"`); sampled by likelihood when temperature > 0."""
    lines = [action] + [line for _, line in quotable_sentences(browser) if line != action]
    if len(lines) == 1:
        return action
    means = mean_log_probabilities(sampler, prompt, lines)
    if temperature <= 0:
        return lines[int(means.argmax())]
    return lines[draw(torch.softmax(means / temperature, 0), generator)]


def quotable_sentences(browser: Browser, partial: bool = False, earlier: Iterable[str] = (),
                       in_view: list[str] | None = None) -> list[tuple[str, str]]:
    """(sentence, `Quote:` line) for each whole sentence in view the browser would still take as a quote
    (none on a search page; none too long for the room left).

    The model's own quotes must be text on the screen (the grammar). With `partial`, a sentence the
    window's edge cuts counts too, read whole, and so do the `earlier` sentences read on this page,
    as the browser takes a quote from anywhere on its page: `Find in page` puts the line it finds on
    top, often in the middle of the sentence that answers, and the next `Find` moves on from it.
    `in_view`: `sentences_in_view(browser, partial=True)`, where the caller has it already.
    """
    page, settings, quotes = browser.page, browser.settings, browser.quotes
    if page is None or page.is_search_results:
        return []
    page_text = " ".join(page.plain_lines)
    if not partial:
        grammar = action_grammar(browser)
        lines = [(s, quote_action(s, page_text)) for s in unquoted_in_view(browser)]
        return [(s, line) for s, line in lines if grammar.complete(line)]
    room = settings.max_quote_chars - sum(len(q.text) for q in quotes) if len(quotes) < settings.max_quotes else 0
    if in_view is None:
        in_view = sentences_in_view(browser, partial=True)
    sentences = unquoted(browser, dict.fromkeys(in_view + list(earlier)))
    return [(s, quote_action(s, page_text)) for s in sentences if len(s) <= room and len(s.split()) >= MIN_QUOTE_WORDS]


def reader_quote(reader: QuoteReader, browser: Browser, written: str | None = None, temperature: float = 0.0,
                 generator: torch.Generator | None = None, earlier: Iterable[str] = (),
                 in_view: list[str] | None = None, threshold: float | None = None) -> str | None:
    """The reader's quote in this state, or None; it reads the sentences in view and the `earlier` ones
    read on this page (`in_view` as in `quotable_sentences`).

    Unasked (`written` None), the reader quotes the sentence it ranks first when it decides to: when its
    probability of quoting exceeds `threshold` (the reader's own by default), or, when temperature > 0,
    drawn with that probability shifted in log-odds so that `threshold` counts as even. When the model
    has `written` a `Quote:`, the reader chooses what: the sentence it ranks first (drawn from a softmax
    of its scores when temperature > 0).
    """
    quotable = quotable_sentences(browser, True, earlier, in_view)
    if not quotable:
        return None
    question, title, sentences = browser.episode.question, browser.page.title, [s for s, _ in quotable]
    if written is None:
        probability = reader.quote_probability(question, title, sentences)
        threshold = reader.threshold if threshold is None else threshold
        if temperature <= 0:
            decided = probability > threshold
        else:
            shifted = torch.sigmoid(torch.logit(torch.tensor(probability), eps=1e-6)
                                    - torch.logit(torch.tensor(threshold), eps=1e-6))
            decided = draw(torch.stack([1 - shifted, shifted]), generator) == 1
        if not decided:
            return None
    if temperature <= 0:
        return quotable[reader.choose(question, title, sentences)][1]
    scores = torch.tensor(reader.scores(question, title, sentences)) / temperature
    return quotable[draw(torch.softmax(scores, 0), generator)][1]


def reader_click(reader: QuoteReader, browser: Browser, temperature: float = 0.0,
                 generator: torch.Generator | None = None) -> str | None:
    """On a page of search results, a click on the result the reader ranks first by its title and snippet,
    among those not left already without a quote (drawn from a softmax of its scores when temperature > 0);
    None elsewhere or when none is left."""
    page = browser.page
    if page is None or not page.is_search_results:
        return None
    rejected = rejected_pages(browser)
    open_ = [i for i, link in enumerate(page.links) if link.url not in rejected]
    if not open_:
        return None
    texts = result_texts(page)
    scores = torch.tensor(reader.scores(browser.episode.question, "", [texts[i] for i in open_]))
    if temperature <= 0:
        return f"{CLICK}{open_[int(scores.argmax())]}"
    return f"{CLICK}{open_[draw(torch.softmax(scores / temperature, 0), generator)]}"


def specific_find(browser: Browser) -> str | None:
    """`Find in page:` with the question's words or word pairs (`find_needles`) that occur on the page
    the fewest times, among those not yet looked for as often as they occur since the page was opened
    (so repeated finds step through the matches, then move on); None when none is left."""
    page = browser.page
    if page is None or page.is_search_results:
        return None
    used: Counter[str] = Counter()
    for action in reversed(browser.episode.actions):
        if action.startswith(FIND):
            used[action[len(FIND):].strip()] += 1
        elif action.startswith((SEARCH, CLICK, "Back")):
            break
    options = []
    for order, needle in enumerate(find_needles(browser.episode.question)):
        hits = len(matching_lines(page.plain_lines, needle))
        if hits and used[needle] < hits:
            options.append((hits, order, needle))
    return f"{FIND}{min(options)[2]}" if options else None


def revise(action: str, browser: Browser, sampler: Sampler, config: SamplingConfig,
           generator: torch.Generator | None = None, earlier: list[str] | None = None,
           in_view: list[str] | None = None) -> str:
    """The action an episode takes where the model wrote `action`: the model navigates, and the parts
    `config` turns on do what it does poorly. A `Find in page:` looks for the question's most specific
    words; a `Quote:` quotes the sentence the reader ranks first; a click on search results opens the
    result the reader ranks first; leaving a page it quoted nothing from, the reader takes a last look.
    `earlier`: the sentences read on this page before; `in_view` as in `quotable_sentences`."""
    reader = sampler.reader if config.quotes == "reader" else None
    page, temperature, reading = browser.page, config.temperature, config.reader_temperature
    if page is None:
        return action
    if action.startswith(FIND) and config.specific_finds:
        return specific_find(browser) or action
    if action.startswith(QUOTE) and reader:
        return reader_quote(reader, browser, action, reading, generator, earlier or [], in_view) or action
    if action.startswith(QUOTE) and config.quotes == "likelihood":
        prompt = action_example(browser.observation(), "", sampler.prompt_format)[0]
        return choose_quote(sampler, browser, prompt, action, reading, generator)
    if action.startswith(CLICK) and page.is_search_results and reader and config.clicks == "reader":
        return reader_click(reader, browser, temperature, generator) or action
    if (action.startswith(LEAVING) and reader and config.last_look is not None
            and not any(quote.url == page.url for quote in browser.quotes)):
        return reader_quote(reader, browser, None, reading, generator, earlier or [], in_view,
                            config.last_look) or action
    return action


def shared_searches(browsers: list[Browser], actions: list[str]) -> list[str]:
    """`actions`, each `Search` worded as the first one of this step that its browser's backend is bound to
    answer alike (`search_key`: the local encyclopedia reads only a query's content words). Sampled episodes
    often write the greedy one's search in other words ("who wrote" for "Who wrote"); so worded, they stay
    in its state, whose next prompt lockstep reads once, and see the same results as they would have."""
    if sum(action.startswith(SEARCH) for action in actions) < 2:  # nothing to word alike (as with n=1)
        return actions
    first: dict[tuple, str] = {}
    worded = []
    for browser, action in zip(browsers, actions):
        key = getattr(browser.backend, "search_key", None)
        if action.startswith(SEARCH) and key is not None:
            action = first.setdefault((id(browser.backend), key(action[len(SEARCH):])), action)
        worded.append(action)
    return worded


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
            result = browser.step(f"{SEARCH}{question}")
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
        actions = [quote or next(written) for quote in read]
        for position, (index, browser) in enumerate(live):
            if read[position] is None:
                actions[position] = revise(actions[position], browser, sampler, configs[index], generator,
                                           earlier[index], in_view.get(index))
        actions = shared_searches([b for _, b in live], actions)
        for (index, browser), action in zip(live, actions):
            result = browser.step(action)
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
            if not CITATION.search(episode.answer or "") and sampler.reader is not None:
                episode.answer = extract_answer(sampler.reader, question, episode.quotes)
    elif sampler.reader is not None and config.answers in ("extract", "read"):
        for i, episode in zip(answering, episodes):
            episode.answer = extract_answer(sampler.reader, question, episode.quotes, readings[i], generator)
    elif answering:
        prompts = [answer_example(question, e.quotes, "")[0] for e in episodes]
        grammars = [AnswerGrammar(len(e.quotes)) for e in episodes] if config.constrained else None
        answers = sampler.sample(prompts, config.max_answer_tokens, [temperatures[i] for i in answering],
                                 config.top_p, generator, grammars)
        if config.constrained:
            answers = finish_answers(sampler, prompts, answers, [len(e.quotes) for e in episodes])
        for episode, text in zip(episodes, answers):
            episode.answer = text
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
