"""Where the agent's parts come from: the search backend, the shipped policy and reward model.

Everything that runs the agent (`webqa.agent`, `webqa eval`, the reward model's tools, the TUI) loads its
parts here, so a part has one default and one way to be loaded:

    backend = make_backend("local")        # or "web", or a Backend object
    sampler = load_sampler()               # the shipped behavior-cloned policy, else the base model
    reward_model = load_reward()           # the shipped reward model, else None
"""

from __future__ import annotations

from functools import lru_cache

from webqa.env.backend import Backend
from webqa.paths import SHIPPED_POLICY, SHIPPED_REWARD


def make_backend(backend: str | Backend) -> Backend:
    """"local" (the embedded encyclopedia), "web" (the live web), or a backend object."""
    if not isinstance(backend, str):
        return backend
    if backend == "local":
        from webqa.env.local import LocalCorpus

        return LocalCorpus.default()
    if backend == "web":
        from webqa.env.web import WebBackend

        return WebBackend()
    raise ValueError(f"unknown backend {backend!r}: use 'local' or 'web'")


@lru_cache(maxsize=2)
def load_sampler(policy: str | None = None):
    """The policy model wrapped for sampling; by default the shipped behavior-cloned adapter."""
    from webqa.policy.sampler import load_policy_sampler

    path = policy or (str(SHIPPED_POLICY) if (SHIPPED_POLICY / "adapter_config.json").exists() else None)
    return load_policy_sampler(path)


@lru_cache(maxsize=2)
def load_reward(reward: str | None = None):
    """The reward model for best-of-n, by default the shipped one; None when none is shipped or given."""
    from webqa.reward.model import load_reward_model

    path = reward or (str(SHIPPED_REWARD) if (SHIPPED_REWARD / "reward.json").exists() else None)
    return load_reward_model(path) if path else None
