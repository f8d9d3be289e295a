"""Reusing what the model computed for the start of a prompt that an earlier prompt shared.

A browsing step's observation opens with the question, the quotes and the past
actions, and the next step's observation repeats all of that before the new
action and page. On the first 10 dev questions, 15% of the tokens the policy
prefilled (best-of-1 and best-of-4 alike) were the start of a prompt read in
the step before. `PrefixCache` keeps the keys and values of the prompts the
sampler read in its last call and in the current one, and gives each new prompt
the longest start it shares with one of them, so that only the rest is read.

Reuse is exact: a causal model's keys and values for a token depend only on the
tokens before it, and a prompt read alone (no padding) puts its tokens at the
same positions every time. The cache belongs to one model: its weights must not
change while the cache is in use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

MIN_REUSE = 16  # a shorter shared start costs about as much to copy as to read again


@dataclass
class CachedPrompt:
    ids: torch.Tensor  # the prompt's token ids, 1-D
    layers: list[tuple[torch.Tensor, torch.Tensor]]  # keys and values per layer, [1, heads, tokens, dim]


@dataclass
class PrefixCache:
    """The prompts read in the sampler's previous call and in its current one, with their caches."""

    previous: list[CachedPrompt] = field(default_factory=list)
    current: list[CachedPrompt] = field(default_factory=list)

    def next_call(self) -> None:
        """Start a new call: this call's prompts become the previous ones, older ones are dropped."""
        self.previous, self.current = self.current, []

    def longest_start(self, ids: list[int]) -> tuple[int, DynamicCache | None]:
        """(tokens, cache) of the longest start of `ids` that a kept prompt shares (at least MIN_REUSE tokens,
        and never the whole prompt: its last token must be read to give the next token's logits);
        (0, None) when there is none."""
        wanted = torch.tensor(ids[:-1])
        best, source = 0, None
        for kept in self.previous + self.current:
            length = min(len(wanted), len(kept.ids))
            differ = (wanted[:length] != kept.ids[:length]).nonzero()
            shared = int(differ[0]) if len(differ) else length
            if shared > best:
                best, source = shared, kept
        if source is None or best < MIN_REUSE:
            return 0, None
        cache = DynamicCache()
        for number, (keys, values) in enumerate(source.layers):
            cache.update(keys[:, :, :best], values[:, :, :best], number)
        return best, cache

    def remember(self, ids: list[int], cache: DynamicCache) -> None:
        """Keep the cache of a prompt just read (its tensors are kept, not copied: decoding the cache
        further makes new tensors and leaves these as they are)."""
        self.current.append(CachedPrompt(torch.tensor(ids), [(layer.keys, layer.values) for layer in cache.layers]))
