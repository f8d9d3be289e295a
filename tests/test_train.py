"""Behavior cloning on a tiny random Llama that reads with SmolLM2's real tokenizer,
on demonstrations made by driving the real browser over the real corpus."""

import argparse
import json
from pathlib import Path

import platformdirs
import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from webqa.env import Browser
from webqa.paths import cache_dir
from webqa.policy.model import DEFAULT_MODEL, KNOWN_MODELS, gguf_file, load_policy
from webqa.policy.prompts import examples_from_demonstration
from webqa.policy.train import (
    IGNORE,
    Collator,
    TrainConfig,
    add_arguments,
    build_rows,
    config_from_args,
    encode,
    main,
    pairs_of,
    read_and_split,
    read_demos,
    target_loss,
    train,
)
from webqa.types import Demonstration, Quote, Step

SCRIPTS = [  # question, search query, answer
    ("Which river flows through Vienna?", "Vienna", "The Danube flows through Vienna [1]."),
    ("Who wrote Hamlet?", "Hamlet", "Hamlet was written by William Shakespeare [1]."),
    ("What is the capital of France?", "Paris", "Paris is the capital of France [1]."),
]


def make_demo(corpus, question, query, answer):
    """Search, open the first result, quote a few words of it, end and answer."""
    browser = Browser(corpus)
    browser.reset(question)
    assert browser.step(f"Search {query}").error is None
    assert browser.step("Clicked on link 0").error is None
    words = " ".join(" ".join(browser.page.plain_lines).split()[5:13])
    assert browser.step(f"Quote: {words}").error is None
    assert browser.step("End: Answer").done
    return Demonstration.from_dict(browser.episode.to_dict() | {"answer": answer, "producer": "expert"})


@pytest.fixture(scope="module")
def demo_file(corpus, tmp_path_factory):
    path = tmp_path_factory.mktemp("demos") / "demos.jsonl"
    demos = [make_demo(corpus, *script) for script in SCRIPTS]
    path.write_text("".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in demos), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """SmolLM2's tokenizer files: from a converted model folder, else from the GGUF file (~8 s, but
    much less than converting the whole model)."""
    folder = tmp_path_factory.mktemp("tokenizer")
    name = KNOWN_MODELS[DEFAULT_MODEL].folder
    # This session's cache (if a slow test converted the model), then the user's (only read).
    converted = [cache_dir("models") / name, Path(platformdirs.user_cache_dir("webqa")) / "models" / name]
    found = [path for path in converted if (path / "tokenizer.json").exists()]
    if found:
        tokenizer = AutoTokenizer.from_pretrained(found[0])
    else:
        path = gguf_file(KNOWN_MODELS[DEFAULT_MODEL])
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return AutoTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture(scope="module")
def tiny_base(tokenizer_dir, tmp_path_factory):
    """A 2-layer random Llama (hidden 64, 4 heads) with the real tokenizer, as a local model folder."""
    folder = tmp_path_factory.mktemp("tiny-base")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
        # Wider than the usual 0.02: LoRA leaves the random lm_head frozen, and with tiny weights even
        # the best-aligned hidden state moves a logit by ~1, which caps how far the loss can fall.
        initializer_range=0.1,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=None, pad_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_config(tiny_base, demo_file, out, **overrides):
    knobs = {"demos": [str(demo_file)], "out": str(out), "base": str(tiny_base), "max_length": 128, "batch_size": 4,
             "learning_rate": 1e-2, "warmup": 0, "eval_share": 0.0, "log_steps": 1, "save_steps": 50, "seed": 0}
    return TrainConfig(**(knobs | overrides))


def batch_loss(model, batch):
    with torch.no_grad():
        return model(**batch).loss.item()


# --- data ---------------------------------------------------------------------------


def test_tokenizer_adds_no_special_tokens_of_its_own(tokenizer):
    assert tokenizer("Search Vienna")["input_ids"] == tokenizer("Search Vienna", add_special_tokens=False)["input_ids"]


def test_labels_mask_the_prompt_exactly(demo_file, tokenizer):
    for prompt, target in pairs_of(read_demos([demo_file])):
        row = encode(tokenizer, prompt, target, max_length=4096)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
        assert row["input_ids"] == prompt_ids + target_ids + [tokenizer.eos_token_id]
        assert row["labels"][: len(prompt_ids)] == [IGNORE] * len(prompt_ids)
        learned = [t for t in row["labels"] if t != IGNORE]
        assert tokenizer.decode(learned) == target + tokenizer.eos_token
        assert not row["truncated"]


def test_left_truncation_keeps_the_whole_target(demo_file, tokenizer):
    prompt, target = pairs_of(read_demos([demo_file]))[1]  # the search results page: the longest
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    row = encode(tokenizer, prompt, target, max_length=len(target_ids) + 50)
    assert row["truncated"] and len(row["input_ids"]) == len(target_ids) + 50
    assert row["input_ids"] == prompt_ids[-50:] + target_ids  # the end of the prompt survives
    assert row["labels"] == [IGNORE] * 50 + target_ids
    assert encode(tokenizer, prompt, target, max_length=len(target_ids)) is None  # no room for any prompt


def test_answer_weight_repeats_only_answer_examples(demo_file):
    demos = read_demos([demo_file])
    assert len(demos) == 3
    once, thrice = pairs_of(demos, 1), pairs_of(demos, 3)
    assert len(once) == sum(len(examples_from_demonstration(d)) for d in demos) == 3 * (4 + 1)
    assert len(thrice) == len(once) + 3 * 2
    assert sum(target == demos[0].answer for _, target in thrice) == 3


def test_collator_pads_on_the_right_and_ignores_the_padding(demo_file, tokenizer):
    rows, counts = build_rows(tokenizer, pairs_of(read_demos([demo_file]))[:2], max_length=768)
    assert counts == {"rows": 2, "truncated": 0, "skipped": 0}
    batch = Collator(tokenizer.pad_token_id)(rows)
    short = min(range(2), key=lambda i: len(rows[i]["input_ids"]))
    n = len(rows[short]["input_ids"])
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert batch["attention_mask"][short, :n].all() and not batch["attention_mask"][short, n:].any()
    assert (batch["labels"][short, n:] == IGNORE).all()
    assert batch["input_ids"][short, :n].tolist() == rows[short]["input_ids"]


# --- training -------------------------------------------------------------------------


def test_training_lowers_the_loss_and_saves_a_loadable_adapter(tiny_base, demo_file, tokenizer, tmp_path):
    config = tiny_config(tiny_base, demo_file, tmp_path / "bc", max_steps=8)
    rows, _ = build_rows(tokenizer, pairs_of(read_demos([demo_file])), config.max_length)
    batch = Collator(tokenizer.pad_token_id)(rows[:4])
    before = batch_loss(load_policy(tiny_base, device="cpu")[0], batch)  # untrained: LoRA starts as a no-op

    summary = train(config)
    out = tmp_path / "bc"
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "training.json", "loss.png"} <= names
    assert "model.safetensors" not in names  # only the adapter, not the base weights
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_base)

    model, policy_tokenizer = load_policy(out, device="cpu")
    assert policy_tokenizer.padding_side == "left"
    assert type(model).__name__ == "LlamaForCausalLM"  # merged: no peft wrapper left
    after = batch_loss(model, batch)
    assert after < before - 0.5, (before, after)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"][:2, :10]).logits
    assert logits.shape == (2, 10, len(tokenizer))

    written = json.loads((out / "training.json").read_text())
    assert written == json.loads(json.dumps(summary))
    for key in ("config", "examples", "steps", "wall_s", "hardware", "train_loss", "eval_loss", "resumed_from_step"):
        assert key in written
    assert written["steps"] == 8 and written["resumed_from_step"] == 0
    assert written["examples"]["train"]["rows"] == 15 and written["hardware"].startswith("cpu")


def test_target_loss_is_the_models_own_causal_lm_loss(tiny_base, demo_file, tokenizer):
    model = load_policy(tiny_base, device="cpu")[0]
    rows, _ = build_rows(tokenizer, pairs_of(read_demos([demo_file])), 128)
    batch = Collator(tokenizer.pad_token_id)(rows[:4])  # rows of different lengths: padded, ragged targets
    with torch.no_grad():
        loss, outputs = target_loss(model, batch)
        expected = model(**batch).loss
    targets = int((batch["labels"][:, 1:] != IGNORE).sum())
    assert torch.allclose(loss, expected, atol=1e-5), (loss, expected)
    # Logits only at the positions that predict a target token, far fewer than the row length.
    assert outputs.logits.shape[0] == 4 and outputs.logits.shape[1] < batch["input_ids"].shape[1] / 2
    assert outputs.logits.shape[1] >= targets / 4
    with torch.no_grad():  # normalized by a count given from outside (gradient accumulation)
        assert torch.allclose(target_loss(model, batch, num_items_in_batch=2 * targets)[0], expected / 2, atol=1e-5)


def test_training_resumes_from_the_last_checkpoint(tiny_base, demo_file, tmp_path):
    out = tmp_path / "bc"
    args = ["--demos", str(demo_file), "--out", str(out), "--base", str(tiny_base), "--max-length", "128",
            "--batch-size", "1",
            "--save-steps", "2", "--log-steps", "1", "--eval-share", "0.34"]
    assert main(args + ["--max-steps", "2"]) == 0
    assert (out / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors").exists()
    first = json.loads((out / "training.json").read_text())
    assert first["demonstrations"] == {"train": 2, "eval": 1} and first["eval_loss"] is not None

    summary = train(tiny_config(tiny_base, demo_file, out, max_steps=4, save_steps=2, eval_share=0.34, batch_size=1))
    assert summary["resumed_from_step"] == 2 and summary["steps"] == 4
    state = json.loads((out / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert [e["step"] for e in state["log_history"] if "loss" in e] == [1, 2, 3, 4]  # continued, not restarted


def test_train_layers_trains_only_the_top_layers(tiny_base, demo_file, tmp_path):
    from safetensors.torch import load_file

    first = tmp_path / "all"
    train(tiny_config(tiny_base, demo_file, first, max_steps=2))
    summary = train(tiny_config(tiny_base, demo_file, tmp_path / "top", max_steps=3, init_adapter=str(first),
                                train_layers=1))
    before = load_file(first / "adapter_model.safetensors")
    after = load_file(tmp_path / "top" / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    lower = [name for name in before if ".layers.0." in name]
    upper = [name for name in before if ".layers.1." in name]
    assert lower and upper
    assert all(torch.equal(before[name], after[name]) for name in lower)  # frozen: exactly as it started
    assert any(not torch.equal(before[name], after[name]) for name in upper)
    assert summary["trainable_parameters"] == sum(after[name].numel() for name in upper)
    with pytest.raises(ValueError, match="train_layers"):
        train(tiny_config(tiny_base, demo_file, tmp_path / "bad", max_steps=1, train_layers=3))


# --- slow: the real default model ---------------------------------------------------------


@pytest.mark.slow
def test_two_lora_steps_on_the_real_model(demo_file, tmp_path):
    summary = train(TrainConfig(demos=[str(demo_file)], out=str(tmp_path / "bc"), max_steps=2, batch_size=2,
                                max_length=256, eval_share=0.0, log_steps=1))
    assert summary["steps"] == 2 and summary["base"] == DEFAULT_MODEL
    assert summary["examples"]["train"]["truncated"] > 0  # search pages are longer than 256 tokens
    model, tokenizer = load_policy(tmp_path / "bc", device="cpu")
    ids = tokenizer("♦Question\nWho wrote Hamlet?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert model(input_ids=ids).logits.shape == (1, ids.shape[1], len(tokenizer))


def test_a_click_undone_by_back_is_shown_but_not_imitated():
    steps = [Step(f"observation {n}", action) for n, action in enumerate(
        ["Search Lolita novel", "Clicked on link 2", "Back", "Clicked on link 0", "Quote: Lolita is a novel", "End: Answer"])]
    quotes = [Quote("Lolita", "https://en.wikipedia.org/wiki/Lolita", "Lolita is a novel by Nabokov.")]
    demo = Demonstration("Who wrote Lolita?", steps=steps, quotes=quotes, end="Answer",
                         answer="Nabokov [1].", producer="expert")
    targets = [target for _, target in examples_from_demonstration(demo)]
    assert targets == ["Search Lolita novel", "Back", "Clicked on link 0", "Quote: Lolita is a novel", "End: Answer",
                       "Nabokov [1]."]
    assert [prompt for prompt, _ in examples_from_demonstration(demo)][1] == "observation 2\n"
    assert pairs_of([demo], answer_weight=2)[-2:] == [examples_from_demonstration(demo)[-1]] * 2
    # In a DAgger-labelled demonstration each action is the expert's label for the state: all are kept.
    demo.settings["dagger"] = {"round": 1}
    assert len(examples_from_demonstration(demo)) == len(steps) + 1


def test_each_file_is_split_alone_and_its_training_part_repeated(demo_file, tmp_path):
    demos = read_demos([demo_file])
    second = tmp_path / "second.jsonl"
    second.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in demos[:2]), encoding="utf-8")
    config = TrainConfig(demos=[str(demo_file), str(second)], demo_repeats=(1, 3), eval_share=0.4)
    train_demos, eval_demos = read_and_split(config)
    # 3 demonstrations: 1 held out; 2: none (at least one must train); the second file's counted thrice.
    assert len(eval_demos) == 1 and len(train_demos) == 2 + 3 * 2
    assert eval_demos[0] not in train_demos[:2]
    assert train_demos[2:] == demos[:2] * 3
    assert len(read_and_split(TrainConfig(demos=[str(demo_file), str(second)], eval_share=0))[0]) == 5
    parser = add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--demos", str(demo_file), str(second), "--out", "x", "--repeat", "1", "3"])
    assert config_from_args(args).demo_repeats == (1, 3)
    with pytest.raises(ValueError, match="3 counts for 2 --demos files"):
        config_from_args(parser.parse_args(["--demos", "a", "b", "--out", "x", "--repeat", "1", "2", "3"]))


def test_the_prompt_format_is_trained_saved_and_inherited(tiny_base, demo_file, tmp_path):
    from webqa.policy.prompts import PLAIN, PromptFormat

    marked = PromptFormat(mark_question_words=True)
    assert any("**" in prompt for prompt, _ in pairs_of(read_demos([demo_file]), prompt_format=marked))
    first = tmp_path / "first"
    assert main(["--demos", str(demo_file), "--out", str(first), "--base", str(tiny_base), "--max-length", "128",
                 "--max-steps", "1", "--save-steps", "1", "--eval-share", "0", "--mark-question-words"]) == 0
    checkpoint = first / "checkpoints" / "checkpoint-1"
    assert PromptFormat.load(first) == PromptFormat.load(checkpoint) == marked
    assert json.loads((first / "training.json").read_text())["config"]["mark_question_words"] is True
    # Continuing an adapter (or a checkpoint) keeps the format it was trained with, unless told otherwise.
    train(tiny_config(tiny_base, demo_file, tmp_path / "kept", max_steps=1, init_adapter=str(checkpoint)))
    assert PromptFormat.load(tmp_path / "kept") == marked
    train(tiny_config(tiny_base, demo_file, tmp_path / "plain", max_steps=1, init_adapter=str(first),
                      mark_question_words=False))
    assert PromptFormat.load(tmp_path / "plain") == PLAIN


def test_a_run_that_continues_a_policy_keeps_its_quote_reader(tiny_base, demo_file, tmp_path):
    from webqa.policy.reader import READER_FILE

    first = tmp_path / "first"
    train(tiny_config(tiny_base, demo_file, first, max_steps=1))
    assert not (first / READER_FILE).exists()
    (first / READER_FILE).write_text('{"written": "by webqa train reader"}')
    train(tiny_config(tiny_base, demo_file, tmp_path / "next", max_steps=1, init_adapter=str(first)))
    assert (tmp_path / "next" / READER_FILE).read_text() == (first / READER_FILE).read_text()
    # Its checkpoints too: any of them loads as the policy it is, reader included.
    checkpoint = tmp_path / "next" / "checkpoints" / "checkpoint-1"
    assert (checkpoint / READER_FILE).read_text() == (first / READER_FILE).read_text()
