"""The `script` navigator: the agent's pipeline with a fixed script in place of the language model.

An ablation (`webqa eval --systems script`) that tells whether the behavior-cloned navigator earns its
place: every choice the model makes is replaced by one line of script, and the parts the model shares
with it (the reader, the specific finds, the answer extractor) stay as they are.

1. `Search <question>`, the question as asked;
2. open the result the reader ranks first by its title and snippet (`reader_click`);
3. on that page, quote when the reader decides to (`reader_quote`), else `Find in page:` the
   question's most specific words still left (`specific_find`), until the reader quotes or the
   finds run out;
4. if nothing was quoted, quote the sentence the reader ranks first among all those read on the page;
5. `End: Answer`; with an answerer (as the agent has), it reads the floor (the passage of the top
   result of step 1) and the quotes and writes the answer (`webqa.policy.reading`), as the agent's
   answer step does; without one, the answer is extracted from the quotes (`extract_answer`).

No language model navigates: an episode takes milliseconds, and the answerer's reading about two
seconds.
"""

from __future__ import annotations

from webqa.env.browser import Browser
from webqa.policy.extractor import extract_answer
from webqa.policy.reader import QuoteReader
from webqa.policy.reading import floor_quote, reading_quotes
from webqa.policy.constraints import QUOTE
from webqa.policy.rollout import read_answers
from webqa.policy.rules import reader_click, reader_quote, specific_find
from webqa.policy.sampler import Sampler
from webqa.text import sentences_in_view
from webqa.types import Episode

END = "End: Answer"


def script_episode(reader: QuoteReader, browser: Browser, question: str,
                   answerer: Sampler | None = None) -> Episode:
    """One scripted episode for `question` in `browser`; its answer is set when it quoted anything, or,
    with an answerer, when the question's search found anything."""
    browser.reset(question)
    browser.step(f"Search {question}", by="script")
    floor = floor_quote(browser.results)
    click = reader_click(reader, browser)
    if click is not None:
        browser.step(click, by="reader")
    read: dict[str, None] = {}  # the sentences seen on the page, in order
    page = browser.page
    on_page = page is not None and not page.is_search_results
    while on_page and not browser.done and browser.actions_left > 2:  # room to quote and end
        in_view = sentences_in_view(browser, partial=True)
        read.update(dict.fromkeys(in_view))
        quote = reader_quote(reader, browser, None, in_view=in_view)
        if quote is not None:
            browser.step(quote, by="reader")
            break
        find = specific_find(browser)
        if find is None:
            break
        browser.step(find, by="rule:specific-find")
    if on_page and not browser.quotes and not browser.done:
        # The reader ranks every sentence read and quotes its first (asked: a `Quote:` was "written").
        quote = reader_quote(reader, browser, QUOTE, earlier=list(read))
        if quote is not None:
            browser.step(quote, by="reader")
    if not browser.done:
        browser.step(END, by="script")
    episode = browser.episode
    if answerer is not None and (floor or browser.quotes):
        episode.quotes = reading_quotes(floor, browser.quotes)
        read_answers(answerer, question, [episode], [0.0])
        episode.answered_by = "model"
    elif browser.quotes:
        episode.answer = extract_answer(reader, question, browser.quotes)
        episode.answered_by = "extractor"
    return episode
