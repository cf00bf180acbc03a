"""Checkpoints in the Hugging Face GPT-2 layout: our on-disk format.

A checkpoint is a directory holding `config.json` (transformers' GPT2Config keys) and the
weights, `model.safetensors` (or sharded `model-*.safetensors` with an index, or the older
`pytorch_model.bin`). Whatever `transformers.GPT2LMHeadModel.save_pretrained` writes we read,
and what we write it reads, so checkpoints move freely between this package, transformers,
lm-evaluation-harness and the hub.

Two details of their layout: GPT-2's original code used "Conv1D" layers whose weights are
stored (in, out), the transpose of nn.Linear's (out, in); and keys may or may not carry the
`transformer.` prefix (hub checkpoints predate it), with `attn.bias` / `attn.masked_bias`
causal-mask buffers that are not parameters.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch

from .config import HUB_ALIASES, GPT2Config, preset_names
from .errors import CheckpointError, ConfigError
from .model import GPT2

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
TORCH_FILE = "pytorch_model.bin"

# Weights stored (in, out) by Conv1D; nn.Linear wants (out, in).
_CONV1D_SUFFIXES = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")
# Buffers of transformers' older GPT-2 code (the causal mask), not parameters.
_IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")
# Files fetched from the hub: the model, and the tokenizer that goes with it.
_HUB_PATTERNS = [CONFIG_FILE, "*.safetensors", SAFETENSORS_INDEX_FILE, "vocab.json", "merges.txt",
                 "tokenizer.json", "tokenizer_config.json", "generation_config.json"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}


def parse_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """torch.float32 / "float32" / "fp32" / "bf16" / ... -> torch.dtype (None stays None)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise CheckpointError(f"unknown dtype {dtype!r}; choose one of: float32, bfloat16, float16")
    return _DTYPES[dtype]


# --------------------------------------------------------------------------- locating a checkpoint


# The small model trained on the bundled corpus, shipped in the package under the name "demo".
DEMO_NAME = "demo"
DEMO_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "demo-model"


def resolve_checkpoint(name_or_path: str | os.PathLike[str]) -> Path:
    """A local checkpoint directory for a path, "demo" (the bundled demo model) or a hub name
    (downloading when a network exists). An existing path wins over a name."""
    path = Path(name_or_path).expanduser()
    if str(name_or_path) == DEMO_NAME and not path.exists():
        if not (DEMO_MODEL_DIR / CONFIG_FILE).is_file():
            raise CheckpointError("demo: this installation has no bundled demo model; reinstall gpt2 "
                                  "or pass a checkpoint directory or a hub name such as gpt2")
        return DEMO_MODEL_DIR
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(
                f"{path}: not a directory; pass a checkpoint directory holding {CONFIG_FILE} and {SAFETENSORS_FILE}"
            )
        return path
    name = str(name_or_path)
    if not _HUB_ID.match(name) or name.startswith((".", "~")) or os.sep + os.sep in name:
        raise CheckpointError(f"{name}: no such checkpoint directory")
    return download(name)


def download(name: str) -> Path:
    """Fetch a hub model (config, weights, tokenizer files) into huggingface_hub's cache.

    The cache is tried first, so a model downloaded once loads with no network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    repo_id = "openai-community/" + name if name in HUB_ALIASES.values() else name
    try:
        try:
            snapshot = Path(snapshot_download(repo_id, allow_patterns=_HUB_PATTERNS, local_files_only=True))
        except LocalEntryNotFoundError:
            snapshot = Path(snapshot_download(repo_id, allow_patterns=_HUB_PATTERNS))
        if not weights_files(snapshot):  # an older repository without safetensors
            snapshot = Path(snapshot_download(repo_id, allow_patterns=[TORCH_FILE]))
    except LocalEntryNotFoundError:
        raise CheckpointError(
            f"cannot download {name!r}: no network; pass a local directory holding "
            f"{CONFIG_FILE} and {SAFETENSORS_FILE}"
        ) from None
    except (RepositoryNotFoundError, GatedRepoError):
        raise CheckpointError(
            f"{name}: no such checkpoint directory, and no such model on the Hugging Face hub "
            f"(GPT-2's are: {', '.join(n for n in preset_names() if n in HUB_ALIASES.values())})"
        ) from None
    except (HfHubHTTPError, OSError) as e:
        raise CheckpointError(f"cannot download {name!r}: {str(e).splitlines()[0]}") from None
    return snapshot


def weights_files(directory: Path) -> list[Path]:
    """The weights files of a checkpoint, safetensors preferred; [] if there are none."""
    if (directory / SAFETENSORS_FILE).is_file():
        return [directory / SAFETENSORS_FILE]
    index = directory / SAFETENSORS_INDEX_FILE
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{index}: not a valid safetensors index ({e})") from None
        return [directory / s for s in shards]
    if (directory / TORCH_FILE).is_file():
        return [directory / TORCH_FILE]
    return []


# --------------------------------------------------------------------------- loading


def load_config(directory: str | os.PathLike[str]) -> GPT2Config:
    """Read a checkpoint's config.json."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; a checkpoint directory needs {CONFIG_FILE}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    try:
        return GPT2Config.from_hf_dict(data, source=str(path))
    except ConfigError as e:
        raise CheckpointError(str(e)) from None


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        if not path.is_file():
            raise CheckpointError(f"{path}: no such file (named by {SAFETENSORS_INDEX_FILE})")
        try:
            return load_file(path, device="cpu")
        except Exception as e:  # safetensors raises its own SafetensorError and OSErrors
            raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({e})") from None
    try:
        # weights_only: tensors and plain containers only; never runs code from the file.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refused: the file holds more than tensors ({str(e).splitlines()[0]}); "
            "convert it to safetensors"
        ) from None
    except Exception as e:
        raise CheckpointError(f"{path}: corrupt or truncated PyTorch file ({e})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a dictionary of tensors")
    return state


def hf_to_ours(tensors: dict[str, torch.Tensor], config: GPT2Config, source: str) -> dict[str, torch.Tensor]:
    """Map a Hugging Face GPT-2 state dict onto this model's parameter names and layouts."""
    state: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        name = key.removeprefix("transformer.")
        if name.endswith(_IGNORED_SUFFIXES) or name == "lm_head.weight":  # mask buffers; tied head
            continue
        if not config.bias and (name.endswith(".bias") or name == "ln_f.bias"):
            continue  # zeros written for transformers' sake by save_model
        if name.endswith(_CONV1D_SUFFIXES):
            tensor = tensor.t()
        state["transformer." + name] = tensor
    return state


def load_model(
    name_or_path: str | os.PathLike[str],
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
) -> GPT2:
    """GPT2.from_pretrained: see there. dtype None keeps float32."""
    directory = resolve_checkpoint(name_or_path)
    config = load_config(directory)
    files = weights_files(directory)
    if not files:
        raise CheckpointError(
            f"{directory}: no weights file; expected {SAFETENSORS_FILE} (or {TORCH_FILE})"
        )
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        tensors.update(_read_tensors(f))
    source = str(files[0]) if len(files) == 1 else f"{directory} (sharded)"
    state = hf_to_ours(tensors, config, source)

    with torch.device("meta"):  # no memory and no random init for weights about to be replaced
        model = GPT2(config)
    expected = {k: v.shape for k, v in model.state_dict().items() if k != "lm_head.weight"}
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    if missing:
        raise CheckpointError(f"{source}: missing tensors {_few(missing)}")
    if unexpected:
        raise CheckpointError(f"{source}: unexpected tensors {_few(unexpected)}")
    for key, shape in expected.items():
        if state[key].shape != shape:
            raise CheckpointError(
                f"{source}: tensor {key.removeprefix('transformer.')} has shape "
                f"{tuple(state[key].shape)} but config.json implies {tuple(shape)}"
            )
    target_dtype = parse_dtype(dtype) or torch.float32
    state = {k: v.to(device=device or "cpu", dtype=target_dtype).contiguous() for k, v in state.items()}
    model.load_state_dict(state, strict=False, assign=True)
    model.lm_head.weight = model.transformer.wte.weight  # re-tie: assign replaced wte's tensor
    return model.eval()


def _few(keys: list[str], n: int = 3) -> str:
    shown = ", ".join(k.removeprefix("transformer.") for k in keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")


# --------------------------------------------------------------------------- saving


def ours_to_hf(state: dict[str, torch.Tensor], config: GPT2Config) -> dict[str, torch.Tensor]:
    """This model's state dict as transformers' GPT2LMHeadModel stores it (Conv1D layout,
    `transformer.` prefix, no tied lm_head). A model without biases gets zero biases, which
    is the same function, because transformers' GPT-2 always has them."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key == "lm_head.weight":
            continue
        if key.endswith(_CONV1D_SUFFIXES):
            tensor = tensor.t()
        out[key] = tensor.detach().to("cpu").contiguous()
    if not config.bias:
        for key in list(out):
            if key.endswith(".weight") and (".ln_" in key or ".c_" in key or key.endswith("ln_f.weight")):
                bias = key.removesuffix(".weight") + ".bias"
                width = out[key].shape[-1] if key.endswith(_CONV1D_SUFFIXES) else out[key].shape[0]
                out[bias] = torch.zeros(width, dtype=out[key].dtype)
    return out


def save_model(model: GPT2, directory: str | os.PathLike[str]) -> None:
    """GPT2.save_pretrained: config.json + model.safetensors, each written atomically."""
    save_state(model.state_dict(), model.config, directory)


def save_state(state: dict[str, torch.Tensor], config: GPT2Config, directory: str | os.PathLike[str]) -> None:
    """Write a GPT2 state dict (our names and layouts) as a Hugging Face checkpoint."""
    from safetensors.torch import save_file

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"{directory}: cannot create directory ({e.strerror})") from None
    tensors = ours_to_hf(state, config)
    dtype = next(iter(tensors.values())).dtype
    hf_config = config.to_hf_dict() | {"dtype": str(dtype).removeprefix("torch.")}
    with atomic_write(directory / SAFETENSORS_FILE) as tmp:
        save_file(tensors, tmp, metadata={"format": "pt"})
    with atomic_write(directory / CONFIG_FILE) as tmp:
        Path(tmp).write_text(json.dumps(hf_config, indent=2) + "\n", encoding="utf-8")


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path beside `path`; on success, fsync it and rename it into place.

    On any failure the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it 0600; give it the usual permissions
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
