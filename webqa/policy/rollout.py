"""Sampling browsing episodes from the policy, several in lockstep.

    sampler = Sampler(model, tokenizer)
    episodes = run_episodes(sampler, [Browser(corpus) for _ in range(4)], question, SamplingConfig())

Every step, the live episodes' observations go through the model as one
batch: one prefill, then token-by-token decoding with a KV cache until each
row ends its line. Identical prompts (all episodes start from the same
observation) are prefilled once and their cache is shared. Unparseable output
is simply passed to the browser, which counts it as an invalid action.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from webqa.env.browser import Browser
from webqa.policy.prompts import action_example, answer_example
from webqa.types import Episode, StepResult

# Called after every browser step with the browser's index in `browsers`, the action it took, the
# step's result, and the browser itself (read what you need at once: the next step changes it).
# Runs on the rollout's thread; an exception it raises stops the rollout (a UI cancels that way).
StepCallback = Callable[[int, str, StepResult, Browser], None]


@dataclass
class SamplingConfig:
    """How actions and answers are sampled."""

    temperature: float = 0.7  # 0 means greedy
    top_p: float = 0.95
    max_action_tokens: int = 48
    max_answer_tokens: int = 96
    seed: int | None = None


@dataclass
class SamplerStats:
    """Token counts and seconds, for the benchmark."""

    prefill_tokens: int = 0
    prefill_seconds: float = 0.0
    decode_tokens: int = 0
    decode_seconds: float = 0.0


@dataclass
class Sampler:
    """Batched sampling of one line per prompt, with a KV cache."""

    model: torch.nn.Module
    tokenizer: object
    stats: SamplerStats = field(default_factory=SamplerStats)

    def __post_init__(self):
        self.device = next(self.model.parameters()).device
        vocab = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        # A line ends at end-of-sequence or at any token that contains a newline.
        newline_ids = [i for i, token in enumerate(vocab) if token and ("\n" in token or "Ċ" in token)]
        stop = set(newline_ids) | {self.tokenizer.eos_token_id}
        self.stop_ids = torch.tensor(sorted(i for i in stop if i is not None), device=self.device)

    @torch.no_grad()
    def sample(self, prompts: list[str], max_new_tokens: int, temperature: float = 0.7, top_p: float = 0.95,
               generator: torch.Generator | None = None) -> list[str]:
        """One line of text for each prompt."""
        unique = list(dict.fromkeys(prompts))
        encoded = self.tokenizer(unique, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        mask = encoded["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: count real tokens only
        start = time.perf_counter()
        out = self.model(input_ids=encoded["input_ids"], attention_mask=mask, position_ids=positions,
                         use_cache=True, logits_to_keep=1)
        self.stats.prefill_tokens += int(mask.sum())
        self.stats.prefill_seconds += time.perf_counter() - start
        cache, logits = out.past_key_values, out.logits[:, -1]
        if len(unique) < len(prompts):  # share the prefill of identical prompts
            rows = torch.tensor([unique.index(p) for p in prompts], device=self.device)
            cache.reorder_cache(rows)
            logits, mask, positions = logits[rows], mask[rows], positions[rows]
        next_position = positions[:, -1] + 1

        outputs: list[list[int]] = [[] for _ in prompts]
        live = list(range(len(prompts)))  # which prompt each batch row belongs to
        start = time.perf_counter()
        for _ in range(max_new_tokens):
            tokens = _pick(logits.float(), temperature, top_p, generator)
            finished = torch.isin(tokens, self.stop_ids)
            for row, token in enumerate(tokens.tolist()):
                if not finished[row]:
                    outputs[live[row]].append(token)
            self.stats.decode_tokens += len(live)
            keep = (~finished).nonzero().flatten()
            if len(keep) == 0:
                break
            if len(keep) < len(live):  # drop finished rows from the batch
                cache.batch_select_indices(keep)
                live = [live[row] for row in keep.tolist()]
                tokens, mask, next_position = tokens[keep], mask[keep], next_position[keep]
            mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=1)
            out = self.model(input_ids=tokens[:, None], attention_mask=mask, position_ids=next_position[:, None],
                             past_key_values=cache, use_cache=True)
            logits, next_position = out.logits[:, -1], next_position + 1
        self.stats.decode_seconds += time.perf_counter() - start
        return [self.tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in outputs]


def _pick(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Greedy at temperature 0, else nucleus sampling."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    outside = sorted_probs.cumsum(-1) - sorted_probs > top_p  # keep the smallest set reaching top_p
    sorted_probs = sorted_probs.masked_fill(outside, 0.0)
    choice = torch.multinomial(sorted_probs, 1, generator=generator)
    return order.gather(-1, choice).squeeze(-1)


def run_episodes(sampler: Sampler, browsers: list[Browser], question: str,
                 config: SamplingConfig | None = None, on_step: StepCallback | None = None) -> list[Episode]:
    """Browse with every browser in lockstep, then write each episode's answer from its quotes.

    `on_step`, when given, is called after each browser step (see `StepCallback`).
    """
    config = config or SamplingConfig()
    generator = None
    if config.seed is not None:
        generator = torch.Generator(device=sampler.device).manual_seed(config.seed)
    for browser in browsers:
        browser.reset(question)
    while True:
        live = [(index, b) for index, b in enumerate(browsers) if not b.done]
        if not live:
            break
        prompts = [action_example(b.observation(), "")[0] for _, b in live]
        actions = sampler.sample(prompts, config.max_action_tokens, config.temperature, config.top_p, generator)
        for (index, browser), action in zip(live, actions):
            result = browser.step(action)
            if on_step is not None:
                on_step(index, action, result, browser)
    # WebGPT answers from whatever was quoted, also when the actions ran out.
    answering = [b for b in browsers if b.quotes and b.episode.end in ("Answer", "out of actions")]
    if answering:
        prompts = [answer_example(question, b.quotes, "")[0] for b in answering]
        answers = sampler.sample(prompts, config.max_answer_tokens, config.temperature, config.top_p, generator)
        for browser, text in zip(answering, answers):
            browser.episode.answer = text
    return [b.episode for b in browsers]
