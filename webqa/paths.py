"""Where webqa keeps files: the shipped data, and a per-user cache for built things."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

DATA_DIR = Path(__file__).parent / "data"
CORPUS_FILE = DATA_DIR / "corpus.jsonl.gz"
SHIPPED_POLICY = DATA_DIR / "policy"  # the behavior-cloned adapter and its quote reader
SHIPPED_REWARD = DATA_DIR / "reward"  # the reward model


def cache_dir(*parts: str) -> Path:
    """A folder under the cache root (`$WEBQA_CACHE`, else the user's cache dir), created if missing."""
    root = Path(os.environ.get("WEBQA_CACHE") or platformdirs.user_cache_dir("webqa"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
