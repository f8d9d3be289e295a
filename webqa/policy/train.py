"""Behavior cloning: fine-tune the policy on demonstrations with the transformers Trainer.

    webqa train bc --demos demos.jsonl --out runs/bc              # LoRA on the default base
    webqa train bc --demos a.jsonl b.jsonl --out runs/bc --max-steps 300
    accelerate launch -m webqa.policy.train --demos demos.jsonl --out runs/bc   # GPU(s)

    model, tokenizer = webqa.policy.model.load_policy("runs/bc")  # base + adapter, merged

Every demonstration gives (prompt, target) pairs (`webqa.policy.prompts`): one per
browsing step and one for the answer. A training row is prompt + target + eos, and
the loss is on the target and eos tokens only. Prompts that do not fit in
`max_length` lose tokens from the left (the target is never cut).

The out folder ends up with the LoRA adapter (or the whole model with --full), the
tokenizer, `training.json` and `loss.png`. Checkpoints go to `out/checkpoints`, so
the out folder itself stays small enough to ship; running again with the same out
folder resumes from the last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from webqa.demos import read_demonstrations
from webqa.plots import curve, logged, png
from webqa.policy.model import DEFAULT_MODEL, LLAMA_PROJECTIONS, load_model
from webqa.policy.prompts import PLAIN, PromptFormat, examples_from_demonstration, teaches_answer
from webqa.policy.reader import READER_FILE
from webqa.policy.reading import reading_prompt
from webqa.policy.reading_data import quotes_of, read_examples
from webqa.types import Demonstration

IGNORE = -100  # label of tokens the loss skips (the prompt, the padding)


@dataclass
class TrainConfig:
    """The knobs of a behavior-cloning run."""

    demos: list[str] = field(default_factory=list)  # JSONL files of demonstrations
    # JSONL files of answer-step examples (`webqa.policy.reading_data`): the answerer's training data
    examples: list[str] = field(default_factory=list)
    # Per file of `demos`: how many times each of its training demonstrations counts (missing: 1).
    # DAgger weights its small aggregate this way, so that a short run sees it.
    demo_repeats: tuple[int, ...] = ()
    out: str = "runs/bc"
    base: str | None = None  # None: the default base model (see webqa.policy.model)
    # Continue training this LoRA adapter (its rank and targets, not lora_*) instead of a fresh one;
    # `base` must then be the adapter's base. DAgger rounds continue the current policy this way.
    init_adapter: str | None = None
    # LoRA (the default) or full fine-tuning
    full_finetune: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LLAMA_PROJECTIONS  # the attention and MLP projections of Llama-style models
    # Train only the LoRA weights of the top this many layers (None: all). The layers below are
    # then frozen, so the backward pass stops at the lowest trained layer: a step with the top
    # third of the layers costs about half as much on a CPU.
    train_layers: int | None = None
    # data
    # Bold the question's words in the page text of each observation (see PromptFormat).
    # None: as the adapter of `init_adapter` was trained (plain for a fresh one).
    mark_question_words: bool | None = None
    max_length: int = 768  # tokens per row; the prompt is cut from the left to fit
    answer_weight: int = 1  # each answer example appears this many times (one per demo, vs ~5 action steps)
    eval_share: float = 0.1  # share of demonstrations (not rows) held out for the eval loss
    # Batch rows of similar length: rows run from ~50 tokens (first step) to ~550 (a results page),
    # and padding a random batch to its longest row wastes about half the compute.
    group_by_length: bool = True
    # optimization
    learning_rate: float | None = None  # None: 2e-4 with LoRA, 2e-5 for a full fine-tune
    batch_size: int = 4
    grad_accum: int = 1
    epochs: float = 3.0
    max_steps: int = -1  # optimizer steps; > 0 overrides epochs
    warmup: float = 0.05  # < 1: share of the steps, else a number of steps
    weight_decay: float = 0.0
    # bookkeeping
    log_steps: int = 10
    save_steps: int = 100  # checkpoint (and eval) every this many steps
    save_total_limit: int = 2
    seed: int = 1337
    resume: bool = True  # resume from the last checkpoint in out/checkpoints, if any

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 2e-5 if self.full_finetune else 2e-4

    @property
    def prompt_format(self) -> PromptFormat:
        if self.mark_question_words is None:
            return PromptFormat.load(self.init_adapter)
        return PromptFormat(mark_question_words=self.mark_question_words)


# --- data -------------------------------------------------------------------------


def read_demos(paths) -> list[Demonstration]:
    """Every demonstration in the given JSONL files, in order."""
    return [demo for path in paths for demo in read_demonstrations(path)]


def split_demos(demos: list, eval_share: float, seed: int) -> tuple[list, list]:
    """(train, eval), split by demonstration: the steps of one episode share most of their text."""
    order = list(range(len(demos)))
    random.Random(seed).shuffle(order)
    n_eval = min(int(eval_share * len(demos)), len(demos) - 1) if eval_share > 0 else 0
    held = set(order[:n_eval])
    return [d for i, d in enumerate(demos) if i not in held], [d for i, d in enumerate(demos) if i in held]


def read_and_split(config: TrainConfig) -> tuple[list[Demonstration], list[Demonstration]]:
    """(train, eval) demonstrations of every file, each file split alone, its training part repeated."""
    repeats = list(config.demo_repeats) + [1] * (len(config.demos) - len(config.demo_repeats))
    train_demos, eval_demos = [], []
    for path, times in zip(config.demos, repeats):
        held_in, held_out = split_demos(read_demos([path]), config.eval_share, config.seed)
        train_demos += held_in * times
        eval_demos += held_out
    return train_demos, eval_demos


def read_and_split_examples(config: TrainConfig) -> tuple[list[dict], list[dict]]:
    """(train, eval) answer-step examples of every `examples` file, each file split alone."""

    train_examples, eval_examples = [], []
    for path in config.examples:
        held_in, held_out = split_demos(read_examples(path), config.eval_share, config.seed)
        train_examples += held_in
        eval_examples += held_out
    return train_examples, eval_examples


def reading_pairs(tokenizer, examples: list[dict]) -> list[tuple[str, str]]:
    """The (prompt, target) pair of each answer-step example: the reading prompt, the short cited answer."""
    if not examples:
        return []

    return [(reading_prompt(tokenizer, e["question"], quotes_of(e)), e["target"]) for e in examples]


def pairs_of(demos: list[Demonstration], answer_weight: int = 1,
             prompt_format: PromptFormat = PLAIN) -> list[tuple[str, str]]:
    """The (prompt, target) pairs of the demonstrations, answer pairs repeated `answer_weight` times."""
    pairs = []
    for demo in demos:
        examples = examples_from_demonstration(demo, prompt_format)
        if teaches_answer(demo):  # the answer pair is the last one
            examples = examples[:-1] + examples[-1:] * answer_weight
        pairs += examples
    return pairs


def encode(tokenizer, prompt: str, target: str, max_length: int) -> dict | None:
    """One training row: input_ids = prompt + target + eos, labels = IGNORE on the prompt.

    Prompt and target are tokenized apart, as at generation time (the model continues the
    prompt's tokens), and without special tokens: SmolLM2's tokenizer adds none anyway, and
    the only one we want is the final eos, which teaches the model to stop.
    Too long: the prompt loses tokens from the left. The end of an observation (page text,
    actions left, `♦Next action`) is what the next action depends on most; the question at
    its start is lost first, so keep max_length above the longest observations (~550
    tokens on the local corpus). Rollouts must truncate the same way (truncation_side="left").
    Returns None when the target alone does not fit.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    room = max_length - len(target_ids)
    if room < 1:
        return None
    truncated = len(prompt_ids) > room
    prompt_ids = prompt_ids[len(prompt_ids) - room :] if truncated else prompt_ids
    return {
        "input_ids": prompt_ids + target_ids,
        "labels": [IGNORE] * len(prompt_ids) + target_ids,
        "truncated": truncated,
    }


@dataclass
class Collator:
    """Pads a batch on the right, per batch. Right padding is fine for training (causal
    attention never looks ahead, and padded labels are ignored), though the tokenizer pads
    on the left for generation."""

    pad_token_id: int

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(row["input_ids"]) for row in rows)
        batch = {"input_ids": [], "attention_mask": [], "labels": []}
        for row in rows:
            pad = width - len(row["input_ids"])
            batch["input_ids"].append(row["input_ids"] + [self.pad_token_id] * pad)
            batch["attention_mask"].append([1] * len(row["input_ids"]) + [0] * pad)
            batch["labels"].append(row["labels"] + [IGNORE] * pad)
        return {name: torch.tensor(values) for name, values in batch.items()}


def build_rows(tokenizer, pairs, max_length: int) -> tuple[list[dict], dict]:
    """Encoded rows for the pairs, and counts of what was truncated or skipped."""
    rows, skipped, truncated = [], 0, 0
    for prompt, target in pairs:
        row = encode(tokenizer, prompt, target, max_length)
        if row is None:
            skipped += 1
            continue
        truncated += row.pop("truncated")
        rows.append(row)
    return rows, {"rows": len(rows), "truncated": truncated, "skipped": skipped}


# --- model --------------------------------------------------------------------------


def base_name(config: TrainConfig) -> str:
    """The base model as it should be written down: a known name, hub id or absolute folder."""
    if config.base is None:
        return DEFAULT_MODEL
    path = Path(config.base).expanduser()
    return str(path.resolve()) if path.is_dir() else config.base


def prepare_model(config: TrainConfig):
    """The base model in fp32 on the CPU (the Trainer moves it and autocasts), with LoRA unless full."""

    model, tokenizer = load_model(config.base, device="cpu", dtype=torch.float32)
    set_seed(config.seed)  # the LoRA A matrices start random
    if config.init_adapter:
        model = PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
        model.peft_config["default"].base_model_name_or_path = base_name(config)
    elif not config.full_finetune:
        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=list(config.lora_targets), task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
        # Written into adapter_config.json: lets load_policy find the base on another machine,
        # where the converted folder's absolute path means nothing.
        model.peft_config["default"].base_model_name_or_path = base_name(config)
    if config.train_layers is not None:
        freeze_lower_layers(model, config.train_layers)
    return model, tokenizer


def freeze_lower_layers(model, trained: int) -> None:
    """Leave trainable only the weights of the top `trained` decoder layers (and none outside them)."""
    layers = model.config.num_hidden_layers
    if not 0 < trained <= layers:
        raise ValueError(f"train_layers must be between 1 and {layers}, got {trained}")
    lowest = layers - trained
    for name, parameter in model.named_parameters():
        match = re.search(r"\.layers\.(\d+)\.", name)
        parameter.requires_grad_(bool(parameter.requires_grad and match and int(match.group(1)) >= lowest))


def hardware() -> str:
    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"cpu: {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


# --- training -------------------------------------------------------------------------


def target_loss(model, inputs: dict, num_items_in_batch=None):
    """(loss, outputs) with logits computed only where a target token is predicted.

    A row is a ~300-token prompt and a ~20-token target. Projecting every prompt
    position onto the 49k-word vocabulary (and back) is about a fifth of a step on
    a CPU, all of it thrown away by the label mask. The loss is the causal-LM loss
    the model would compute itself: summed, divided by the target tokens in the
    batch (or in the whole accumulated step when the Trainer passes that count).
    """
    labels = inputs["labels"]
    shifted = labels[:, 1:]  # position i predicts token i + 1
    keep = (shifted != IGNORE).any(dim=0).nonzero().flatten()
    forward = {name: value for name, value in inputs.items() if name != "labels"}
    outputs = model(**forward, logits_to_keep=keep)
    targets = shifted[:, keep]
    loss = torch.nn.functional.cross_entropy(outputs.logits.float().flatten(0, 1), targets.flatten(),
                                             ignore_index=IGNORE, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (targets != IGNORE).sum()
    return loss / count, outputs


def _trainer_class(prompt_format: PromptFormat = PLAIN, reader: Path | None = None):

    class TargetLossTrainer(Trainer):
        """The transformers Trainer, with `target_loss` as its loss; every save (checkpoints too)
        keeps the prompt format, and the quote reader of the policy it continues, beside the weights,
        so that any of them loads as the policy it is."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, outputs = target_loss(model, inputs, num_items_in_batch)
            return (loss, outputs) if return_outputs else loss

        def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
            super().save_model(output_dir, _internal_call)
            if self.is_world_process_zero():
                folder = Path(output_dir or self.args.output_dir)
                prompt_format.save(folder)
                # The reader reads the page's text, not the model's weights: a continued policy keeps it.
                if reader is not None and not (folder / READER_FILE).exists():
                    shutil.copyfile(reader, folder / READER_FILE)

    return TargetLossTrainer


def train(config: TrainConfig) -> dict:
    """Fine-tune on the demonstrations; returns what it writes to out/training.json."""

    start = time.perf_counter()
    out = Path(config.out)
    checkpoints = out / "checkpoints"
    train_demos, eval_demos = read_and_split(config)
    train_examples, eval_examples = read_and_split_examples(config)
    if not (train_demos or eval_demos or train_examples or eval_examples):
        files = ", ".join(map(str, config.demos + config.examples)) or "(no files given)"
        raise ValueError(f"no demonstrations or examples in {files}")

    model, tokenizer = prepare_model(config)
    prompt_format = config.prompt_format
    train_pairs = pairs_of(train_demos, config.answer_weight, prompt_format) + reading_pairs(tokenizer, train_examples)
    eval_pairs = pairs_of(eval_demos, prompt_format=prompt_format) + reading_pairs(tokenizer, eval_examples)
    train_rows, train_counts = build_rows(tokenizer, train_pairs, config.max_length)
    eval_rows, eval_counts = build_rows(tokenizer, eval_pairs, config.max_length)
    if not train_rows:
        raise ValueError(f"no training rows: every target is longer than max_length={config.max_length}")

    cuda = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.lr,
        warmup_steps=config.warmup if config.warmup < 1 else int(config.warmup),
        weight_decay=config.weight_decay,
        lr_scheduler_type="cosine",
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        # CPUs train in fp32; GPUs autocast to bf16 over fp32 weights where they can.
        bf16=cuda and torch.cuda.is_bf16_supported(),
        logging_steps=config.log_steps,
        logging_first_step=True,
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        eval_strategy="steps" if eval_rows else "no",
        eval_steps=config.save_steps,
        seed=config.seed,
        label_names=["labels"],  # a PeftModel's forward hides them from the Trainer's guess
        remove_unused_columns=False,
        dataloader_pin_memory=cuda,
        report_to="none",
    )
    reader = Path(config.init_adapter) / READER_FILE if config.init_adapter else None
    trainer = _trainer_class(prompt_format, reader if reader is not None and reader.is_file() else None)(
        model=model,
        args=args,
        train_dataset=train_rows,  # a list of dicts is all a DataLoader needs
        eval_dataset=eval_rows or None,
        data_collator=Collator(tokenizer.pad_token_id),
        processing_class=tokenizer,  # saved with each checkpoint and the final model
    )
    last = get_last_checkpoint(str(checkpoints)) if config.resume and checkpoints.is_dir() else None
    resumed_from_step = _checkpoint_step(last)
    result = trainer.train(resume_from_checkpoint=last)
    eval_loss = None
    if eval_rows:  # the loss at the last step: logged already when that step was an eval step
        logged = [e for e in trainer.state.log_history if "eval_loss" in e]
        at_end = logged and logged[-1]["step"] == trainer.state.global_step
        eval_loss = logged[-1]["eval_loss"] if at_end else trainer.evaluate()["eval_loss"]

    trainer.save_model(str(out))  # only the adapter for a PeftModel, with the tokenizer
    summary = {
        "config": asdict(config) | {"learning_rate": config.lr,
                                    "mark_question_words": prompt_format.mark_question_words},
        "base": base_name(config),
        "demonstrations": {"train": len(train_demos), "eval": len(eval_demos)},
        "answer_examples": {"train": len(train_examples), "eval": len(eval_examples)},
        "examples": {"train": train_counts, "eval": eval_counts},
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "resumed_from_step": resumed_from_step,
        "train_loss": _last(trainer.state.log_history, "loss"),
        "train_loss_mean": result.training_loss,  # over the steps of this run
        "eval_loss": eval_loss,
        "wall_s": round(time.perf_counter() - start, 1),  # this run only, not earlier ones it resumed
        "hardware": hardware(),
        "precision": "bf16 autocast" if args.bf16 else "fp32",
        "versions": _versions(),
    }
    if trainer.is_world_process_zero():
        (out / "training.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        plot_losses(trainer.state.log_history, out / "loss.png")
    return summary


def _checkpoint_step(checkpoint: str | None) -> int:
    return int(Path(checkpoint).name.rsplit("-", 1)[-1]) if checkpoint else 0


def _last(log_history: list[dict], key: str) -> float | None:
    values = [entry[key] for entry in log_history if key in entry]
    return values[-1] if values else None


def _versions() -> dict:
    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


def plot_losses(log_history: list[dict], path: Path) -> None:
    """Train and eval loss against the optimizer step, as a PNG."""
    with png(path) as (ax,):
        if ax is None:
            return
        curve(ax, logged(log_history, "loss"), "train")
        curve(ax, logged(log_history, "eval_loss"), "eval")
        ax.set(xlabel="optimizer step", ylabel="loss (target tokens)", title="behavior cloning")
        ax.legend()


# --- loading the trained policy ---------------------------------------------------------


# --- command line ------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `webqa train bc` (also usable as a subparser's)."""
    d = TrainConfig()
    parser.add_argument("--demos", nargs="*", default=[], metavar="FILE", help="JSONL files of demonstrations")
    parser.add_argument("--examples", nargs="*", default=[], metavar="FILE",
                        help="JSONL files of answer-step examples (webqa.policy.reading_data): trains an answerer")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (resumes if it has checkpoints)")
    parser.add_argument("--base", default=None, metavar="MODEL", help=f"base model (default: {DEFAULT_MODEL})")
    parser.add_argument("--full", action="store_true", help="full fine-tune instead of LoRA")
    parser.add_argument("--max-steps", type=int, default=d.max_steps, help="optimizer steps (overrides --epochs)")
    parser.add_argument("--epochs", type=float, default=d.epochs)
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default 2e-4 LoRA, 2e-5 full)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--grad-accum", type=int, default=d.grad_accum)
    parser.add_argument("--max-length", type=int, default=d.max_length, help="tokens per training row")
    parser.add_argument("--lora-r", type=int, default=d.lora_r)
    parser.add_argument("--train-layers", type=int, default=None, metavar="K",
                        help="train only the top K layers (faster steps; default: all)")
    parser.add_argument("--mark-question-words", action=argparse.BooleanOptionalAction, default=None,
                        help="bold the question's words in the page text the policy reads "
                             "(default: as the --init-adapter was trained; off for a fresh adapter)")
    parser.add_argument("--repeat", type=int, nargs="+", default=[], metavar="K",
                        help="times each --demos file's training part is repeated, in order (default: 1 each)")
    parser.add_argument("--answer-weight", type=int, default=d.answer_weight, help="repeats of each answer example")
    parser.add_argument("--eval-share", type=float, default=d.eval_share, help="share of demos held out")
    parser.add_argument("--save-steps", type=int, default=d.save_steps)
    parser.add_argument("--log-steps", type=int, default=d.log_steps)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--init-adapter", metavar="DIR", help="continue this LoRA adapter (webqa/data/policy)")
    parser.add_argument("--fresh", action="store_true", help="ignore existing checkpoints")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if len(args.repeat) > len(args.demos):
        raise ValueError(f"--repeat gives {len(args.repeat)} counts for {len(args.demos)} --demos files")
    return TrainConfig(
        demos=args.demos, examples=args.examples, out=args.out, base=args.base, full_finetune=args.full,
        max_steps=args.max_steps, epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size, grad_accum=args.grad_accum,
        max_length=args.max_length, lora_r=args.lora_r, lora_alpha=2 * args.lora_r, train_layers=args.train_layers,
        answer_weight=args.answer_weight, eval_share=args.eval_share, save_steps=args.save_steps,
        log_steps=args.log_steps, seed=args.seed, resume=not args.fresh, init_adapter=args.init_adapter,
        mark_question_words=args.mark_question_words, demo_repeats=tuple(args.repeat),
    )


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="webqa train bc", description="Behavior cloning."))
    summary = train(config_from_args(parser.parse_args(argv)))
    eval_loss = "-" if summary["eval_loss"] is None else f"{summary['eval_loss']:.3f}"
    print(f"{summary['steps']} steps, train loss {summary['train_loss']:.3f}, eval loss {eval_loss}, "
          f"{summary['wall_s']:.0f} s on {summary['hardware']}; saved to {summary['config']['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
