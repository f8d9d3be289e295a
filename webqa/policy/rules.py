"""The hand-made parts that act where the model acts poorly, each a small named function; each has its
ablation in `webqa eval --systems` and its switch in `SamplingConfig` (`webqa.policy.config`).

- `reader_quote` (the reader): on every page, whether to quote a sentence in view and which; where the model
  writes `Quote:`, the sentence the reader ranks first. Switch: `quotes="reader"`.
- `choose_quote` (the model's likelihood): the likeliest of the written quote and the sentences in view.
  Switch: `quotes="likelihood"`.
- `reader_click` (the reader): on search results, the result the reader ranks first. Switch: `clicks`.
- `specific_find` (rule "specific-find"): a `Find in page:` looks for the question's rarest words.
  Switch: `specific_finds`.
- last look (rule "last-look", in `revise`): leaving a page it quoted nothing from, the reader may quote.
  Switch: `last_look`.
- `shared_searches` (rule "shared-search"): a search worded as another episode's that the backend answers
  alike, so lockstep reads their shared state once.
- the floor (rule "floor", `webqa.policy.reading.floor_quote`): every episode first searches the question.
  Switch: `floor`.

`revise` applies them to the action the model wrote and says who chose the result (`Step.by`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import torch

from webqa.env.browser import Browser, matching_lines
from webqa.env.render import result_texts
from webqa.policy.config import SamplingConfig
from webqa.policy.constraints import FIND, MIN_QUOTE_WORDS, QUOTE, SEARCH, action_grammar, rejected_pages
from webqa.policy.prompts import action_example
from webqa.policy.reader import QuoteReader, draw, unquoted, unquoted_in_view
from webqa.policy.sampler import Sampler, mean_log_probabilities
from webqa.text import find_needles, quote_action, sentences_in_view

CLICK = "Clicked on link "
LEAVING = ("Back", "End:", SEARCH, CLICK)  # actions that leave the page in view


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
           in_view: list[str] | None = None) -> tuple[str, str]:
    """The action an episode takes where the model wrote `action`, and who chose it (`Step.by`): the model
    navigates, and the parts `config` turns on do what it does poorly. A `Find in page:` looks for the
    question's most specific words; a `Quote:` quotes the sentence the reader ranks first; a click on search
    results opens the result the reader ranks first; leaving a page it quoted nothing from, the reader takes
    a last look. `earlier`: the sentences read on this page before; `in_view` as in `quotable_sentences`."""
    reader = sampler.reader if config.quotes == "reader" else None
    page, temperature, reading = browser.page, config.temperature, config.reader_temperature
    if page is None:
        return action, "model"
    if action.startswith(FIND) and config.specific_finds:
        return _chosen(specific_find(browser), action, "rule:specific-find")
    if action.startswith(QUOTE) and reader:
        return _chosen(reader_quote(reader, browser, action, reading, generator, earlier or [], in_view), action,
                       "reader")
    if action.startswith(QUOTE) and config.quotes == "likelihood":
        prompt = action_example(browser.observation(), "", sampler.prompt_format)[0]
        return choose_quote(sampler, browser, prompt, action, reading, generator), "model"
    if action.startswith(CLICK) and page.is_search_results and reader and config.clicks == "reader":
        return _chosen(reader_click(reader, browser, temperature, generator), action, "reader")
    if (action.startswith(LEAVING) and reader and config.last_look is not None
            and not any(quote.url == page.url for quote in browser.quotes)):
        return _chosen(reader_quote(reader, browser, None, reading, generator, earlier or [], in_view,
                                    config.last_look), action, "rule:last-look")
    return action, "model"


def _chosen(replacement: str | None, action: str, by: str) -> tuple[str, str]:
    """(`replacement`, `by`) where a part replaced the model's `action`, else (`action`, "model")."""
    return (replacement, by) if replacement and replacement != action else (action, "model")


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
