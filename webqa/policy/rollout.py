"""Sampling browsing episodes from the policy, several in lockstep.

    sampler = Sampler(model, tokenizer)
    episodes = run_episodes(sampler, [Browser(corpus) for _ in range(4)], question, SamplingConfig())

Every step, the live episodes' observations go through the model together:
a prefill, then token-by-token decoding of all rows as one batch with a KV
cache until each row ends its line. Identical prompts (all episodes start from
the same observation) are prefilled once and their cache is shared. On CPU,
distinct prompts are prefilled one by one and their caches joined: padded to
one batch, prompts of unequal lengths cost more, and a prompt read alone can
start from the cache of the start it shares with a prompt read before, such as
the last step's observation (`webqa.policy.prefix_cache`).

By default each line is constrained (`webqa.policy.constraints`): the sampler
draws only among the likeliest tokens that keep the line a command the browser
would accept, or an answer whose citations name collected quotes. Where the
grammar leaves one way on (`Cl` can only go on as `icked on link`), those
tokens are read in the same forward pass as the token before them. With
`SamplingConfig(constrained=False)` the model writes freely, and unparseable
output is passed to the browser, which counts it as an invalid action.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import torch
from torch.nn.functional import pad

from webqa.env.browser import Browser, matching_lines
from webqa.env.render import result_texts
from webqa.policy.constraints import (
    FIND, MIN_QUOTE_WORDS, QUOTE, SEARCH, AnswerGrammar, CitationEnding, LineGrammar, action_grammar,
    rejected_pages,
)
from webqa.policy.expert_moves import quote_action
from webqa.policy.expert_text import find_needles, sentences_in_view
from webqa.policy.extractor import extract_answer
from webqa.policy.prefix_cache import PrefixCache
from webqa.policy.prompts import PLAIN, PromptFormat, action_example, answer_example
from webqa.policy.reader import QuoteReader, draw, unquoted, unquoted_in_view
from webqa.types import Episode, StepResult

# Called after every browser step with the browser's index in `browsers`, the action it took, the
# step's result, and the browser itself (read what you need at once: the next step changes it).
# Runs on the rollout's thread; an exception it raises stops the rollout (a UI cancels that way).
StepCallback = Callable[[int, str, StepResult, Browser], None]

CLICK = "Clicked on link "
LEAVING = ("Back", "End:", SEARCH, CLICK)  # actions that leave the page in view
BEST_OF_TEMPERATURE = 0.5  # the sampled episodes of best-of-n (see `SamplingConfig.best_of`)


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
    # How the answer is written from the quotes:
    # - "extract": the run of whole clauses of a quoted sentence that the policy's reader ranks first
    #   (`webqa.policy.extractor`); the model writes it where the policy has no reader.
    # - "model": the model writes it (it mostly copies the first clauses of its first quote).
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

        Why 0.5 (the 200 dev questions, best-of-4 against the greedy episode's 0.290 and 4.28 s median):
        at 0.7 it scored 0.305-0.310 in a median 11.56 s a question (2.38x the greedy episode's seconds,
        median per question); at 0.5, 0.300 in 9.16 s (1.85x): as accurate within a question or two, and faster.
        Sampling only the reader's choices while the model navigates greedily (`temperature=0,
        reading_temperature=0.7`) was cheaper still (1.89x against 0.7's 2.30x in that run) but gained
        nothing over the greedy episode (0.290 both)."""
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


@dataclass
class SamplerStats:
    """Token counts and seconds, for the benchmark."""

    prefill_tokens: int = 0
    prefill_padded_tokens: int = 0  # tokens computed: a batch pads prompts to the longest; reused starts are not read
    prefill_reused_tokens: int = 0  # tokens whose keys and values came from an earlier prompt (`PrefixCache`)
    prefill_seconds: float = 0.0
    decode_tokens: int = 0  # rows times decoding steps
    forced_tokens: int = 0  # tokens a grammar forced, read in the step of the token before them
    decode_seconds: float = 0.0


@dataclass
class Sampler:
    """Batched sampling of one line per prompt, with a KV cache."""

    model: torch.nn.Module
    tokenizer: object
    prompt_format: PromptFormat = PLAIN  # how the policy reads observations (saved with it)
    reader: QuoteReader | None = None  # the policy's quote reader (saved with it), if it has one
    stats: SamplerStats = field(default_factory=SamplerStats)
    # Constrained sampling checks the likeliest tokens first, then more, then (None) the whole vocabulary.
    candidates: tuple[int | None, ...] = (32, 1024, None)
    # How distinct prompts are read: "batch" (padded to the longest), "one by one" (no padding; their caches
    # joined after), or "auto" (`_reads_one_by_one`).
    prefill: str = "auto"
    # Prompts read one by one start from the cache of the longest start they share with a prompt of this
    # call or the last one (`PrefixCache`); None turns that off.
    prefixes: PrefixCache | None = field(default_factory=PrefixCache)

    def __post_init__(self):
        self.device = next(self.model.parameters()).device
        vocab = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        # A line ends at end-of-sequence or at any token that contains a newline.
        newline_ids = [i for i, token in enumerate(vocab) if token and ("\n" in token or "Ċ" in token)]
        stop = set(newline_ids) | {self.tokenizer.eos_token_id}
        self.stop_ids = torch.tensor(sorted(i for i in stop if i is not None), device=self.device)
        self._stop = set(self.stop_ids.tolist())
        self._texts: list[str] | None = None  # each token's text, for the grammars
        self._bytes: list[bytes] | None = None  # each token's bytes, for characters split across tokens

    def _reads_one_by_one(self, lengths: list[int]) -> bool:
        """Whether to prefill prompts of these token lengths one by one: as set, or ("auto") on CPU when
        padding them to one batch would add more than 15% to the tokens computed, or when prompts are read
        from the starts they share with earlier ones (`prefixes`), which only works one by one. On 2 cores a
        token read alone costs about 10% more than in a batch, and a padding token costs as much as a real one.
        """
        if self.prefill != "auto":
            return self.prefill == "one by one"
        if self.device.type != "cpu":
            return False
        return self.prefixes is not None or max(lengths) * len(lengths) > 1.15 * sum(lengths)

    def _prefill_batch(self, prompts: list[list[int]]) -> tuple[object, torch.Tensor, torch.Tensor]:
        """(cache, last logits, attention mask) of the prompts (token ids) read as one left-padded batch."""
        encoded = self.tokenizer.pad({"input_ids": prompts}, return_tensors="pt").to(self.device)
        mask = encoded["attention_mask"]
        out = self.model(input_ids=encoded["input_ids"], attention_mask=mask,
                         position_ids=(mask.cumsum(-1) - 1).clamp(min=0), use_cache=True, logits_to_keep=1)
        self.stats.prefill_padded_tokens += mask.numel()
        return out.past_key_values, out.logits[:, -1], mask

    def _prefill_one_by_one(self, prompts: list[list[int]]) -> tuple[object, torch.Tensor, torch.Tensor]:
        """As `_prefill_batch`, but each prompt is read alone and the caches are then joined, left-padded
        with zeros that the mask hides. On CPU a padded batch of prompts of unequal lengths costs more than
        its rows one by one (4 observations of 129-428 tokens: 2.4 s against 1.5 s). Each prompt is read
        from the longest start it shares with a prompt read before (`prefixes`). A model whose cache is
        not a plain list of keys and values per layer is read as a batch, from then on."""
        if self.prefixes is not None:
            self.prefixes.next_call()
        outs = []
        for ids in prompts:
            reused, cache = self.prefixes.longest_start(ids) if self.prefixes is not None else (0, None)
            row = torch.tensor([ids[reused:]], device=self.device)
            outs.append(self.model(input_ids=row, past_key_values=cache, use_cache=True, logits_to_keep=1))
            layers = getattr(outs[-1].past_key_values, "layers", None)
            if not (layers and all(type(layer).__name__ == "DynamicLayer" for layer in layers)):
                self.prefill, self.prefixes = "batch", None
                return self._prefill_batch(prompts)
            if self.prefixes is not None:
                self.prefixes.remember(ids, outs[-1].past_key_values)
            self.stats.prefill_reused_tokens += reused
            self.stats.prefill_padded_tokens += len(ids) - reused
        cache, layers = outs[0].past_key_values, outs[0].past_key_values.layers
        width = max(len(ids) for ids in prompts)
        mask = torch.zeros(len(prompts), width, dtype=torch.long, device=self.device)
        for index, ids in enumerate(prompts):
            mask[index, width - len(ids):] = 1
        if len(prompts) > 1:
            for number, layer in enumerate(layers):
                for name in ("keys", "values"):
                    parts = [getattr(out.past_key_values.layers[number], name) for out in outs]
                    setattr(layer, name, torch.cat([pad(part, (0, 0, width - part.shape[-2], 0)) for part in parts]))
        return cache, torch.cat([out.logits[:, -1] for out in outs]), mask

    def _token_texts(self) -> list[str]:
        if self._texts is None:
            self._texts = [self.tokenizer.decode([i]) for i in range(len(self.tokenizer))]
        return self._texts

    @torch.no_grad()
    def sample(self, prompts: list[str], max_new_tokens: int, temperature: float | list[float] = 0.7,
               top_p: float = 0.95, generator: torch.Generator | None = None,
               grammars: list[LineGrammar | None] | None = None,
               stop_at: list[str | None] | None = None) -> list[str]:
        """One line of text for each prompt; where `grammars[i]` is given, a line it allows.
        `temperature`: one for all prompts, or one per prompt. `stop_at[i]`, where given: a start of
        line after which row i stops decoding (the line is then that start and what its last token added),
        for a line whose rest the caller would throw away."""
        temperatures = temperature if isinstance(temperature, list) else [temperature] * len(prompts)
        unique = list(dict.fromkeys(prompts))
        start = time.perf_counter()
        ids = self.tokenizer(unique, add_special_tokens=False)["input_ids"]
        read = self._prefill_one_by_one if self._reads_one_by_one([len(row) for row in ids]) else self._prefill_batch
        cache, logits, mask = read(ids)
        self.stats.prefill_tokens += int(mask.sum())
        self.stats.prefill_seconds += time.perf_counter() - start
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: count real tokens only
        if len(unique) < len(prompts):  # share the prefill of identical prompts
            rows = torch.tensor([unique.index(p) for p in prompts], device=self.device)
            cache.reorder_cache(rows)
            logits, mask, positions = logits[rows], mask[rows], positions[rows]
        next_position = positions[:, -1] + 1

        outputs: list[list[int]] = [[] for _ in prompts]
        live = list(range(len(prompts)))  # which prompt each batch row belongs to
        start = time.perf_counter()
        for _ in range(max_new_tokens):
            logits = logits.float()
            if grammars is not None:
                logits = self._constrain(logits, [grammars[i] for i in live], [outputs[i] for i in live])
            tokens = _pick(logits, [temperatures[i] for i in live], top_p, generator)
            finished = torch.isin(tokens, self.stop_ids)
            chunks = []  # per row, the tokens to read next: the one drawn, then any the grammar forces
            for row, token in enumerate(tokens.tolist()):
                i = live[row]
                if token != self.tokenizer.eos_token_id:  # a newline token may carry text before its newline
                    outputs[i].append(token)
                forced = [] if finished[row] or grammars is None else self._forced(grammars[i], outputs[i])
                forced = forced[: max_new_tokens - len(outputs[i])]
                outputs[i] += forced
                self.stats.forced_tokens += len(forced)
                chunks.append([token] + forced)
                if stop_at is not None and stop_at[i] is not None and not finished[row]:
                    finished[row] = self._line(outputs[i]).startswith(stop_at[i])
                finished[row] |= len(outputs[i]) >= max_new_tokens  # forced tokens count too
            self.stats.decode_tokens += len(live)
            keep = (~finished).nonzero().flatten()
            if len(keep) == 0:
                break
            if len(keep) < len(live):  # drop finished rows from the batch
                cache.batch_select_indices(keep)
                live = [live[row] for row in keep.tolist()]
                chunks, mask, next_position = [chunks[row] for row in keep.tolist()], mask[keep], next_position[keep]
            # Rows read chunks of different lengths as one batch: the shorter ones are padded on the right,
            # and the mask hides the padding's keys and values from every later token.
            width = max(map(len, chunks))
            inputs = torch.full((len(live), width), self.tokenizer.pad_token_id, device=self.device)
            read = torch.zeros(len(live), width, dtype=mask.dtype, device=self.device)
            for row, chunk in enumerate(chunks):
                inputs[row, : len(chunk)] = torch.tensor(chunk, device=self.device)
                read[row, : len(chunk)] = 1
            mask = torch.cat([mask, read], dim=1)
            positions = next_position[:, None] + torch.arange(width, device=self.device)
            out = self.model(input_ids=inputs, attention_mask=mask, position_ids=positions, past_key_values=cache,
                             use_cache=True)
            lengths = read.sum(1)
            logits = out.logits[torch.arange(len(live), device=self.device), lengths - 1]
            next_position = next_position + lengths
        self.stats.decode_seconds += time.perf_counter() - start
        return [self._line(ids) for ids in outputs]

    @torch.no_grad()
    def score(self, prompt: str, lines: list[str]) -> list[tuple[float, int]]:
        """(log-probability, tokens) of each of `lines` as the model's next line after `prompt`.

        The prompt is read once; all lines follow it in one batch over its shared cache.
        Each line is scored with the end-of-sequence token that ends it, as trained.
        """
        if not lines:
            return []
        eos = self.tokenizer.eos_token_id
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(self.device)
        out = self.model(input_ids=prompt_ids, use_cache=True)
        cache, first = out.past_key_values, out.logits[0, -1].float().log_softmax(-1)
        rows = [self.tokenizer(line, add_special_tokens=False)["input_ids"] + [eos] for line in lines]
        width, count, length = max(map(len, rows)), len(rows), prompt_ids.shape[1]
        ids = torch.full((count, width), eos, device=self.device)
        mask = torch.zeros(count, length + width, dtype=torch.long, device=self.device)
        mask[:, :length] = 1
        for row, tokens in enumerate(rows):
            ids[row, : len(tokens)] = torch.tensor(tokens, device=self.device)
            mask[row, length : length + len(tokens)] = 1
        cache.reorder_cache(torch.zeros(count, dtype=torch.long, device=self.device))
        positions = torch.arange(length, length + width, device=self.device).expand(count, -1)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache).logits
        # Token t of a line is predicted by the prompt's last position (t = 0) or the line's token t - 1.
        follow = logits[:, :-1].float().log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        return [(float(first[tokens[0]] + follow[row, : len(tokens) - 1].sum()), len(tokens))
                for row, tokens in enumerate(rows)]

    def _forced(self, grammar: LineGrammar | None, ids: list[int]) -> list[int]:
        """The tokens of the text that `grammar` forces after the line `ids` (see `ActionGrammar.forced`):
        read in one forward pass with the token drawn before them, rather than one pass each."""
        forced = getattr(grammar, "forced", None)
        if forced is None:
            return []
        so_far = self.tokenizer.decode(ids, skip_special_tokens=True)
        if so_far.endswith("\ufffd") or "\n" in so_far:  # inside a character, or the line has ended
            return []
        text = forced(so_far)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def _line(self, ids: list[int]) -> str:
        # Cut at the line's end, and drop a character left unfinished when the tokens ran out.
        return self.tokenizer.decode(ids, skip_special_tokens=True).split("\n")[0].rstrip("\ufffd").strip()

    def _constrain(self, logits: torch.Tensor, grammars: list[LineGrammar | None], outputs: list[list[int]]):
        """`logits` with -inf for every token after which a row's grammar would not allow its line.

        The likeliest tokens are checked first (`candidates`); when no token at all fits (the
        grammar has no way on), the row's line ends as it is, and the browser says what is wrong.
        """
        texts = self._token_texts()
        masked = logits.clone()
        for row, grammar in enumerate(grammars):
            if grammar is None:
                continue
            so_far = self.tokenizer.decode(outputs[row], skip_special_tokens=True)
            allowed: list[int] = []
            for count in self.candidates:
                count = logits.shape[-1] if count is None else min(count, logits.shape[-1])
                ranked = logits[row].topk(count).indices.tolist()
                allowed = [t for t in ranked if self._fits(grammar, so_far, outputs[row], t, texts[t])]
                if allowed:
                    break
            keep = torch.tensor(allowed or [self.tokenizer.eos_token_id], device=logits.device)
            masked[row] = float("-inf")
            masked[row, keep] = logits[row, keep]
        return masked

    def _fits(self, grammar: LineGrammar, so_far: str, ids: list[int], token: int, piece: str) -> bool:
        """Whether the line stays valid with `token` next (a stop token: whether it may end here)."""
        if token in self._stop:
            return not so_far.endswith("\ufffd") and grammar.complete(so_far + piece.split("\n")[0])
        if "\ufffd" in piece or so_far.endswith("\ufffd"):  # inside a character several tokens long
            return self._fits_bytes(grammar, ids + [token])
        return grammar.allows(so_far + piece)

    def _fits_bytes(self, grammar: LineGrammar, ids: list[int]) -> bool:
        """`_fits` at the byte level, for a line that ends inside a character or finishes one."""
        raw = b"".join(self._token_bytes()[i] for i in ids)
        try:
            return grammar.allows(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            if error.reason != "unexpected end of data":
                return False  # bytes that can never make a character
            stem, pending = raw[: error.start].decode("utf-8"), raw[error.start :]
            wide = grammar.wide_characters()
            if wide is None:
                return grammar.allows(stem)
            return any(char.encode("utf-8").startswith(pending) and grammar.allows(stem + char) for char in wide)

    def _token_bytes(self) -> list[bytes]:
        """The bytes each token stands for (byte-level BPE, or SentencePiece with byte tokens)."""
        if self._bytes is None:
            byte_of = {char: byte for byte, char in byte_level_alphabet().items()}
            self._bytes = []
            for token in self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer)))):
                token = token or ""
                if (match := re.fullmatch(r"<0x([0-9A-Fa-f]{2})>", token)) is not None:
                    self._bytes.append(bytes([int(match.group(1), 16)]))
                elif all(char in byte_of for char in token):
                    self._bytes.append(bytes(byte_of[char] for char in token))
                else:
                    self._bytes.append(token.replace("\u2581", " ").encode("utf-8"))
        return self._bytes


def byte_level_alphabet() -> dict[int, str]:
    """The printable character that byte-level BPE (GPT-2, SmolLM2) writes for each byte."""
    kept = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    shifted = [b for b in range(256) if b not in kept]  # the rest move past 255, in order
    return {b: chr(b) for b in kept} | {b: chr(256 + n) for n, b in enumerate(shifted)}


def _pick(logits: torch.Tensor, temperatures: list[float], top_p: float,
          generator: torch.Generator | None) -> torch.Tensor:
    """Each row's token: greedy at temperature 0, else nucleus sampling."""
    greedy = logits.argmax(-1)
    if all(t <= 0 for t in temperatures):
        return greedy
    rows = torch.tensor([t if t > 0 else 1.0 for t in temperatures], dtype=logits.dtype, device=logits.device)
    probs = torch.softmax(logits / rows[:, None], dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    outside = sorted_probs.cumsum(-1) - sorted_probs > top_p  # keep the smallest set reaching top_p
    sorted_probs = sorted_probs.masked_fill(outside, 0.0)
    choice = torch.multinomial(sorted_probs, 1, generator=generator)
    sampled = order.gather(-1, choice).squeeze(-1)
    return torch.where(torch.tensor([t <= 0 for t in temperatures], device=logits.device), greedy, sampled)


def mean_log_probabilities(sampler: Sampler, prompt: str, lines: list[str]) -> torch.Tensor:
    """Each line's log-probability per token as the policy's next line (`Sampler.score`), so that
    long and short lines compare; `argmax` gives the first of equals."""
    return torch.tensor([log_probability / count for log_probability, count in sampler.score(prompt, lines)])


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


def run_episodes(sampler: Sampler, browsers: list[Browser], question: str,
                 config: SamplingConfig | None = None, on_step: StepCallback | None = None) -> list[Episode]:
    """Browse with every browser in lockstep, then write each episode's answer from its quotes.

    `on_step`, when given, is called after each browser step (see `StepCallback`).
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
        for (index, browser), action in zip(live, actions):
            result = browser.step(action)
            if on_step is not None:
                on_step(index, action, result, browser)
    # WebGPT answers from whatever was quoted, also when the actions ran out.
    answering = [i for i, b in enumerate(browsers) if b.quotes and b.episode.end in ("Answer", "out of actions")]
    if sampler.reader is not None and config.answers == "extract":
        for i in answering:
            browsers[i].episode.answer = extract_answer(sampler.reader, question, browsers[i].quotes,
                                                        readings[i], generator)
    elif answering:
        prompts = [answer_example(question, browsers[i].quotes, "")[0] for i in answering]
        grammars = [AnswerGrammar(len(browsers[i].quotes)) for i in answering] if config.constrained else None
        answers = sampler.sample(prompts, config.max_answer_tokens, [temperatures[i] for i in answering],
                                 config.top_p, generator, grammars)
        if config.constrained:
            answers = finish_answers(sampler, prompts, answers, [len(browsers[i].quotes) for i in answering])
        for i, text in zip(answering, answers):
            browsers[i].episode.answer = text
    return [b.episode for b in browsers]


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
