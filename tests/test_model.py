"""The base model loader: the real default model (slow) and a tiny random one (fast)."""


import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from webqa.policy import model as model_module
from webqa.policy.model import (
    DEFAULT_MODEL,
    KNOWN_MODELS,
    GgufModel,
    ModelUnavailable,
    convert,
    load_gguf,
    load_model,
    resolve_model,
)
from webqa.pypi import downloads_dir

WORDS = ["<unk>", "<eos>", "the", "capital", "of", "france", "is", "paris", "what", "?", "."]


def tiny_model_folder(folder):
    """Save a 2-layer random Llama and a word-level tokenizer (no pad token) into `folder`."""
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>")
    config = LlamaConfig(
        vocab_size=len(WORDS), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        eos_token_id=1, bos_token_id=None, pad_token_id=None,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def chat_answer(model, tokenizer, question, max_new_tokens=20):
    """Greedy answer to one user message, special tokens removed."""
    messages = [{"role": "user", "content": question}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    inputs = inputs.to(model.device)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


# --- fast ----------------------------------------------------------------------


def test_local_folder_loads_ready_for_batched_generation(tmp_path):
    folder = tiny_model_folder(tmp_path / "tiny")
    assert resolve_model(str(folder)) == folder
    model, tokenizer = load_model(str(folder), device="cpu")
    assert isinstance(model, LlamaForCausalLM)
    assert not model.training
    assert model.dtype == torch.float32
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token == "<eos>"  # filled in: the folder's tokenizer had none

    batch = tokenizer(["what is the capital of france ?", "paris"], return_tensors="pt", padding=True)
    assert batch["attention_mask"][1, 0] == 0  # the short prompt is padded on the left
    with torch.no_grad():
        output = model.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert output.shape == (2, batch["input_ids"].shape[1] + 3)


def test_dtype_can_be_chosen(tmp_path):
    folder = tiny_model_folder(tmp_path / "tiny")
    model, _ = load_model(folder, device="cpu", dtype="bfloat16")
    assert model.dtype == torch.bfloat16


def test_missing_local_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelUnavailable, match="no such model folder"):
        resolve_model(str(tmp_path / "nowhere"))


def test_unreachable_hub_fails_fast_with_one_line(monkeypatch):
    monkeypatch.setattr(model_module, "_hub_reachable", lambda timeout=5.0: False)
    with pytest.raises(ModelUnavailable) as error:
        load_model("webqa-tests/no-such-model", device="cpu")  # in no HF cache
    message = str(error.value)
    assert "\n" not in message
    assert "unreachable" in message and "PyPI" in message


def test_hub_probe_says_no_when_nothing_listens(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens here
    assert model_module._hub_reachable(timeout=2) is False


def test_downloads_folder_honours_its_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("WEBQA_DOWNLOADS", str(tmp_path / "dl"))
    assert downloads_dir() == tmp_path / "dl"
    assert downloads_dir().is_dir()


def test_conversion_is_all_or_nothing(tmp_path, monkeypatch):
    """A failed conversion leaves no folder behind; a good one leaves exactly one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("WEBQA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(KNOWN_MODELS, "tiny", GgufModel("none==0", "none/tiny.gguf", "Tiny"))
    tiny = tiny_model_folder(tmp_path / "tiny")

    def broken(name):
        raise RuntimeError("killed mid-conversion")

    monkeypatch.setattr(model_module, "load_gguf", broken)
    with pytest.raises(RuntimeError):
        convert("tiny")
    models_dir = tmp_path / "cache" / "models"
    assert list(models_dir.iterdir()) == []

    loaded = lambda name: (AutoModelForCausalLM.from_pretrained(tiny), AutoTokenizer.from_pretrained(tiny))  # noqa: E731
    monkeypatch.setattr(model_module, "load_gguf", loaded)
    folder = convert("tiny")
    assert folder == models_dir / "Tiny"
    assert [p.name for p in models_dir.iterdir()] == ["Tiny"]
    assert (folder / "config.json").exists()
    assert resolve_model("TINY") == folder


# --- slow: the real default model ------------------------------------------------


@pytest.mark.slow
def test_default_model_converts_once_and_answers():
    folder = resolve_model()  # converts on first use (~30 s)
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert resolve_model(DEFAULT_MODEL) == folder
    stamp = folder.stat().st_mtime_ns

    model, tokenizer = load_model(device="cpu")
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token is not None and tokenizer.padding_side == "left"
    answer = chat_answer(model, tokenizer, "What is the capital of France?")
    assert "Paris" in answer

    load_model(device="cpu")  # the fast path: the folder is read, not rebuilt
    assert folder.stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_converted_folder_matches_the_gguf_model():
    folder_model, tokenizer = load_model(device="cpu")
    gguf_model, gguf_tokenizer = load_gguf()
    prompt = "The Danube flows through Vienna, Bratislava and"
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    assert ids.tolist() == gguf_tokenizer(prompt, return_tensors="pt")["input_ids"].tolist()
    with torch.no_grad():
        expected = gguf_model(ids).logits
        got = folder_model(ids).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
