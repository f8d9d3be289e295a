"""The reward model: the policy's transformer with a scalar head, scoring cited answers.

It reads exactly what the policy read when it wrote the answer (the answer prompt:
question and numbered quotes, `webqa.env.answering.answer_prompt`), then the answer
and an end-of-sequence token, and maps the last hidden state to one number. To that
number it adds the reading term: the policy's quote reader's judgement of the
answer as a sentence that answers the question (`ReadingHead`).

    rm = build_reward_model(policy="webqa/data/policy")      # for training: BC weights + new LoRA + head
    rm.save("runs/rm")
    rm = load_reward_model("runs/rm")                        # for scoring: merged, eval mode
    rm.score([(question, quotes, answer), ...])              # one forward pass for the whole batch

Initialisation follows WebGPT: the reward model starts from the behavior-cloned
policy. Our policy is two parts, the transformer (base model with the BC adapter
merged) and the quote reader (a linear model over reading features, fitted to the
same demonstrations), and the reward model starts from both: the unembedding is
replaced by a linear head initialised at zero, and the reading term starts as the
reader's ranker. So before training the reward model ranks answers as the policy's
reader would, and training (a new LoRA adapter, or the whole transformer with
`full=True`, with the head and the reading weights) learns from comparisons what
that misses. A policy without a reader (or `reading=False`) gives a head with a
small random start and no reading term.

A saved folder holds `reward.json` (what to rebuild it from), the LoRA adapter
(`adapter_config.json`, `adapter_model.safetensors`), the head and the reading
weights (`head.safetensors`), the tokenizer, and the BC adapter it started from:
when that is the shipped policy, `reward.json` names it with its sha256 (loading
refuses a shipped policy retrained since); otherwise a copy in `policy/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import astuple, dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer

from webqa.paths import SHIPPED_POLICY
from webqa.policy.model import DEFAULT_MODEL, LLAMA_PROJECTIONS, load_model, load_policy, pick_device
from webqa.policy.prompts import answer_example
from webqa.policy.reader import FEATURES, QuoteReader, features, load_reader
from webqa.types import Candidate, Quote

META = "reward.json"
HEAD = "head.safetensors"
POLICY_COPY = "policy"  # the folder, inside a reward model folder, holding its initial policy adapter
SHIPPED = "shipped"  # in reward.json: started from the shipped policy adapter (no copy; its sha256 is checked)
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")

Item = tuple[str, list[Quote], str]  # (question, quotes, answer)
_CITATIONS = re.compile(r"\s*\[\d+\]")


@dataclass
class EncodedAnswer:
    """One row for the reward model: token ids, and the answer's reading features (empty without a reading term)."""

    ids: list[int]
    reading: list[float] = field(default_factory=list)


def reading_features(question: str, quotes: list[Quote], answer: str) -> list[float]:
    """The reader's features (`webqa.policy.reader.FEATURES`) of the answer, citations removed, read
    as a one-sentence window under its first quote's page title."""
    title = quotes[0].title if quotes else ""
    return features(question, title, [_CITATIONS.sub("", answer).strip()])[0]


class ReadingHead(torch.nn.Module):
    """The reading term of the score: `weight . (features - mean) / scale`, as the reader's ranker scores
    a sentence. `mean` and `scale` stay as fitted; `weight` trains with the head."""

    def __init__(self, weight: list[float], mean: list[float], scale: list[float]):
        super().__init__()
        if not len(weight) == len(mean) == len(scale) == len(FEATURES):
            raise ValueError(f"a reading head has {len(FEATURES)} weights ({', '.join(FEATURES)})")
        self.weight = torch.nn.Parameter(torch.tensor(weight, dtype=torch.float32))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))

    @classmethod
    def from_reader(cls, reader: QuoteReader) -> "ReadingHead":
        return cls(reader.weights, reader.mean, reader.scale)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return ((rows - self.mean) / self.scale) @ self.weight


@dataclass
class LoraSettings:
    """The reward model's own adapter."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: tuple[str, ...] = LLAMA_PROJECTIONS


class RewardModel(torch.nn.Module):
    """A transformer body (no LM head), a linear head reading the hidden state of the last token, and
    optionally the reading term over the answer's reading features."""

    def __init__(self, backbone: torch.nn.Module, tokenizer, head: torch.nn.Linear | None = None,
                 max_length: int = 768, meta: dict | None = None, reading: ReadingHead | None = None):
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        hidden = backbone.config.hidden_size
        if head is None:
            head = torch.nn.Linear(hidden, 1)
            if reading is None:
                # Scores start near 0 with unit-scale spread: hidden states after the final norm are O(1) per unit.
                torch.nn.init.normal_(head.weight, std=hidden ** -0.5)
            else:  # start as the reader's judgement alone
                torch.nn.init.zeros_(head.weight)
            torch.nn.init.zeros_(head.bias)
        device = next(backbone.parameters()).device
        self.head = head.to(device)
        self.reading = reading.to(device) if reading is not None else None
        self.max_length = max_length
        self.meta = meta or {}

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    # --- text -> tokens ------------------------------------------------------------------

    def encode(self, question: str, quotes: list[Quote], answer: str) -> EncodedAnswer:
        """Token ids of answer prompt + answer + eos (the prompt loses tokens from the left to fit), and
        the answer's reading features when the model has a reading term.

        Same text and same left truncation as the policy's answer step (`webqa.policy.train.encode`).
        The answer keeps at most half of `max_length` (answers are short; a runaway one is cut).
        """
        prompt, answer = answer_example(question, quotes, answer)
        tokenize = lambda text: self.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        answer_ids = tokenize(answer)[: self.max_length // 2 - 1] + [self.tokenizer.eos_token_id]
        prompt_ids = tokenize(prompt)
        room = self.max_length - len(answer_ids)
        ids = prompt_ids[max(0, len(prompt_ids) - room):] + answer_ids
        return EncodedAnswer(ids, reading_features(question, quotes, answer) if self.reading is not None else [])

    def collate(self, rows: list[EncodedAnswer]) -> dict[str, torch.Tensor]:
        """Right-padded input ids and attention mask (the score is read at each row's own last token),
        and the reading features when the model has a reading term."""
        width = max(len(row.ids) for row in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([row.ids + [pad] * (width - len(row.ids)) for row in rows])
        mask = torch.tensor([[1] * len(row.ids) + [0] * (width - len(row.ids)) for row in rows])
        batch = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
        if self.reading is not None:
            batch["reading"] = torch.tensor([row.reading for row in rows], dtype=torch.float32, device=self.device)
        return batch

    # --- scoring -------------------------------------------------------------------------

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                reading: torch.Tensor | None = None) -> torch.Tensor:
        """One score per row (float32): the head's, plus the reading term's when the model has one."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        last = attention_mask.sum(-1) - 1  # right padding: the last real token of each row
        final = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        scores = self.head(final.to(self.head.weight.dtype)).squeeze(-1).float()
        if self.reading is not None:
            if reading is None:
                raise ValueError("this reward model has a reading term: pass the rows' reading features")
            scores = scores + self.reading(reading.float())
        return scores

    @torch.no_grad()
    def score(self, items: list[Item]) -> list[float]:
        """Scores of (question, quotes, answer) items, all in one forward pass; equal items are read once
        (best-of-n's episodes often end with the same answer from the same quotes)."""
        if not items:
            return []
        keys = [(question, tuple(astuple(q) for q in quotes), answer) for question, quotes, answer in items]
        first: dict[tuple, int] = {}  # each distinct item's first index
        for index, key in enumerate(keys):
            first.setdefault(key, index)
        batch = self.collate([self.encode(*items[index]) for index in first.values()])
        scores = dict(zip(first, self(**batch).tolist()))
        return [scores[key] for key in keys]

    # --- saving --------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike) -> None:
        """Write adapter (or the whole body), head, tokenizer, `reward.json` and the initial policy copy."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(self.backbone, PeftModel):
            self.backbone.save_pretrained(folder)
            (folder / "README.md").unlink(missing_ok=True)  # peft's template card; the folder gets its own
        else:
            self.backbone.save_pretrained(folder)
        tensors = {"weight": self.head.weight, "bias": self.head.bias}
        if self.reading is not None:
            tensors |= {f"reading.{name}": value for name, value in self.reading.state_dict().items()}
        save_file({name: value.detach().float().cpu().contiguous() for name, value in tensors.items()}, folder / HEAD)
        self.tokenizer.save_pretrained(folder)
        meta = dict(self.meta, max_length=self.max_length, full=not isinstance(self.backbone, PeftModel))
        source = meta.get("policy")
        if source and source not in (POLICY_COPY, SHIPPED) and (Path(source) / "adapter_config.json").exists():
            digest = adapter_sha256(Path(source))
            if (SHIPPED_POLICY / "adapter_config.json").exists() and digest == adapter_sha256(SHIPPED_POLICY):
                meta["policy"] = SHIPPED  # the package holds it already: no second copy
            else:
                copy_adapter(Path(source), folder / POLICY_COPY)
                meta["policy"] = POLICY_COPY
            meta["policy_source"], meta["policy_sha256"] = str(source), digest
        (folder / META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def adapter_sha256(folder: Path) -> str:
    """The checksum of a LoRA adapter's weights."""
    return hashlib.sha256((folder / "adapter_model.safetensors").read_bytes()).hexdigest()


def initial_policy(folder: Path, meta: dict) -> str | None:
    """The policy a saved reward model started from: its own copy, the shipped adapter (checked against the
    recorded sha256: a retrained shipped policy is not the one this reward model learned on), or a path."""
    policy = meta.get("policy")
    if policy == POLICY_COPY:
        return str(folder / POLICY_COPY)
    if policy == SHIPPED:
        if adapter_sha256(SHIPPED_POLICY) != meta.get("policy_sha256"):
            raise ValueError(f"{folder}: this reward model was trained on top of an earlier shipped policy "
                             f"({SHIPPED_POLICY} has changed since); retrain it (`webqa train rm`)")
        return str(SHIPPED_POLICY)
    return policy


def copy_adapter(source: Path, target: Path) -> None:
    """Copy a LoRA adapter's two files (not its checkpoints or tokenizer)."""
    if source.resolve() == target.resolve():
        return
    target.mkdir(parents=True, exist_ok=True)
    for name in ADAPTER_FILES:
        shutil.copyfile(source / name, target / name)


# --- building and loading --------------------------------------------------------------------


def _body(policy: str | None, base: str | None, device, dtype):
    """The transformer body of the initial policy (BC adapter merged), and its tokenizer."""
    if policy is None:
        causal, tokenizer = load_model(base, device=device, dtype=dtype)
    else:
        causal, tokenizer = load_policy(policy, device=device, dtype=dtype)
    # `base_model` is the body under the LM head (LlamaModel for Llama); the head's vocabulary
    # projection is what the scalar head replaces.
    return causal.base_model, tokenizer


def build_reward_model(policy: str | None, base: str | None = None, lora: LoraSettings | None = LoraSettings(),
                       max_length: int = 768, device="cpu", dtype=torch.float32, seed: int = 0,
                       reading: bool = True) -> RewardModel:
    """A fresh reward model for training: the policy's body (or the bare base's) with a new head.

    `policy`: a policy folder (a LoRA adapter, merged into its base, or a full model folder);
    None starts from `base` (default: the default base model). `lora=None` trains the whole body.
    `reading`: start the reading term from the policy's quote reader, when it has one.
    """
    body, tokenizer = _body(policy, base, device, dtype)
    reader = load_reader(policy) if reading and policy is not None else None
    torch.manual_seed(seed)  # the head and the LoRA A matrices start random
    if lora is not None:
        body = get_peft_model(body, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                               target_modules=list(lora.targets)))
    meta = {"policy": str(Path(policy).resolve()) if policy and Path(policy).is_dir() else policy,
            "base": base or DEFAULT_MODEL}
    return RewardModel(body, tokenizer, max_length=max_length, meta=meta,
                       reading=ReadingHead.from_reader(reader) if reader is not None else None)


def load_reward_model(folder: str | os.PathLike, device=None, dtype=None, merge: bool = True) -> RewardModel:
    """A saved reward model in eval mode; the LoRA adapter merged into the body unless `merge=False`."""
    folder = Path(folder)
    if not (folder / META).exists():
        raise FileNotFoundError(f"{folder}: not a reward model folder (no {META})")
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    device = torch.device(device) if device is not None else pick_device()
    if meta.get("full"):
        body = AutoModel.from_pretrained(folder, dtype=dtype or torch.float32).to(device)
    else:
        body, _ = _body(initial_policy(folder, meta), meta.get("base"), device, dtype)
        body = PeftModel.from_pretrained(body, folder)
        if merge:
            body = body.merge_and_unload()
    weights = load_file(folder / HEAD)
    head = torch.nn.Linear(weights["weight"].shape[1], 1)
    head.load_state_dict({"weight": weights["weight"], "bias": weights["bias"]})
    reading = None
    if "reading.weight" in weights:
        reading = ReadingHead(*(weights[f"reading.{name}"].tolist() for name in ("weight", "mean", "scale")))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = RewardModel(body, tokenizer, head=head, max_length=meta.get("max_length", 768), meta=meta,
                        reading=reading)
    model.eval()
    return model


# --- best-of-n: choosing among candidates ------------------------------------------------


def score_candidates(reward_model, question: str, candidates: list[Candidate]) -> None:
    """Set `.score` of every candidate with an answer (one batched forward pass); None for the others."""
    found = [c for c in candidates if c.found]
    scores = reward_model.score([(question, c.episode.quotes, c.text) for c in found])
    for candidate in candidates:
        candidate.score = None
    for candidate, value in zip(found, scores):
        candidate.score = value


def choose(scores: list[float | None]) -> int | None:
    """Index of the highest score (the first of equal ones); None when nothing was scored."""
    scored = [i for i, s in enumerate(scores) if s is not None]
    return max(scored, key=lambda i: (scores[i], -i)) if scored else None
