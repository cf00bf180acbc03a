"""LoRA (Hu et al., 2021): a frozen linear layer W plus a trained low-rank update B @ A,

    y = x W^T + b + (dropout(x) A^T B^T) * alpha / r        A: (r, in), B: (out, r), B = 0 at first

saved and read in PEFT's adapter format, so that `peft.PeftModel.from_pretrained(transformers'
GPT-2, dir)` gives the same logits as this model, and an adapter PEFT wrote loads here:

    adapter_config.json          LoraConfig's fields (peft_type LORA, r, lora_alpha, target_modules, ...)
    adapter_model.safetensors    base_model.model.transformer.h.N.attn.c_attn.lora_A.weight  (r, in)
                                 base_model.model.transformer.h.N.attn.c_attn.lora_B.weight  (out, r)

PEFT sees GPT-2's layers as transformers' Conv1D, whose weight is stored (in, out), and so sets
`fan_in_fan_out`; that flag only transposes the *base* weight when merging. Its lora_A / lora_B are
ordinary nn.Linear weights, (r, in) and (out, r), the same tensors as ours, untransposed.

Module names: a LoRALinear holds the wrapped layer's own `weight` and `bias` Parameters (not the
layer), so the state dict keeps `...c_attn.weight` / `.bias` (checkpoint.to_hf, optimizers and
trainer checkpoints see unchanged names) and adds `...c_attn.lora_A.weight` / `lora_B.weight`:
PEFT's keys without its `base_model.model.` prefix. A model with LoRA in it is not a plain
checkpoint: save the adapter (save_adapter) or fold it in first (merge_lora).

What is implemented is plain LoRA on linear layers; an adapter asking for more (DoRA, rsLoRA,
LoRA biases, modules_to_save, layer or rank patterns, PiSSA-style inits that change the base
weights) is refused with one FinetuneError line rather than loaded wrongly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoint import read_safetensors_header
from ..errors import CheckpointError, ConfigError, FinetuneError
from ..fsutil import atomic_write_files
from ..model import GPT2
from ..settings import num
from ..validate import is_int, is_real

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PICKLE_FILE = "adapter_model.bin"
PREFIX = "base_model.model."  # PEFT's prefix of every key for a LoRA model (any task type)
_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<which>[AB])\.weight$")


@dataclass
class LoRAConfig:
    """The `[lora]` section of a fine-tuning recipe. Defaults are PEFT's LoraConfig defaults.

    targets: module names matched the way PEFT matches a `target_modules` list: a module is
    wrapped when its name equals a target or ends with "." + target ("c_proj" is both the
    attention and the MLP output; "attn.c_proj" only the attention's). GPT-2's linear layers are
    c_attn (q, k, v), attn.c_proj, mlp.c_fc and mlp.c_proj."""

    r: int = num(8, 1, 65536)
    alpha: float = num(8.0, 0, 1e6, low_open=True)  # the update is scaled by alpha / r
    dropout: float = num(0.0, 0, 1, high_open=True)  # on the input of A only
    targets: tuple[str, ...] = ("c_attn",)

    def __post_init__(self) -> None:
        # Recipes give a TOML list; Python callers may not go through settings.build at all.
        if isinstance(self.targets, str) or not isinstance(self.targets, (list, tuple)) or not self.targets \
                or not all(isinstance(t, str) and t.strip(".") == t and t for t in self.targets):
            raise ConfigError(f"lora.targets must be a non-empty list of module names such as "
                              f"[\"c_attn\", \"c_proj\"], got {self.targets!r}")
        self.targets = tuple(self.targets)
        for f in dataclasses.fields(self):
            value, allowed = getattr(self, f.name), f.metadata.get("range")
            ok = is_int(value) if f.type in ("int", int) else is_real(value)
            if allowed is not None and not (ok and value in allowed):
                raise ConfigError(f"lora.{f.name} must be {'an integer' if f.type in ('int', int) else 'a number'}"
                                  f" in {allowed}, got {value!r}")


class LoRALinear(nn.Module):
    """A frozen nn.Linear's weight and bias plus a rank-r update: base(x) + B(A(dropout(x))) * alpha/r.

    A starts as PEFT's default (kaiming-uniform, a=sqrt(5), nn.Linear's own init) and B at zero,
    so a freshly wrapped model computes exactly what it did before."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight  # the same Parameters: state-dict names stay `<name>.weight/.bias`
        self.register_parameter("bias", base.bias)  # may be None (bias=False models)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()  # as PEFT
        like = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = nn.Linear(self.in_features, r, bias=False, **like)
        self.lora_B = nn.Linear(r, self.out_features, bias=False, **like)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.train(base.training)  # a new module defaults to training mode: follow the model's

    @property
    def dropout(self) -> float:
        return self.lora_dropout.p if isinstance(self.lora_dropout, nn.Dropout) else 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)
        a = self.lora_A(self.lora_dropout(x))
        # out + scaling * (a @ B^T) as one fused multiply-add: no (..., out_features)-sized
        # temporaries for the product and its scaling, forward or backward.
        flat = torch.addmm(out.reshape(-1, self.out_features), a.reshape(-1, self.r), self.lora_B.weight.t(),
                           alpha=self.scaling)
        return flat.view(out.shape)

    def merged(self) -> nn.Linear:
        """A plain nn.Linear holding W + B @ A * scale (this module's weight Parameter, updated)."""
        with torch.no_grad():
            # The update in float32 (as PEFT on CPU for half precision), then one rounding to the weight's dtype.
            delta = (self.lora_B.weight.float() @ self.lora_A.weight.float()) * self.scaling
            self.weight.copy_(self.weight.float() + delta)
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None, device="meta")
        linear.weight, linear.bias = self.weight, self.bias
        return linear.train(self.training)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, alpha={self.alpha:g}"


# --------------------------------------------------------------------------- wrapping a model


def _matches(name: str, target: str) -> bool:
    """PEFT's rule for a target_modules list: the whole name, or a dotted suffix of it."""
    return name == target or name.endswith("." + target)


def _linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    """The layers LoRA may wrap: every nn.Linear except one sharing an embedding's weight
    (GPT-2's tied lm_head: an update to it would untie it from wte) and LoRA's own A and B."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    adapters = {id(x) for m in model.modules() if isinstance(m, LoRALinear) for x in (m.lora_A, m.lora_B)}
    return {name: m for name, m in model.named_modules()
            if type(m) is nn.Linear and id(m.weight) not in embeddings and id(m) not in adapters}


def _lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def _valid_targets(layers: Iterable[str]) -> str:
    return ", ".join(sorted({name.rsplit(".", 1)[-1] for name in layers}))


def match_targets(model: nn.Module, targets: Sequence[str]) -> list[str]:
    """The names of the linear layers `targets` select, in the model's order; a target that
    selects none is a FinetuneError naming it and the names that would."""
    layers = _linear_layers(model)
    for target in targets:
        if not any(_matches(name, target) for name in layers):
            raise FinetuneError(f"LoRA target {target!r} matches no linear layer of the model; "
                                f"valid targets: {_valid_targets(layers) or 'none'}")
    return [name for name in layers if any(_matches(name, t) for t in targets)]


def _refuse_twice(model: nn.Module) -> None:
    if _lora_layers(model):
        raise FinetuneError("the model already has LoRA adapters; merge_lora it first, or start "
                            "from the base model")


def _wrap(model: nn.Module, names: Sequence[str], r: int, alpha: float, dropout: float) -> None:
    for name in names:
        model.set_submodule(name, LoRALinear(model.get_submodule(name), r, alpha, dropout))


def _freeze(model: nn.Module, trainable: Sequence[str]) -> None:
    """requires_grad on the LoRA weights and the parameters under a `trainable` prefix only."""
    train = {id(p) for m in _lora_layers(model).values() for p in (m.lora_A.weight, m.lora_B.weight)}
    named = list(model.named_parameters(remove_duplicate=False))  # a tied tensor under each name
    for prefix in trainable:
        chosen = [p for name, p in named if name == prefix or name.startswith(prefix + ".")]
        if not chosen:
            children = ", ".join(name for name, _ in model.named_children())
            raise FinetuneError(f"trainable {prefix!r} names no parameter of the model (a module name, "
                                f"from its top-level modules: {children})")
        train.update(id(p) for p in chosen)
    for _, p in named:
        p.requires_grad_(id(p) in train)


def apply_lora(model: nn.Module, config: LoRAConfig, *, trainable: Sequence[str] = ()) -> list[str]:
    """Wrap every linear layer `config.targets` selects in a LoRALinear (in place), freeze every
    other parameter except those under a `trainable` prefix (a task head, say: "heads.sst2"),
    and return the wrapped layers' names. `model` is a GPT2 or any module holding one."""
    _refuse_twice(model)
    names = match_targets(model, config.targets)
    _wrap(model, names, config.r, config.alpha, config.dropout)
    _freeze(model, trainable)
    return names


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight and put plain nn.Linear layers back (in place,
    like PEFT's merge_and_unload), so the model saves as an ordinary checkpoint. The merged
    weights keep the base weights' requires_grad (False after apply_lora)."""
    layers = _lora_layers(model)
    if not layers:
        raise FinetuneError("the model has no LoRA adapters to merge")
    for name, layer in layers.items():
        model.set_submodule(name, layer.merged())
    return model


# --------------------------------------------------------------------------- PEFT's file format


def _body_prefix(model: nn.Module) -> str:
    """Where the GPT2 sits in `model` ("" or e.g. "lm."): PEFT names modules from transformers'
    GPT-2 down, which are our GPT2's names (transformer.h.0.attn.c_attn, ...)."""
    for name, module in model.named_modules():
        if isinstance(module, GPT2):
            return name + "." if name else ""
    raise FinetuneError("PEFT's adapter format names a GPT-2's layers: the model holds no gpt2.GPT2")


def _alpha_json(alpha: float) -> int | float:
    return int(alpha) if float(alpha).is_integer() else alpha  # PEFT writes lora_alpha as an int


def _target_modules(names: list[str], candidates: Iterable[str]) -> list[str]:
    """The shortest target_modules list that selects exactly `names`: the layers' last names
    ("c_attn") when those select nothing else, else the full names."""
    short = sorted({n.rsplit(".", 1)[-1] for n in names})
    selected = {c for c in candidates if any(_matches(c, t) for t in short)}
    return short if selected == set(names) else sorted(names)


def save_adapter(model: nn.Module, directory: str | os.PathLike[str], *,
                 base_model_name_or_path: str | os.PathLike[str] | None) -> None:
    """Write the model's LoRA adapters as PEFT writes them: adapter_config.json (keys sorted,
    as PEFT's) and adapter_model.safetensors, both or neither (an atomic pair of writes).
    `base_model_name_or_path` is what PEFT's AutoPeftModel (and gpt2.load of the adapter
    directory alone) loads the base model from: a hub name or a path."""
    from safetensors.torch import save

    layers = _lora_layers(model)
    if not layers:
        raise FinetuneError("the model has no LoRA adapters to save (apply_lora or load_adapter first)")
    settings = {(m.r, m.alpha, m.dropout) for m in layers.values()}
    if len(settings) > 1:  # PEFT would need rank_pattern / alpha_pattern, which we do not write
        raise FinetuneError(f"the model's LoRA layers differ in (r, alpha, dropout): {sorted(settings)}")
    (r, alpha, dropout), = settings
    prefix = _body_prefix(model)
    outside = [n for n in layers if not n.startswith(prefix)]
    if outside:
        raise FinetuneError(f"LoRA layer {outside[0]} is outside the GPT-2 body; PEFT's format cannot name it")
    names = [n.removeprefix(prefix) for n in layers]
    tensors: dict[str, torch.Tensor] = {}
    for name, layer in zip(names, layers.values()):
        for which, linear in (("A", layer.lora_A), ("B", layer.lora_B)):
            tensors[f"{PREFIX}{name}.lora_{which}.weight"] = linear.weight.detach().to("cpu").contiguous()
    body_layers = [n.removeprefix(prefix) for n in _linear_layers(model) if n.startswith(prefix)]
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM" if isinstance(model, GPT2) else None,
        "base_model_name_or_path": None if base_model_name_or_path is None else str(base_model_name_or_path),
        "revision": None,
        "inference_mode": True,
        "r": r,
        "lora_alpha": _alpha_json(alpha),
        "lora_dropout": dropout,
        "target_modules": _target_modules(names, body_layers + names),
        "fan_in_fan_out": True,  # GPT-2's layers are Conv1D in transformers (PEFT sets it itself)
        "bias": "none",
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
        "init_lora_weights": True,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
    }
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_files(directory, {
            WEIGHTS_FILE: save(tensors, metadata={"format": "pt"}),
            CONFIG_FILE: (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        })
    except OSError as e:
        raise FinetuneError(f"{directory}: cannot write the adapter ({e.strerror or e})") from None


# Settings that carry no behaviour here (fan_in_fan_out: PEFT forces it on for GPT-2's Conv1D
# either way), and two whose defaults are not empty but which act only with another setting on.
_METADATA = {"peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode",
             "auto_mapping", "peft_version", "runtime_config", "fan_in_fan_out", "r", "lora_alpha",
             "lora_dropout", "target_modules", "init_lora_weights", "bias",
             "megatron_core", "qalora_group_size"}
# Inits that leave the base weights as they were; others (pissa, olora, loftq, corda, ...) change them.
_PLAIN_INITS = (True, False, "gaussian")


def _read_config(path: Path) -> dict[str, Any]:
    """adapter_config.json, checked to describe plain LoRA that this module implements."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FinetuneError(f"{path}: cannot read ({str(e).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise FinetuneError(f"{path}: expected a JSON object")
    if config.get("peft_type") != "LORA":
        raise FinetuneError(f"{path}: peft_type {config.get('peft_type')!r} is not supported; "
                            f"gpt2 reads LoRA adapters (peft_type \"LORA\")")
    unsupported = [(k, v) for k, v in config.items() if k not in _METADATA and v not in (None, False, {}, [], "")]
    if config.get("bias", "none") != "none":
        unsupported.insert(0, ("bias", config["bias"]))
    if config.get("init_lora_weights", True) not in _PLAIN_INITS:
        unsupported.insert(0, ("init_lora_weights", config["init_lora_weights"]))
    if unsupported:
        key, value = unsupported[0]
        raise FinetuneError(f"{path}: {key} = {json.dumps(value)} is not supported; gpt2 implements plain "
                            f"LoRA (no DoRA, rsLoRA, LoRA biases, modules_to_save, layer or rank patterns, "
                            f"or inits that change the base weights)")
    r, alpha, dropout = config.get("r"), config.get("lora_alpha"), config.get("lora_dropout", 0.0)
    if not (is_int(r) and r >= 1) or not (is_real(alpha) and alpha > 0) or not (is_real(dropout) and 0 <= dropout < 1):
        raise FinetuneError(f"{path}: r must be an integer >= 1, lora_alpha a number > 0 and lora_dropout "
                            f"in [0, 1); got r={r!r}, lora_alpha={alpha!r}, lora_dropout={dropout!r}")
    targets = config.get("target_modules")
    if not (isinstance(targets, str) or (isinstance(targets, list) and targets
                                         and all(isinstance(t, str) for t in targets))):
        raise FinetuneError(f"{path}: target_modules must be a list of module names or a regular expression, "
                            f"got {targets!r}")
    return config


def _selected(targets: str | list[str], layers: list[str], source: Path) -> set[str]:
    """The layers (PEFT's names) that target_modules selects, by PEFT's rules: a list matches
    names and dotted suffixes, "all-linear" every linear layer, any other string is a regular
    expression over the whole name."""
    if isinstance(targets, list):
        for target in targets:
            if not any(_matches(name, target) for name in layers):
                raise FinetuneError(f"{source}: target {target!r} matches no linear layer of this model; "
                                    f"its linear layers are {_valid_targets(layers)}")
        return {n for n in layers if any(_matches(n, t) for t in targets)}
    if targets.lower() == "all-linear":
        return set(layers)
    try:
        return {n for n in layers if re.fullmatch(targets, n)}
    except re.error as e:
        raise FinetuneError(f"{source}: target_modules {targets!r} is not a valid regular expression ({e})") from None


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = directory / WEIGHTS_FILE
    if not path.is_file():
        if (directory / PICKLE_FILE).is_file():
            raise FinetuneError(f"{directory}: {PICKLE_FILE} is a pickle, which gpt2 never loads; convert it to "
                                f"{WEIGHTS_FILE} (with PEFT: PeftModel.from_pretrained(...).save_pretrained(dir))")
        raise FinetuneError(f"{directory}: no {WEIGHTS_FILE} beside {CONFIG_FILE}")
    try:
        read_safetensors_header(path)  # a truncated or corrupt file, named, before reading data
        return load_file(str(path))
    except CheckpointError as e:
        raise FinetuneError(str(e)) from None
    except (SafetensorError, OSError) as e:
        raise FinetuneError(f"{path}: cannot read ({str(e).splitlines()[0]})") from None


def is_adapter_dir(path: str | os.PathLike[str]) -> bool:
    """A directory holding adapter_config.json and no config.json: an adapter, not a checkpoint."""
    path = Path(path).expanduser()
    return (path / CONFIG_FILE).is_file() and not (path / "config.json").is_file()


def adapter_base(directory: str | os.PathLike[str]) -> str:
    """The base model an adapter directory names (adapter_config.json's base_model_name_or_path,
    as PEFT stores it: a hub name, or a path relative to where the adapter was made)."""
    base = read_adapter_config(directory).get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise FinetuneError(f"{Path(directory) / CONFIG_FILE}: base_model_name_or_path is {json.dumps(base)}; "
                            f"pass the base model with the adapter: gpt2.load(BASE, adapter={str(directory)!r})")
    return base


def read_adapter_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """An adapter directory's adapter_config.json, checked to describe plain LoRA (no tensors read)."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise FinetuneError(f"{directory}: no such adapter directory")
    if not (directory / CONFIG_FILE).is_file():
        raise FinetuneError(f"{directory}: no {CONFIG_FILE}; not a PEFT adapter directory")
    return _read_config(directory / CONFIG_FILE)


def load_adapter(model: nn.Module, directory: str | os.PathLike[str]) -> list[str]:
    """Put a PEFT LoRA adapter directory (ours or one PEFT wrote) onto a GPT2 (or a module
    holding one), in place; returns the wrapped layers' names. Everything is checked before the
    model is touched: the config describes plain LoRA, every tensor is an A or B of a linear
    layer this model has, target_modules selects exactly those layers, and every shape fits.
    The base stays frozen and the adapters trainable, as after apply_lora."""
    config = read_adapter_config(directory)
    directory = Path(directory).expanduser()
    tensors = _read_weights(directory)
    source = directory / WEIGHTS_FILE
    _refuse_twice(model)
    prefix = _body_prefix(model)
    layers = {n.removeprefix(prefix): m for n, m in _linear_layers(model).items() if n.startswith(prefix)}

    found: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        m = _KEY.match(key)
        if m is None:
            raise FinetuneError(f"{source}: tensor {key} is not a LoRA A or B weight; gpt2 reads plain "
                                f"LoRA adapters of linear layers only")
        if m["module"] not in layers:
            raise FinetuneError(f"{source}: tensor {key} is for {m['module']}, which is not a linear layer "
                                f"of this model")
        found.setdefault(m["module"], {})[m["which"]] = tensor
    selected = _selected(config["target_modules"], list(layers), directory / CONFIG_FILE)
    missing = sorted(selected - found.keys(), key=list(layers).index)
    if missing:
        raise FinetuneError(f"{source}: target_modules selects {missing[0]} but the file has no tensors for it")
    r = config["r"]
    for name, pair in found.items():
        if name not in selected:
            raise FinetuneError(f"{source}: tensors for {name}, which target_modules does not select")
        layer = layers[name]
        for which, shape in (("A", (r, layer.in_features)), ("B", (layer.out_features, r))):
            if which not in pair:
                raise FinetuneError(f"{source}: {name} has no lora_{which}.weight")
            if tuple(pair[which].shape) != shape:
                raise FinetuneError(f"{source}: {name}.lora_{which}.weight has shape {tuple(pair[which].shape)} "
                                    f"but this model with r={r} needs {shape}")
            if not pair[which].is_floating_point():
                raise FinetuneError(f"{source}: {name}.lora_{which}.weight is {pair[which].dtype}, not floating point")

    names = [prefix + n for n in layers if n in found]  # the model's order
    _wrap(model, names, r, float(config["lora_alpha"]), float(config.get("lora_dropout", 0.0)))
    _freeze(model, ())
    with torch.no_grad():
        for name in names:
            layer = model.get_submodule(name)
            layer.lora_A.weight.copy_(found[name.removeprefix(prefix)]["A"])
            layer.lora_B.weight.copy_(found[name.removeprefix(prefix)]["B"])
    return names
