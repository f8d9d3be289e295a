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
5. `End: Answer`, the answer extracted from the quotes (`extract_answer`).

No language model is called: an episode takes milliseconds.
"""

from __future__ import annotations

from webqa.env.browser import Browser
from webqa.policy.expert_text import sentences_in_view
from webqa.policy.extractor import extract_answer
from webqa.policy.reader import QuoteReader
from webqa.policy.rollout import QUOTE, reader_click, reader_quote, specific_find
from webqa.types import Episode

END = "End: Answer"


def script_episode(reader: QuoteReader, browser: Browser, question: str) -> Episode:
    """One scripted episode for `question` in `browser`; its answer is set when it quoted anything."""
    browser.reset(question)
    browser.step(f"Search {question}")
    click = reader_click(reader, browser)
    if click is not None:
        browser.step(click)
    read: dict[str, None] = {}  # the sentences seen on the page, in order
    page = browser.page
    on_page = page is not None and not page.is_search_results
    while on_page and not browser.done and browser.actions_left > 2:  # room to quote and end
        in_view = sentences_in_view(browser, partial=True)
        read.update(dict.fromkeys(in_view))
        quote = reader_quote(reader, browser, None, in_view=in_view)
        if quote is not None:
            browser.step(quote)
            break
        find = specific_find(browser)
        if find is None:
            break
        browser.step(find)
    if on_page and not browser.quotes and not browser.done:
        # The reader ranks every sentence read and quotes its first (asked: a `Quote:` was "written").
        quote = reader_quote(reader, browser, QUOTE, earlier=list(read))
        if quote is not None:
            browser.step(quote)
    if not browser.done:
        browser.step(END)
    episode = browser.episode
    if browser.quotes:
        episode.answer = extract_answer(reader, question, browser.quotes)
    return episode
