"""Batched sampling of one line per prompt, with a KV cache: the policy's decoder.

    sampler = Sampler(model, tokenizer)
    sampler.sample(prompts, max_new_tokens=48, temperature=[0.0, 0.5], grammars=grammars)

Every call reads its prompts in a prefill, then decodes all rows token by token
as one batch with a KV cache until each row ends its line. Identical prompts
(lockstep episodes often share a state) are prefilled once and their cache is
shared, and they share one row of the decoding batch until their lines draw
apart. On CPU, distinct prompts are prefilled one by one and their caches
joined: padded to one batch, prompts of unequal lengths cost more, and a prompt
read alone can start from the cache of the start it shares with a prompt read
before, such as the last step's observation (`webqa.policy.prefix_cache`).

Where a grammar is given (`webqa.policy.constraints`), the sampler draws only
among the likeliest tokens that keep the line one the grammar allows. Where the
grammar leaves one way on (`Cl` can only go on as `icked on link`), those tokens
are read in the same forward pass as the token before them.
"""

from __future__ import annotations

import inspect
import os
import re
import time
from dataclasses import dataclass, field

import torch
from torch.nn.functional import pad

from webqa.policy.constraints import LineGrammar
from webqa.policy.prefix_cache import PrefixCache
from webqa.policy.prompts import PLAIN, PromptFormat
from webqa.policy.model import load_policy
from webqa.policy.reader import QuoteReader, load_reader


def cache_keyword(model: torch.nn.Module) -> str:
    """The keyword under which `model.forward` takes a KV cache: `cache` since transformers 5 renamed it
    (the old name is to go in 5.40), `past_key_values` before."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def output_cache(out) -> object:
    """The KV cache of a model's output, under either name (see `cache_keyword`)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


@dataclass
class SamplerStats:
    """Token counts and seconds, for the benchmark."""

    prefill_tokens: int = 0
    prefill_padded_tokens: int = 0  # tokens computed: a batch pads prompts to the longest; reused starts are not read
    prefill_reused_tokens: int = 0  # tokens whose keys and values came from an earlier prompt (`PrefixCache`)
    prefill_seconds: float = 0.0
    decode_tokens: int = 0  # tokens drawn: prompts decoding times decoding steps
    decode_rows_read: int = 0  # rows the decoding passes read: prompts with the same line so far share one
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
        # A line ends at end-of-sequence, at any other special token (a chat model's turn markers: a model
        # that starts a new turn has ended its answer), or at any token that contains a newline.
        newline_ids = [i for i, token in enumerate(vocab) if token and ("\n" in token or "Ċ" in token)]
        self._special = {self.tokenizer.eos_token_id, *self.tokenizer.all_special_ids} - {None}
        stop = set(newline_ids) | self._special
        self.stop_ids = torch.tensor(sorted(stop), device=self.device)
        self._stop = set(self.stop_ids.tolist())
        self._texts: list[str] | None = None  # each token's text, for the grammars
        self._bytes: list[bytes] | None = None  # each token's bytes, for characters split across tokens
        self._cache_keyword = cache_keyword(self.model)

    def _forward(self, cache=None, **inputs) -> tuple[torch.Tensor, object]:
        """(logits, KV cache) of one forward pass of the model over `inputs`, reading on from `cache`."""
        out = self.model(**inputs, **{self._cache_keyword: cache}, use_cache=True)
        return out.logits, output_cache(out)

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
        logits, cache = self._forward(input_ids=encoded["input_ids"], attention_mask=mask,
                                      position_ids=(mask.cumsum(-1) - 1).clamp(min=0), logits_to_keep=1)
        self.stats.prefill_padded_tokens += mask.numel()
        return cache, logits[:, -1], mask

    def _prefill_one_by_one(self, prompts: list[list[int]]) -> tuple[object, torch.Tensor, torch.Tensor]:
        """As `_prefill_batch`, but each prompt is read alone and the caches are then joined, left-padded
        with zeros that the mask hides. On CPU a padded batch of prompts of unequal lengths costs more than
        its rows one by one (4 observations of 129-428 tokens: 2.4 s against 1.5 s). Each prompt is read
        from the longest start it shares with a prompt read before (`prefixes`). A model whose cache is
        not a plain list of keys and values per layer is read as a batch, from then on."""
        if self.prefixes is not None:
            self.prefixes.next_call()
        outs = []  # (logits, cache) of each prompt
        for ids in prompts:
            reused, cache = self.prefixes.longest_start(ids) if self.prefixes is not None else (0, None)
            row = torch.tensor([ids[reused:]], device=self.device)
            logits, cache = self._forward(cache, input_ids=row, logits_to_keep=1)
            layers = getattr(cache, "layers", None)
            if not (layers and all(type(layer).__name__ == "DynamicLayer" for layer in layers)):
                self.prefill, self.prefixes = "batch", None
                return self._prefill_batch(prompts)
            if self.prefixes is not None:
                self.prefixes.remember(ids, cache)
            outs.append((logits, cache))
            self.stats.prefill_reused_tokens += reused
            self.stats.prefill_padded_tokens += len(ids) - reused
        cache = outs[0][1]
        layers = cache.layers
        width = max(len(ids) for ids in prompts)
        mask = torch.zeros(len(prompts), width, dtype=torch.long, device=self.device)
        for index, ids in enumerate(prompts):
            mask[index, width - len(ids):] = 1
        if len(prompts) > 1:
            for number, layer in enumerate(layers):
                for name in ("keys", "values"):
                    parts = [getattr(out_cache.layers[number], name) for _, out_cache in outs]
                    setattr(layer, name, torch.cat([pad(part, (0, 0, width - part.shape[-2], 0)) for part in parts]))
        return cache, torch.cat([logits[:, -1] for logits, _ in outs]), mask

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
        next_position = positions[:, -1] + 1
        # Each batch row is one distinct line so far: prompts that are identical, and have drawn the same
        # tokens since, share a row (lockstep episodes often share a state, and a sampled line mostly draws
        # what the greedy one does). `row_of[i]` is prompt i's row; a row splits where its prompts draw apart.
        row_of = [unique.index(prompt) for prompt in prompts]
        rows_read = len(unique)

        outputs: list[list[int]] = [[] for _ in prompts]
        live = list(range(len(prompts)))  # the prompts still decoding
        start = time.perf_counter()
        for _ in range(max_new_tokens):
            logits = logits.float()[torch.tensor([row_of[i] for i in live], device=self.device)]
            if grammars is not None:
                logits = self._constrain(logits, [grammars[i] for i in live], [outputs[i] for i in live])
            tokens = _pick(logits, [temperatures[i] for i in live], top_p, generator)
            finished = torch.isin(tokens, self.stop_ids)
            chunks = []  # per live prompt, the tokens to read next: the one drawn, then any the grammar forces
            for position, token in enumerate(tokens.tolist()):
                i = live[position]
                if token not in self._special:  # a newline token may carry text before its newline
                    outputs[i].append(token)
                forced = [] if finished[position] or grammars is None else self._forced(grammars[i], outputs[i])
                forced = forced[: max_new_tokens - len(outputs[i])]
                outputs[i] += forced
                self.stats.forced_tokens += len(forced)
                chunks.append([token] + forced)
                if stop_at is not None and stop_at[i] is not None and not finished[position]:
                    finished[position] = self._line(outputs[i]).startswith(stop_at[i])
                finished[position] |= len(outputs[i]) >= max_new_tokens  # forced tokens count too
            self.stats.decode_tokens += len(live)
            # The next rows: one per distinct (row, chunk) of the prompts decoding on.
            rows: dict[tuple, int] = {}
            parents, reads = [], []  # each new row's old row, and the chunk it reads
            for position, i in enumerate(live):
                if finished[position]:
                    continue
                key = (row_of[i], tuple(chunks[position]))
                if key not in rows:
                    rows[key] = len(parents)
                    parents.append(row_of[i])
                    reads.append(chunks[position])
                row_of[i] = rows[key]
            live = [i for position, i in enumerate(live) if not finished[position]]
            if not live:
                break
            if parents != list(range(rows_read)):  # rows finished or split: select (copies) the cache
                select = torch.tensor(parents, device=self.device)
                cache.batch_select_indices(select)
                mask, next_position = mask[select], next_position[select]
                rows_read = len(parents)
            # Rows read chunks of different lengths as one batch: the shorter ones are padded on the right,
            # and the mask hides the padding's keys and values from every later token.
            width = max(map(len, reads))
            inputs = torch.full((rows_read, width), self.tokenizer.pad_token_id, device=self.device)
            read = torch.zeros(rows_read, width, dtype=mask.dtype, device=self.device)
            for row, chunk in enumerate(reads):
                inputs[row, : len(chunk)] = torch.tensor(chunk, device=self.device)
                read[row, : len(chunk)] = 1
            mask = torch.cat([mask, read], dim=1)
            positions = next_position[:, None] + torch.arange(width, device=self.device)
            logits, cache = self._forward(cache, input_ids=inputs, attention_mask=mask, position_ids=positions)
            self.stats.decode_rows_read += rows_read
            lengths = read.sum(1)
            logits = logits[torch.arange(rows_read, device=self.device), lengths - 1]
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
        logits, cache = self._forward(input_ids=prompt_ids)
        first = logits[0, -1].float().log_softmax(-1)
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
        logits, _ = self._forward(cache, input_ids=ids, attention_mask=mask, position_ids=positions)
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


def load_policy_sampler(path: str | os.PathLike | None = None):
    """A `Sampler` of the policy in `path` (None: the base model), with the prompt format and the
    quote reader saved beside its weights."""
    model, tokenizer = load_policy(path)
    return Sampler(model, tokenizer, PromptFormat.load(path), load_reader(path))
