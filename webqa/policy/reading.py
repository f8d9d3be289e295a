"""The answer step (WebGPT's): a language model reads the quotes and writes a short answer citing them.

After browsing, the answerer reads the question and the numbered quotes, each as the passage of its
page around it (`Quote.context`, at most READ_WORDS words), and writes the answer phrase with the
number of the passage that says it: "the Danube [1]". The first passage is always the floor: the
passage of the question's top search result, which `rag` reads too (`floor_quote`), so browsing can
only add to what the answer rests on.

The answerer is the base model with its own LoRA adapter (`webqa/data/answerer`, trained by
`webqa train answer` on examples from `webqa.policy.reading_data`); without one it is the base model
reading zero-shot. The prompt uses the model's chat template, as the base model was tuned on.

    answerer = load_answerer()
    prompt = reading_prompt(answerer.tokenizer, question, quotes)
    answerer.sample([prompt], MAX_ANSWER_TOKENS, temperature=0.0, grammars=[AnswerGrammar(len(quotes))])
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from webqa.env.answering import READ_WORDS
from webqa.paths import DATA_DIR
from webqa.policy.model import load_model, load_policy
from webqa.policy.sampler import Sampler
from webqa.types import Quote, SearchResult

SHIPPED_ANSWERER = DATA_DIR / "answerer"
MAX_PASSAGES = 4  # the floor and at most three of the agent's quotes
MAX_ANSWER_TOKENS = 32
MAX_ANSWER_WORDS = 20
INSTRUCTION = ("Read the passages and answer the question in a few words taken from them. After the answer, "
               "write the number of the passage that says it, as [1].")


def floor_quote(results: list[SearchResult]) -> Quote | None:
    """The passage of the top search result, as a quote the answer step took itself (`by="floor"`)."""
    if not results or not (results[0].passage or results[0].snippet):
        return None
    top = results[0]
    text = " ".join((top.passage or top.snippet).split()[:READ_WORDS])
    return Quote(title=top.title, url=top.url, text=text, context=text, by="floor")


def reading_quotes(floor: Quote | None, quotes: list[Quote]) -> list[Quote]:
    """What the answer step reads: the floor first, then the agent's quotes that it does not already hold,
    at most MAX_PASSAGES in all."""
    read = [floor] if floor is not None else []
    for quote in quotes:
        if floor is not None and quote.url == floor.url and quote.text in floor.text:
            continue
        read.append(quote)
    return read[:MAX_PASSAGES]


def passage_of(quote: Quote) -> str:
    """The text the answer step reads for a quote: its context, else the quote, at most READ_WORDS words."""
    return " ".join((quote.context or quote.text).split()[:READ_WORDS])


def reading_text(question: str, passages: list[tuple[str, str]]) -> str:
    """The user's turn of the reading prompt: the instruction, the numbered (title, passage)s, the question."""
    numbered = "\n\n".join(f"[{number}] {title}: {passage}" for number, (title, passage) in enumerate(passages, 1))
    return f"{INSTRUCTION}\n\n{numbered}\n\nQuestion: {question}"


def reading_prompt(tokenizer, question: str, quotes: list[Quote]) -> str:
    """The whole prompt for the answerer, ending where its answer begins."""
    if not quotes:
        raise ValueError("the answer step needs at least one passage")
    text = reading_text(question, [(quote.title, passage_of(quote)) for quote in quotes])
    if getattr(tokenizer, "chat_template", None) is None:  # a model without one (the tests' tiny model)
        return f"{text}\n♦Answer\n"
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                         add_generation_prompt=True)


@lru_cache(maxsize=2)
def load_answerer(path: str | None = None):
    """The answerer as a Sampler: `path` (an adapter folder or a model), else the shipped adapter, else the
    base model (zero-shot)."""
    folder = Path(path) if path else SHIPPED_ANSWERER
    if (folder / "adapter_config.json").exists():
        model, tokenizer = load_policy(folder)
    else:
        model, tokenizer = load_model(path)  # None: the default base model
    return Sampler(model, tokenizer)
