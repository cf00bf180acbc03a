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

This layer works on configs and tensors only: `read_checkpoint` gives a directory's config and
state dict (in the model's names and layouts), `write_checkpoint` writes them back, and
`from_hf` / `to_hf` map between the two namings. `GPT2.from_pretrained` / `save_pretrained`
build on it, so imports run one way: model -> checkpoint -> config.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from .config import HUB_ALIASES, GPT2Config, preset_names
from .devices import parse_device
from .errors import CheckpointError, ConfigError, UsageError
from .fsutil import atomic_path, atomic_write_json

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
TORCH_FILE = "pytorch_model.bin"

# Weights stored (in, out) by Conv1D; nn.Linear wants (out, in).
_CONV1D_SUFFIXES = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")
# Buffers of transformers' older GPT-2 code (the causal mask), not parameters.
_IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")
# Task heads of fine-tuned checkpoints (transformers' GPT2ForSequenceClassification and
# GPT2DoubleHeadsModel, and our multi-task `heads.<task>.`): not part of the body; the
# fine-tuning package reads them (gpt2.finetune.checkpoint).
HEAD_PREFIXES = ("score.", "multiple_choice_head.", "heads.")
# Files fetched from the hub: the model, and the tokenizer that goes with it.
_HUB_PATTERNS = [CONFIG_FILE, "*.safetensors", SAFETENSORS_INDEX_FILE, "vocab.json", "merges.txt",
                 "tokenizer.json", "tokenizer_config.json", "generation_config.json"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}


DTYPE_NAMES = ("float32", "bfloat16", "float16")


def parse_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """torch.float32 / "float32" / "fp32" / "bf16" / ... -> torch.dtype (None stays None)."""
    if dtype is None or (isinstance(dtype, torch.dtype) and dtype in _DTYPES.values()):
        return dtype
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise UsageError(f"unknown dtype {str(dtype)!r}; choose one of: {', '.join(DTYPE_NAMES)}")
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


def read_config(directory: str | os.PathLike[str]) -> GPT2Config:
    """Read a checkpoint's config.json."""
    path = Path(directory) / CONFIG_FILE
    try:
        return GPT2Config.from_hf_dict(_config_json(path), source=str(path))
    except ConfigError as e:
        raise CheckpointError(str(e)) from None


def quantization_config(directory: str | os.PathLike[str]) -> Any:
    """The `quantization_config` entry of a checkpoint's config.json: None for float weights
    (gpt2.quantize describes and reads the quantized ones)."""
    return _config_json(Path(directory) / CONFIG_FILE).get("quantization_config")


def _config_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; a checkpoint directory needs {CONFIG_FILE}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


# A header larger than this is not a GPT-2 checkpoint's (gpt2-xl's is about 60 KB).
_MAX_HEADER_BYTES = 100 * 2**20


def read_safetensors_header(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes of a safetensors file, from its header alone (no tensor data
    is read). A file that is not safetensors, or is shorter or longer than its header says
    (truncated, or with bytes appended), is a CheckpointError."""
    def corrupt(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: not a valid safetensors file ({why}); re-download or re-save it")

    if not path.is_file():
        raise CheckpointError(f"{path}: no such file (named by {SAFETENSORS_INDEX_FILE})")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            n = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if n < 2 or n > min(size - 8, _MAX_HEADER_BYTES):
                raise corrupt("no header" if n < 2 or n > _MAX_HEADER_BYTES else "truncated header")
            header = json.loads(f.read(n).decode("utf-8"))
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError):
        raise corrupt("its header is not JSON") from None
    if not isinstance(header, dict):
        raise corrupt("its header is not a JSON object")
    shapes: dict[str, tuple[int, ...]] = {}
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            shape, (begin, stop) = info["shape"], info["data_offsets"]
            ok = all(isinstance(d, int) and d >= 0 for d in (*shape, begin, stop)) and begin <= stop
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise corrupt(f"bad entry for tensor {name!r}")
        shapes[name] = tuple(shape)
        end = max(end, stop)
    expected = 8 + n + end
    if size < expected:
        raise CheckpointError(f"{path}: truncated: its header describes {expected:,} bytes but the file "
                              f"has {size:,}; re-download or re-save it")
    if size > expected:
        raise corrupt(f"{size - expected:,} bytes after the tensors")
    return shapes


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
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
        # torch's message advises weights_only=False, i.e. running the file's code: not quoted.
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"{path}: refused: it holds a Python object{what} besides tensors, and loading it could "
            "run code; use a safetensors checkpoint instead"
        ) from None
    except Exception as e:
        raise CheckpointError(f"{path}: corrupt or truncated PyTorch file ({e})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a dictionary of tensors")
    return state


def _our_key(key: str, config: GPT2Config) -> tuple[str | None, bool]:
    """This model's name for a Hugging Face GPT-2 tensor (None: not a parameter here), and
    whether its layout is transposed (Conv1D)."""
    name = key.removeprefix("transformer.")
    if name.endswith(_IGNORED_SUFFIXES) or name == "lm_head.weight":  # mask buffers; tied head
        return None, False
    if key.startswith(HEAD_PREFIXES):
        return None, False
    if not config.bias and (name.endswith(".bias") or name == "ln_f.bias"):
        return None, False  # zeros written for transformers' sake by to_hf
    return "transformer." + name, name.endswith(_CONV1D_SUFFIXES)


def from_hf(tensors: dict[str, torch.Tensor], config: GPT2Config) -> dict[str, torch.Tensor]:
    """Map a Hugging Face GPT-2 state dict onto this model's parameter names and layouts."""
    state: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        name, transposed = _our_key(key, config)
        if name is not None:
            state[name] = tensor.t() if transposed else tensor
    return state


def check_shapes(shapes: dict[str, tuple[int, ...]], config: GPT2Config, source: str) -> None:
    """The tensors of a checkpoint (Hugging Face names and shapes) must be exactly those the
    config implies; else a CheckpointError naming the first disagreement."""
    ours: dict[str, tuple[int, ...]] = {}
    for key, shape in shapes.items():
        name, transposed = _our_key(key, config)
        if name is not None:
            ours[name] = tuple(reversed(shape)) if transposed else tuple(shape)
    # The layer count first: building a model of an absurd config.json to compare would be slow.
    layers = {int(m.group(1)) for k in ours if (m := re.match(r"transformer\.h\.(\d+)\.", k))}
    if len(layers) != config.n_layer or (layers and max(layers) != config.n_layer - 1):
        found = f"{max(layers) + 1} layers" if layers and layers == set(range(max(layers) + 1)) else \
            f"layers {_few([str(i) for i in sorted(layers)], 5)}" if layers else "no layers"
        raise CheckpointError(f"{source}: config.json says n_layer={config.n_layer} but the weights "
                              f"have {found}")
    expected = config.tensor_shapes()
    missing = sorted(expected.keys() - ours.keys())
    unexpected = sorted(ours.keys() - expected.keys())
    if missing:
        raise CheckpointError(f"{source}: missing tensors {_few(missing)}")
    if unexpected:
        raise CheckpointError(f"{source}: unexpected tensors {_few(unexpected)}")
    for key, shape in expected.items():
        if ours[key] != shape:
            raise CheckpointError(
                f"{source}: tensor {key.removeprefix('transformer.')} has shape "
                f"{ours[key]} but config.json implies {shape}"
            )


def inspect_checkpoint(directory: str | os.PathLike[str]) -> tuple[GPT2Config, list[Path]]:
    """A checkpoint directory's config and weights files, checked against each other without
    reading tensor data (safetensors headers only): missing weights, a corrupt or truncated
    file, or tensors that disagree with config.json are a CheckpointError."""
    directory = Path(directory)
    config = read_config(directory)
    files = weights_files(directory)
    if not files:
        raise CheckpointError(
            f"{directory}: no weights file; expected {SAFETENSORS_FILE} (or {TORCH_FILE}) beside {CONFIG_FILE}"
        )
    shapes: dict[str, tuple[int, ...]] = {}
    for f in files:
        if f.suffix == ".safetensors":
            shapes.update(read_safetensors_header(f))
        else:  # pytorch_model.bin: memory-mapped, so only the shapes are touched
            shapes.update({k: tuple(v.shape) for k, v in read_tensors(f).items()})
    source = str(files[0]) if len(files) == 1 else f"{directory} (sharded)"
    check_shapes(shapes, config, source)
    return config, files


def read_checkpoint(
    directory: str | os.PathLike[str],
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
) -> tuple[GPT2Config, dict[str, torch.Tensor]]:
    """A checkpoint directory's config and weights (this model's names and layouts, without the
    tied lm_head), on `device` (default cpu) in `dtype` (default float32)."""
    # The arguments first, then the files' headers, and only then the tensor data.
    device = parse_device("cpu" if device is None else device, "device")
    dtype = parse_dtype(dtype) or torch.float32
    if quantization_config(directory) is not None:
        raise CheckpointError(f"{directory}: holds quantized weights (quantization_config in {CONFIG_FILE}), "
                              "for inference only; load it with gpt2.load, and train or fine-tune from the "
                              "original checkpoint")
    config, files = inspect_checkpoint(directory)
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        tensors.update(read_tensors(f))
    state = {k: v.to(device=device, dtype=dtype).contiguous() for k, v in from_hf(tensors, config).items()}
    return config, state


def _few(keys: list[str], n: int = 3) -> str:
    shown = ", ".join(k.removeprefix("transformer.") for k in keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")


# --------------------------------------------------------------------------- saving


def to_hf(state: dict[str, torch.Tensor], config: GPT2Config) -> dict[str, torch.Tensor]:
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


def write_checkpoint(
    config: GPT2Config,
    state: dict[str, torch.Tensor],
    directory: str | os.PathLike[str],
    *,
    head_tensors: dict[str, torch.Tensor] | None = None,
    extra_config: dict[str, Any] | None = None,
) -> None:
    """Write a state dict (this model's names and layouts) and its config as a Hugging Face
    checkpoint: model.safetensors, then config.json, each written atomically. A fine-tuned
    model adds its head tensors (transformers' names, e.g. `score.weight`) and config keys
    (`architectures`, `id2label`, ...)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"{directory}: cannot create directory ({e.strerror})") from None
    tensors = to_hf(state, config)
    dtype = next(iter(tensors.values())).dtype
    for key, tensor in (head_tensors or {}).items():
        assert key.startswith(HEAD_PREFIXES), key
        tensors[key] = tensor.detach().to(device="cpu", dtype=dtype).contiguous()
    hf_config = config.to_hf_dict() | {"dtype": str(dtype).removeprefix("torch.")} | (extra_config or {})
    with atomic_path(directory / SAFETENSORS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    atomic_write_json(directory / CONFIG_FILE, hf_config)
