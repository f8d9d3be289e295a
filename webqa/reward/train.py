"""Training the reward model on comparisons: pairwise logistic loss, ties counting half.

    webqa train rm --comparisons runs/synthetic.jsonl human.jsonl --out runs/rm
    webqa train rm --comparisons FILE... --out runs/rm --max-steps 300 --batch-size 4

Every comparison (`webqa.comparisons`, from any number of files: synthetic ones
from `webqa sample` and human ones from the terminal UI) gives two rows, answer
prompt + answer a and + answer b, scored in one forward pass. With d = r(a) - r(b)
and p the preference (1: a, 0: b, 0.5: tie) the loss is
    -p log sigmoid(d) - (1 - p) log sigmoid(-d),
so a tie pulls the two scores together (its loss is smallest, log 2, at d = 0).

The model starts from the behavior-cloned policy (`webqa.reward.model`: its
transformer, LoRA by default, and its quote reader as the reading term). The head
and the reading weights learn at their own rate (`--head-lr`). Conventions are
behavior cloning's: checkpoints in `out/checkpoints` every `--save-steps`
(adapter + head + optimizer, a few MB), resumed automatically; a progress bar;
`training.json` and `loss.png` in the out folder. A share of the questions
(`--eval-share`) is held out: their comparisons give the eval loss and the
held-out pairwise accuracy (on non-tie pairs, equal scores counting half),
reported next to two trivial scorers, answer length and the share of the
answer's words found in its quotes, and to the policy's reader alone (the reward
model before training). `webqa eval --pool` measures the same on the pairs of
its pool of dev answers.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import shutil
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

from webqa.comparisons import read_comparisons
from webqa.loading import SHIPPED_POLICY
from webqa.plots import curve, logged, png
from webqa.policy.model import LLAMA_PROJECTIONS, pick_device
from webqa.policy.reader import FEATURES
from webqa.policy.train import hardware
from webqa.reward.model import (
    EncodedAnswer,
    LoraSettings,
    ReadingHead,
    RewardModel,
    build_reward_model,
    reading_features,
)
from webqa.scoring import answer_words, normalize
from webqa.types import Comparison


@dataclass
class RewardTrainConfig:
    """The knobs of a reward model run."""

    comparisons: list[str] = field(default_factory=list)  # comparisons files (JSONL, plain or .gz)
    out: str = "runs/rm"
    policy: str = "shipped"  # the BC policy to start from: "shipped", a folder, or "base" (the bare base model)
    base: str | None = None  # with policy "base": the base model (default: webqa.policy.model's)
    full_finetune: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LLAMA_PROJECTIONS
    reading: bool = True  # start the reading term from the policy's quote reader (webqa.reward.model)
    max_length: int = 640  # tokens per answer row; the prompt is cut from the left
    eval_share: float = 0.1  # share of questions (not comparisons) held out
    learning_rate: float | None = None  # None: 1e-4 with LoRA, 1e-5 for a full fine-tune
    head_learning_rate: float = 1e-3  # the head and the reading weights: few, and the head starts at zero
    batch_size: int = 4  # comparisons per micro-batch (twice as many rows)
    grad_accum: int = 1
    epochs: float = 1.0  # WebGPT trains its reward models for one epoch: more overfits
    max_steps: int = -1  # optimizer steps; > 0 overrides epochs
    warmup: float = 0.05  # < 1: share of the steps, else a number of steps
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    log_steps: int = 10
    save_steps: int = 100  # checkpoint and evaluate every this many steps
    save_total_limit: int = 2
    seed: int = 1337
    resume: bool = True

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 1e-5 if self.full_finetune else 1e-4


# --- the loss and the accuracies ------------------------------------------------------------


def preference_loss(score_a: torch.Tensor, score_b: torch.Tensor, preference: torch.Tensor) -> torch.Tensor:
    """Mean pairwise logistic loss; `preference` is P(a is better): 1, 0, or 0.5 for a tie."""
    d = score_a - score_b
    return (preference * F.softplus(-d) + (1 - preference) * F.softplus(d)).mean()


def pairwise_accuracy(scores_a: list[float], scores_b: list[float], preferences: list[float]) -> float | None:
    """Share of non-tie comparisons whose preferred answer scores higher (equal scores: half)."""
    hits = [0.5 if a == b else float((a > b) == (p == 1.0))
            for a, b, p in zip(scores_a, scores_b, preferences) if p != 0.5]
    return statistics.mean(hits) if hits else None


def answer_length(question: str, quotes, answer: str) -> float:
    """Trivial scorer: the answer's length in words."""
    return float(len(answer_words(answer)))


def word_overlap(question: str, quotes, answer: str) -> float:
    """Trivial scorer: the share of the answer's words that occur in its quotes."""
    words = normalize(" ".join(answer_words(answer))).split()
    quoted = set(normalize(" ".join(q.text for q in quotes)).split())
    return sum(w in quoted for w in words) / len(words) if words else 0.0


TRIVIAL_SCORERS = {"answer length": answer_length, "word overlap": word_overlap}


def reading_scorer(reading: ReadingHead):
    """A scorer of (question, quotes, answer) by a reading term alone."""
    @torch.no_grad()
    def score(question: str, quotes, answer: str) -> float:
        return float(reading(torch.tensor(reading_features(question, quotes, answer))))
    return score


def scorer_accuracy(scorer, comparisons: list[Comparison]) -> float | None:
    """Held-out pairwise accuracy of a scorer of (question, quotes, answer)."""
    a = [scorer(c.question, c.a.quotes, c.a.text) for c in comparisons]
    b = [scorer(c.question, c.b.quotes, c.b.text) for c in comparisons]
    return pairwise_accuracy(a, b, [c.preference for c in comparisons])


# --- data -------------------------------------------------------------------------------------


def read_comparison_files(paths) -> list[Comparison]:
    """Every comparison in the files, in order; answers without quotes are dropped (there is no prompt)."""
    return [c for path in paths for c in read_comparisons(path) if c.a.quotes and c.b.quotes]


def split_by_question(comparisons: list[Comparison], share: float, seed: int) -> tuple[list, list]:
    """(train, held out), split by question: comparisons of one question share most of their text."""
    questions = sorted({c.question for c in comparisons})
    random.Random(seed).shuffle(questions)
    n_held = min(int(share * len(questions)), len(questions) - 1) if share > 0 else 0
    held = set(questions[:n_held])
    return [c for c in comparisons if c.question not in held], [c for c in comparisons if c.question in held]


def encode_pairs(model: RewardModel, comparisons: list[Comparison]) -> list[tuple[EncodedAnswer, EncodedAnswer, float]]:
    return [(model.encode(c.question, c.a.quotes, c.a.text), model.encode(c.question, c.b.quotes, c.b.text),
             c.preference) for c in comparisons]


def pair_scores(model: RewardModel, pairs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores of both sides of every pair, all rows in one forward pass, and the preferences."""
    rows = [a for a, _, _ in pairs] + [b for _, b, _ in pairs]
    cuda = model.device.type == "cuda"
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and torch.cuda.is_bf16_supported()):
        scores = model(**model.collate(rows))
    preference = torch.tensor([p for _, _, p in pairs], device=scores.device)
    return scores[: len(pairs)], scores[len(pairs):], preference


@torch.no_grad()
def evaluate(model: RewardModel, pairs, batch_size: int) -> dict:
    """Eval loss and pairwise accuracy of the model on encoded pairs."""
    model.eval()
    a, b, p = [], [], []
    for start in range(0, len(pairs), batch_size):
        sa, sb, pref = pair_scores(model, pairs[start : start + batch_size])
        a += sa.tolist()
        b += sb.tolist()
        p += pref.tolist()
    model.train()
    loss = preference_loss(torch.tensor(a), torch.tensor(b), torch.tensor(p)).item()
    return {"eval_loss": loss, "eval_accuracy": pairwise_accuracy(a, b, p)}


# --- checkpoints ---------------------------------------------------------------------------------


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(folder: Path, model, optimizer, scheduler, step: int, log: list[dict], limit: int) -> None:
    """Write checkpoint-<step> (trainable weights, optimizer, scheduler, RNG, log) atomically; keep `limit`."""
    target = folder / f"checkpoint-{step}"
    partial = folder / f".checkpoint-{step}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_file(trainable_state(model), partial / "trainable.safetensors")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state()}, partial / "state.pt")
    (partial / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": log}, indent=1))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    for old in checkpoints(folder)[:-limit] if limit > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def checkpoints(folder: Path) -> list[Path]:
    """Finished checkpoints, oldest first."""
    found = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return sorted(found, key=lambda p: int(p.name.rsplit("-", 1)[1]))


def load_checkpoint(path: Path, model, optimizer, scheduler) -> tuple[int, list[dict]]:
    weights = load_file(path / "trainable.safetensors")
    missing = set(trainable_state(model)) - set(weights)
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {len(missing)} trainable tensors (another model or config?)")
    model.load_state_dict(weights, strict=False)
    state = torch.load(path / "state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    trainer_state = json.loads((path / "trainer_state.json").read_text())
    return trainer_state["global_step"], trainer_state["log_history"]


# --- training ----------------------------------------------------------------------------------------


def resolve_policy(policy: str) -> str | None:
    """The policy folder to start from: "shipped" (if it is there), a folder, or None for "base"."""

    if policy == "base":
        return None
    if policy == "shipped":
        return str(SHIPPED_POLICY) if (SHIPPED_POLICY / "adapter_config.json").exists() else None
    return policy


def train(config: RewardTrainConfig, progress: bool = True) -> dict:
    """Train on the comparisons; returns what it writes to out/training.json."""


    start = time.perf_counter()
    out = Path(config.out)
    folder = out / "checkpoints"
    comparisons = read_comparison_files(config.comparisons)
    if not comparisons:
        raise ValueError(f"no comparisons in {', '.join(map(str, config.comparisons)) or '(no files given)'}")
    train_set, held = split_by_question(comparisons, config.eval_share, config.seed)

    lora = None if config.full_finetune else LoraSettings(config.lora_r, config.lora_alpha, config.lora_dropout,
                                                         tuple(config.lora_targets))
    policy = resolve_policy(config.policy)
    model = build_reward_model(policy, config.base, lora, config.max_length, seed=config.seed,
                               reading=config.reading)
    scorers = dict(TRIVIAL_SCORERS)
    if model.reading is not None:  # the policy's reader alone, as the reward model starts
        scorers["policy's reader"] = reading_scorer(copy.deepcopy(model.reading).cpu())
    model.to(pick_device())
    model.train()
    train_pairs, held_pairs = encode_pairs(model, train_set), encode_pairs(model, held)

    micro_per_epoch = math.ceil(len(train_pairs) / config.batch_size)
    total = config.max_steps if config.max_steps > 0 else max(
        1, math.ceil(config.epochs * micro_per_epoch / config.grad_accum))
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    heads = [p for name, p in trainable if name.startswith(("head.", "reading."))]
    body = [p for name, p in trainable if not name.startswith(("head.", "reading."))]
    params = body + heads
    optimizer = torch.optim.AdamW([{"params": body, "lr": config.lr},
                                   {"params": heads, "lr": config.head_learning_rate}],
                                  lr=config.lr, weight_decay=config.weight_decay)
    warmup = int(config.warmup * total) if config.warmup < 1 else int(config.warmup)
    scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, total)

    step, log = 0, []
    found = checkpoints(folder) if config.resume and folder.is_dir() else []
    if found:
        step, log = load_checkpoint(found[-1], model, optimizer, scheduler)
    resumed_from = step
    orders: dict[int, list[int]] = {}

    def micro_batch(index: int) -> list:
        """The index-th micro-batch of the run: a fixed shuffle per epoch, so a resumed run sees the same data."""
        epoch, at = divmod(index, micro_per_epoch)
        if epoch not in orders:
            orders[epoch] = list(range(len(train_pairs)))
            random.Random(f"{config.seed}:{epoch}").shuffle(orders[epoch])
        chosen = orders[epoch][at * config.batch_size : (at + 1) * config.batch_size]
        return [train_pairs[i] for i in chosen]

    window: list[float] = []
    bar = tqdm(total=total, initial=step, desc="reward model", unit="step", disable=not progress)
    while step < total:
        optimizer.zero_grad()
        for micro in range(config.grad_accum):
            score_a, score_b, preference = pair_scores(model, micro_batch(step * config.grad_accum + micro))
            loss = preference_loss(score_a, score_b, preference)
            (loss / config.grad_accum).backward()
            window.append(loss.item())
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        step += 1
        bar.update(1)
        if step == 1 or step % config.log_steps == 0 or step == total:
            log.append({"step": step, "loss": statistics.mean(window), "learning_rate": scheduler.get_last_lr()[0]})
            bar.set_postfix(loss=f"{log[-1]['loss']:.3f}")
            window = []
        if step % config.save_steps == 0 or step == total:
            if held_pairs:
                log.append({"step": step, **evaluate(model, held_pairs, config.batch_size)})
            save_checkpoint(folder, model, optimizer, scheduler, step, log, config.save_total_limit)
    bar.close()

    final = [e for e in log if "eval_loss" in e and e["step"] == step]
    if held_pairs and not final:  # resumed after the last step: evaluate once more
        log.append({"step": step, **evaluate(model, held_pairs, config.batch_size)})
        final = log[-1:]
    model.eval()
    model.save(out)
    summary = {
        "config": asdict(config) | {"learning_rate": config.lr},
        "policy": model.meta.get("policy_source", model.meta.get("policy")),
        "base": model.meta.get("base"),
        "comparisons": {"files": [str(p) for p in config.comparisons], "total": len(comparisons),
                        "by_producer": dict(Counter(c.producer for c in comparisons)),
                        "train": len(train_set), "held_out": len(held),
                        "held_out_questions": len({c.question for c in held}),
                        "train_ties": sum(c.preference == 0.5 for c in train_set),
                        "held_out_ties": sum(c.preference == 0.5 for c in held)},
        "trainable_parameters": sum(p.numel() for p in params),
        "reading_weights": dict(zip(FEATURES, model.reading.weight.tolist())) if model.reading is not None else None,
        "steps": step,
        "epochs": step * config.grad_accum / max(1, micro_per_epoch),
        "resumed_from_step": resumed_from,
        "train_loss": next((e["loss"] for e in reversed(log) if "loss" in e), None),
        "eval_loss": final[0]["eval_loss"] if final else None,
        "held_out_accuracy": {"reward model": final[0]["eval_accuracy"] if final else None}
                             | {name: scorer_accuracy(scorer, held) for name, scorer in scorers.items()},
        "wall_s": round(time.perf_counter() - start, 1),  # this run only, not earlier ones it resumed
        "hardware": hardware(),
        "log_history": log,
    }
    (out / "training.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    plot_training(log, out / "loss.png")
    return summary


def plot_training(log: list[dict], path: Path) -> None:
    """Train and eval loss, and held-out accuracy, against the optimizer step."""
    with png(path, panels=2, size=(9, 3.6)) as (left, right):
        if left is None:
            return
        curve(left, logged(log, "loss"), "train")
        curve(left, logged(log, "eval_loss"), "held out")
        left.axhline(math.log(2), color="grey", linestyle=":", label="chance (log 2)")
        left.set(xlabel="optimizer step", ylabel="pairwise loss", title="reward model loss")
        left.legend()
        curve(right, logged(log, "eval_accuracy"))
        right.axhline(0.5, color="grey", linestyle=":")
        right.set(xlabel="optimizer step", ylabel="accuracy", title="held-out pairwise accuracy", ylim=(0, 1))


# --- command line ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    d = RewardTrainConfig()
    parser.add_argument("--comparisons", nargs="+", required=True, metavar="FILE", help="comparisons files")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (resumes from its checkpoints)")
    parser.add_argument("--policy", default=d.policy,
                        help="BC policy to start from: shipped (default), a folder, or base (the bare base model)")
    parser.add_argument("--base", default=None, metavar="MODEL", help="with --policy base: the base model")
    parser.add_argument("--full", action="store_true", help="fine-tune the whole transformer instead of LoRA")
    parser.add_argument("--max-steps", type=int, default=d.max_steps, help="optimizer steps (overrides --epochs)")
    parser.add_argument("--epochs", type=float, default=d.epochs)
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-4 LoRA, 1e-5 full)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="comparisons per micro-batch")
    parser.add_argument("--grad-accum", type=int, default=d.grad_accum)
    parser.add_argument("--max-length", type=int, default=d.max_length, help="tokens per answer row")
    parser.add_argument("--lora-r", type=int, default=d.lora_r)
    parser.add_argument("--eval-share", type=float, default=d.eval_share, help="share of questions held out")
    parser.add_argument("--head-lr", type=float, default=d.head_learning_rate,
                        help="learning rate of the head and the reading weights")
    parser.add_argument("--no-reading", action="store_true", help="no reading term: the transformer's head alone")
    parser.add_argument("--save-steps", type=int, default=d.save_steps)
    parser.add_argument("--log-steps", type=int, default=d.log_steps)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--fresh", action="store_true", help="ignore existing checkpoints")
    return parser


def config_from_args(args: argparse.Namespace) -> RewardTrainConfig:
    return RewardTrainConfig(
        comparisons=args.comparisons, out=args.out, policy=args.policy, base=args.base, full_finetune=args.full,
        max_steps=args.max_steps, epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size,
        grad_accum=args.grad_accum, max_length=args.max_length, lora_r=args.lora_r, lora_alpha=2 * args.lora_r,
        eval_share=args.eval_share, head_learning_rate=args.head_lr,
        reading=not args.no_reading, save_steps=args.save_steps, log_steps=args.log_steps, seed=args.seed,
        resume=not args.fresh)


def format_summary(summary: dict) -> str:
    fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    accuracy = ", ".join(f"{name} {fmt(value)}" for name, value in summary["held_out_accuracy"].items())
    return (f"{summary['steps']} steps, train loss {fmt(summary['train_loss'])}, held-out loss "
            f"{fmt(summary['eval_loss'])}, {summary['wall_s']:.0f} s on {summary['hardware']}\n"
            f"held-out pairwise accuracy ({summary['comparisons']['held_out']} comparisons): {accuracy}\n"
            f"saved to {summary['config']['out']}")


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="webqa train rm", description="Reward model training."))
    print(format_summary(train(config_from_args(parser.parse_args(argv)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
