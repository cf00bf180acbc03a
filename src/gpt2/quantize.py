"""Reduced-precision weights for inference: int8, int4 or float16 in every Linear layer and the head.

Decoding at batch 1 reads every weight once per token, so on a CPU its speed is set by the bytes
of weights and by how fast a kernel turns them into products. Against float32 the weights shrink
2x (fp16), 4x (int8) or about 7x (int4):

    model, tok = gpt2.load("gpt2", quantize="int8")     # converted on load (seconds)
    gpt2 quantize gpt2 -o gpt2-int4 --quantize int4     # saved once; loads without re-quantizing
    model, tok = gpt2.load("gpt2-int4")

Every scheme is weight-only: activations are not quantized. The matmuls run in torch's own CPU
kernels:

  int8  symmetric, one scale per output row:   W[n, k] = scales[n] * q[n, k],  q in [-127, 127]
        kernel: aten._weight_int8pack_mm (the one gpt-fast uses on CPU)
  int4  asymmetric, one scale and zero per group of `group_size` inputs (torchao's "tinygemm"
        convention, zero point in the float domain):
              W[n, k] = (q[n, k] - 8) * scales[n, g] + zeros[n, g],  q in [0, 15],  g = k // group_size
        kernel: aten._weight_int4pack_mm_for_cpu
  fp16  W = qweight, float16 (11 significant bits)
        kernel: fbgemm's packed fp16 GEMM (quantized.linear_dynamic_fp16, as torch.ao's dynamic
        fp16 Linear uses it), float32 activations in and float32 products out

The int8 and int4 kernels take bfloat16 activations: that is their fast path (float32 activations
are 15-40x slower in them, measured), so those layers round their input to bfloat16, and their
outputs are bfloat16 too (about three significant digits), given back in the model's dtype.
Their scales and zeros are rounded to bfloat16 before the weights are rounded to them, so the
stored numbers are exactly what the kernels compute with. Unchanged, in the load dtype: the
embeddings (wte is read one row per token), LayerNorms, biases, attention and the KV cache. The
tied head gets its own quantized copy of wte, centered: its mean row is kept apart in float32 and
its product added back in float32, because GPT-2's logits share a large common part (around -100
for OpenAI's weights) that bfloat16 would round to steps of 0.5.

The saved format: a checkpoint directory like any other (config.json, model.safetensors,
tokenizer files) whose config.json adds, in transformers' spirit,
    "quantization_config": {"quant_method": "gpt2-weight-only", "bits": 8, 4 or 16,
                            "group_size": null or 32/64/128/256, "scheme": "...", "modules": [...]}
and whose model.safetensors holds, for each quantized layer NAME (our (out, in) layout):
    NAME.qweight      int8 (out, in); int4: uint8 (out, in/2), input 2j in the low nibble and 2j+1
                      in the high one; fp16: float16 (out, in)
    NAME.scales       float32 (out,); int4: (out, in/group_size); fp16: none
    NAME.zeros        float32 (out, in/group_size), int4 only
    NAME.bias         the bias, in the load dtype
    lm_head.mean_row  float32 (in,): the head's mean row, taken out before quantizing
                      (W = mean_row + the quantized rest)
The kernels' own packed layouts are built at load time, so the file does not depend on the CPU.
transformers cannot load such a directory (it does not know the method); gpt2.load can.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .checkpoint import (
    CONFIG_FILE,
    SAFETENSORS_FILE,
    parse_dtype,
    quantization_config,
    read_config,
    read_safetensors_header,
    read_tensors,
    weights_files,
)
from .devices import parse_device
from .errors import CheckpointError, QuantizeError, UsageError

METHODS = ("int8", "int4", "fp16")
QUANT_METHOD = "gpt2-weight-only"
GROUP_SIZES = (32, 64, 128, 256)  # what the int4 kernels take
DEFAULT_GROUP_SIZE = 32  # as llama.cpp's q4_0 blocks: the best quality, and as fast as 128 here
COMPUTE_DTYPE = torch.bfloat16  # the activations the int8 / int4 kernels take on their fast path
_SCHEMES = {
    16: "float16 weights (fbgemm's packed fp16 GEMM); activations and outputs float32",
    8: "int8 weights, symmetric, one scale per output row: W = scales[n] * q; activations bfloat16",
    4: "int4 weights, asymmetric, per group of group_size inputs: W = (q - 8) * scales[n, g] + zeros[n, g]; "
       "activations bfloat16",
}


def parse_quantize(method: str | None, what: str = "quantize") -> str | None:
    """None / "int8" / "int4" / "fp16", else a UsageError naming the choices."""
    if method is None or method in METHODS:
        return method
    raise UsageError(f"{what} {method!r}: choose one of: {', '.join(METHODS)} (or none for float weights)")


# --------------------------------------------------------------------------- the layers


class QuantizedLinear(nn.Module):
    """A Linear layer whose weight is stored quantized; a drop-in for inference (no gradients).

    Subclasses define how a float weight becomes the stored tensors (`quantize_weight`), what they
    mean (`dequantize`, the reference) and the kernel (`_matmul`, after `prepare`)."""

    bits: int
    compute_dtype = COMPUTE_DTYPE  # what the kernel takes and gives

    def __init__(self, in_features: int, out_features: int, bias: bool, group_size: int | None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 centered: bool = False) -> None:
        super().__init__()
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size
        for name, shape, kind in self.stored_shapes(in_features, out_features, group_size):
            self.register_buffer(name, torch.empty(shape, device=device, dtype=kind))
        # centered (the head): the weight's mean row is kept apart in float32. GPT-2's logits share
        # a large common part (the mean embedding's product with h, around -100 for OpenAI's
        # weights), which the kernels' bfloat16 output would round to steps of 0.5; taken out
        # and added back in float32, only the spread of the logits is rounded.
        self.register_buffer("mean_row", torch.empty(in_features, device=device) if centered else None)
        self.bias = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype),
                                 requires_grad=False) if bias else None

    @staticmethod
    def stored_shapes(in_features: int, out_features: int,
                      group_size: int | None) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
        """(name, shape, dtype) of each tensor the layer stores (besides the bias)."""
        raise NotImplementedError

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int | None = None, centered: bool = False) -> "QuantizedLinear":
        weight = linear.weight.detach()
        layer = cls(weight.shape[1], weight.shape[0], linear.bias is not None, group_size,
                    device=weight.device, dtype=weight.dtype, centered=centered)
        weight = weight.float()
        if centered:
            layer.mean_row = weight.mean(dim=0)
            weight = weight - layer.mean_row
        for name, tensor in layer.quantize_weight(weight).items():
            setattr(layer, name, tensor)
        if linear.bias is not None:
            layer.bias.data = linear.bias.detach().clone()
        return layer.prepare()

    def quantize_weight(self, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def dequantize(self) -> torch.Tensor:
        """The float32 (out, in) weight the stored tensors stand for."""
        weight = self._dequantize()
        return weight if self.mean_row is None else weight + self.mean_row

    def _dequantize(self) -> torch.Tensor:
        raise NotImplementedError

    def prepare(self) -> "QuantizedLinear":
        """Build the kernel's tensors from the stored ones (after loading or quantizing)."""
        raise NotImplementedError

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001, ANN202 (nn.Module's signature)
        """model.to(device) moves the stored tensors; model.to(dtype) / .half() casts only the bias:
        the quantized tensors keep their dtypes (a cast would change what they mean)."""
        before = dict(self._buffers)
        super()._apply(fn, recurse)
        for name, old in before.items():
            new = self._buffers[name]
            if old is not None and new is not None and new.dtype != old.dtype:
                self._buffers[name] = old.to(new.device)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._matmul(x.reshape(-1, self.in_features).to(self.compute_dtype)).view(*x.shape[:-1], -1)
        if self.mean_row is not None:
            y = y.to(x.dtype) + (x @ self.mean_row.to(x.dtype)).unsqueeze(-1)
        if self.bias is None:
            return y.to(x.dtype)
        return torch.add(self.bias, y).to(x.dtype)  # one op when the bias has x's dtype (type promotion)

    def extra_repr(self) -> str:
        group = f", group_size={self.group_size}" if self.group_size else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}{group}"


def _bf16_exact(t: torch.Tensor) -> torch.Tensor:
    """float32 values that bfloat16 holds exactly (what the kernels will compute with)."""
    return t.to(torch.bfloat16).float()


def _bf16_at_least(t: torch.Tensor) -> torch.Tensor:
    """The bfloat16 values nearest above `t`, roughly (rounding to nearest is off by at most
    2^-9 relative, so t * (1 + 2^-8) rounds to a value >= t): a step that keeps every weight in range."""
    return _bf16_exact(t * (1 + 2**-8))


class Int8Linear(QuantizedLinear):
    bits = 8

    @staticmethod
    def stored_shapes(in_features: int, out_features: int,
                      group_size: int | None) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
        return [("qweight", (out_features, in_features), torch.int8), ("scales", (out_features,), torch.float32)]

    def quantize_weight(self, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        scales = _bf16_at_least(weight.abs().amax(dim=1).clamp(min=1e-12) / 127)
        q = torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8)
        return {"qweight": q, "scales": scales}

    def _dequantize(self) -> torch.Tensor:
        return self.qweight.float() * self.scales.float()[:, None]

    def prepare(self) -> "Int8Linear":
        if self.qweight.data_ptr() % 64:
            # The kernel crashes (a segfault, torch 2.13) on a weight that is not 64-byte aligned,
            # as safetensors' tensors can be; a fresh allocation is aligned.
            self.qweight = self.qweight.clone()
        self.register_buffer("_kernel_scales", self.scales.to(COMPUTE_DTYPE), persistent=False)
        return self

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._weight_int8pack_mm(x, self.qweight, self._kernel_scales)


class Int4Linear(QuantizedLinear):
    bits = 4

    @staticmethod
    def stored_shapes(in_features: int, out_features: int,
                      group_size: int | None) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
        n, k, groups = out_features, in_features, in_features // group_size
        return [("qweight", (n, k // 2), torch.uint8), ("scales", (n, groups), torch.float32),
                ("zeros", (n, groups), torch.float32)]

    def quantize_weight(self, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        n, k = weight.shape
        groups = weight.view(n, k // self.group_size, self.group_size)
        low, high = groups.amin(dim=2), groups.amax(dim=2)
        scales = _bf16_at_least((high - low).clamp(min=1e-12) / 15)
        zeros = _bf16_exact(low + 8 * scales)
        # Rounding the zero moved the 16 levels [zeros - 8 s, zeros + 7 s]: widen the step where
        # they no longer cover the group (a group far from 0 compared with its spread).
        scales = torch.maximum(scales, _bf16_at_least(torch.maximum((zeros - low) / 8, (high - zeros) / 7)))
        q = torch.round((groups - zeros[..., None]) / scales[..., None] + 8).clamp(0, 15).to(torch.uint8)
        q = q.view(n, k)
        return {"qweight": q[:, 0::2] | (q[:, 1::2] << 4), "scales": scales, "zeros": zeros}

    def _unpacked(self) -> torch.Tensor:
        """q as (out, in) integers in [0, 15]."""
        return torch.stack([self.qweight & 0xF, self.qweight >> 4], dim=2).view(self.out_features, -1)

    def _dequantize(self) -> torch.Tensor:
        n, k, g = self.out_features, self.in_features, self.group_size
        q = self._unpacked().float().view(n, k // g, g)
        return ((q - 8) * self.scales[..., None] + self.zeros[..., None]).view(n, k)

    def prepare(self) -> "Int4Linear":
        # The kernel wants the output rows in multiples of 16: the head (50,257 rows) gets zero
        # rows that are cut off again after the matmul.
        n = self.out_features
        padded = -(-n // 16) * 16
        q = torch.nn.functional.pad(self._unpacked().to(torch.int32), (0, 0, 0, padded - n))
        scales_and_zeros = torch.stack([self.scales, self.zeros], dim=2)  # (n, groups, 2)
        scales_and_zeros = torch.nn.functional.pad(scales_and_zeros, (0, 0, 0, 0, 0, padded - n))
        self.register_buffer("_kernel_weight", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1),
                             persistent=False)
        self.register_buffer("_kernel_scales_and_zeros",
                             scales_and_zeros.transpose(0, 1).contiguous().to(COMPUTE_DTYPE), persistent=False)
        return self

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(x, self._kernel_weight, self.group_size,
                                                       self._kernel_scales_and_zeros)
        return y[:, : self.out_features]


class Fp16Linear(QuantizedLinear):
    """float16 weights in fbgemm's packed layout (torch's quantized engine, as torch.ao's dynamic
    fp16 Linear uses it): float32 activations in, float32 products out, so nothing but the
    weights is rounded (to 11 significant bits)."""

    bits = 16
    compute_dtype = torch.float32

    @staticmethod
    def stored_shapes(in_features: int, out_features: int,
                      group_size: int | None) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
        return [("qweight", (out_features, in_features), torch.float16)]

    def quantize_weight(self, weight: torch.Tensor) -> dict[str, torch.Tensor]:
        if weight.abs().max() > torch.finfo(torch.float16).max:
            raise QuantizeError("a weight is beyond float16's range (65,504); use int8 or bfloat16 instead")
        return {"qweight": weight.to(torch.float16)}

    def _dequantize(self) -> torch.Tensor:
        return self.qweight.float()

    def prepare(self) -> "Fp16Linear":
        # An opaque packed object (not a tensor): rebuilt from qweight after every load.
        self._packed = torch.ops.quantized.linear_prepack_fp16(self.qweight.float(), None)
        return self

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic_fp16(x, self._packed)


_LAYER_TYPES: dict[str, type[QuantizedLinear]] = {"int8": Int8Linear, "int4": Int4Linear, "fp16": Fp16Linear}
_KERNELS = {"int8": "aten._weight_int8pack_mm", "int4": "aten._weight_int4pack_mm_for_cpu",
            "fp16": "quantized.linear_dynamic_fp16 (fbgemm)"}


# --------------------------------------------------------------------------- a whole model


def quantized_layer_names(n_layer: int) -> list[str]:
    """The layers quantization replaces: the four Linear layers of every block and the head."""
    blocks = [f"transformer.h.{i}.{layer}" for i in range(n_layer)
              for layer in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")]
    return blocks + ["lm_head"]


def check_kernel(method: str, device: torch.device | str = "cpu") -> None:
    """Run the method's kernel once on a tiny layer on `device`: a QuantizeError saying so when
    this torch build or this device has none (before any weights are read)."""
    device = torch.device(device)
    linear = nn.Linear(64, 16, device=device)
    try:
        layer = _LAYER_TYPES[method].from_linear(linear, DEFAULT_GROUP_SIZE if method == "int4" else None)
        layer(torch.zeros(1, 64, device=device))
    except (RuntimeError, NotImplementedError, AttributeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise QuantizeError(f"quantize {method!r} on {device}: this torch build has no usable {method} "
                            f"kernel there ({_KERNELS[method]}: {first[:120]}); load without quantize, "
                            f"or with dtype bfloat16") from None


def quantize_model(model: nn.Module, method: str | None, *, group_size: int = DEFAULT_GROUP_SIZE) -> nn.Module:
    """Replace the model's Linear layers and its tied head by quantized copies (in place; the
    model comes back for chaining). `method` None leaves the model as it is. Refused: a model
    already quantized, one with unmerged LoRA adapters (merge_lora first), and for int4 a width
    that is not a multiple of `group_size` (32, 64, 128 or 256)."""
    method = parse_quantize(method)
    if method is None:
        return model
    if getattr(model, "quantization_config", None):
        raise QuantizeError(f"the model is already quantized ({method_of(model.quantization_config)}); "
                            f"load the original checkpoint to quantize it differently")
    names = quantized_layer_names(model.config.n_layer)
    group = check_fits(model.config, method, group_size)
    for name in names[:-1]:
        layer = model.get_submodule(name)
        if not isinstance(layer, nn.Linear):
            raise QuantizeError(f"{name} is a {type(layer).__name__}, not a plain Linear layer; merge "
                                f"LoRA adapters (gpt2.finetune.lora.merge_lora) before quantizing")
    check_kernel(method, model.transformer.wte.weight.device)
    layer_type = _LAYER_TYPES[method]
    with torch.no_grad():
        for name in names[:-1]:
            model.set_submodule(name, layer_type.from_linear(model.get_submodule(name), group))
        head = nn.Linear(model.config.n_embd, model.config.vocab_size, bias=False, device="meta")
        head.weight = model.transformer.wte.weight  # the tied head, quantized from the embedding
        model.lm_head = layer_type.from_linear(head, group, centered=True)
    model.quantization_config = _config(method, group)
    return model


def check_fits(config: Any, method: str, group_size: int = DEFAULT_GROUP_SIZE) -> int | None:
    """The group size int4 will use for a model of `config` (None for int8); an error when the
    model's width does not suit the kernel (int8: a multiple of 16; int4: of the group size, which
    must be one the kernel takes)."""
    width = config.n_embd
    if method == "int8":
        # The int8 kernel crashes the process (a segfault, torch 2.13 on AVX-512) on rows whose
        # length is not a multiple of 16; GPT-2's widths all are.
        if width % 16:
            raise QuantizeError(f"int8 needs n_embd to be a multiple of 16 (the kernel's); this model's is "
                                f"{width}: use bfloat16 weights instead")
    if method != "int4":
        return None
    if group_size not in GROUP_SIZES:
        raise UsageError(f"group size {group_size!r}: choose one of {', '.join(map(str, GROUP_SIZES))}")
    if width % group_size:
        raise QuantizeError(f"int4 with groups of {group_size} needs n_embd to be a multiple of "
                            f"{group_size}; this model's is {width}: use int8, or a smaller group size")
    return group_size


def _config(method: str, group_size: int | None) -> dict[str, Any]:
    bits = _LAYER_TYPES[method].bits
    modules = ["transformer.h.*.attn.c_attn", "transformer.h.*.attn.c_proj", "transformer.h.*.mlp.c_fc",
               "transformer.h.*.mlp.c_proj", "lm_head"]
    return {"quant_method": QUANT_METHOD, "bits": bits, "group_size": group_size,
            "scheme": _SCHEMES[bits], "modules": modules}


def method_of(quantization: dict[str, Any]) -> str:
    """"int8" / "int4" / "fp16" for a quantization_config."""
    return "fp16" if quantization["bits"] == 16 else f"int{quantization['bits']}"


# --------------------------------------------------------------------------- a saved checkpoint


def _parse_config(qc: Any, source: Path) -> tuple[str, int | None]:
    """(method, group size) of a checkpoint's quantization_config, checked."""
    if not isinstance(qc, dict) or qc.get("quant_method") != QUANT_METHOD:
        method = qc.get("quant_method") if isinstance(qc, dict) else qc
        raise CheckpointError(f"{source}: quantization_config.quant_method {method!r} is not one this "
                              f"package reads ({QUANT_METHOD!r}); pass an unquantized checkpoint")
    bits, group = qc.get("bits"), qc.get("group_size")
    if bits == 8 and group is None:
        return "int8", None
    if bits == 4 and group in GROUP_SIZES:
        return "int4", group
    if bits == 16 and group is None:
        return "fp16", None
    raise CheckpointError(f"{source}: quantization_config has bits={bits!r}, group_size={group!r}; expected "
                          f"bits 8 or 16 (group_size null) or 4 (group_size one of "
                          f"{', '.join(map(str, GROUP_SIZES))})")


def inspect_quantized(directory: str | os.PathLike[str]) -> tuple[Any, list[Path], str, int | None]:
    """A quantized checkpoint's (config, weights files, method, group size), its tensor names and
    shapes checked against config.json from the safetensors headers alone (no tensor data read)."""
    directory = Path(directory)
    config = read_config(directory)
    method, group = _parse_config(quantization_config(directory), directory / CONFIG_FILE)
    files = [f for f in weights_files(directory) if f.suffix == ".safetensors"]
    if not files:
        raise CheckpointError(f"{directory}: a quantized checkpoint needs {SAFETENSORS_FILE} beside {CONFIG_FILE}")
    expected = _expected_shapes(config, method, group)
    shapes: dict[str, tuple[int, ...]] = {}
    for f in files:
        shapes.update({_our_name(k): s for k, s in read_safetensors_header(f).items()})
    if not config.bias:  # zero biases written for transformers' sake (checkpoint.to_hf)
        shapes = {k: s for k, s in shapes.items() if k in expected}
    _check_names_and_shapes(shapes, expected, _source(directory, files))
    return config, files, method, group


def _expected_shapes(config: Any, method: str, group: int | None) -> dict[str, tuple[int, ...]]:
    """The tensors of a quantized checkpoint of `config`: the float model's, with each quantized
    layer's weight replaced by what the layer stores (and the tied head's added)."""
    shapes = dict(config.tensor_shapes())
    shapes["lm_head.weight"] = (config.vocab_size, config.n_embd)
    for name in quantized_layer_names(config.n_layer):
        out_features, in_features = shapes.pop(f"{name}.weight")
        for part, shape, _ in _LAYER_TYPES[method].stored_shapes(in_features, out_features, group):
            shapes[f"{name}.{part}"] = shape
    shapes["lm_head.mean_row"] = (config.n_embd,)
    return shapes


def load_quantized(model_class: type[nn.Module], directory: str | os.PathLike[str],
                   device: torch.device | str | None = None, dtype: torch.dtype | str | None = None) -> nn.Module:
    """A `model_class` (GPT2) from a quantized checkpoint directory (what `save_pretrained` of a
    quantized model writes), in eval mode; GPT2.from_pretrained calls it. The float tensors come
    in `dtype` (default float32), the quantized ones as stored. Names and shapes are checked
    against config.json before any tensor data is read."""
    directory = Path(directory)
    device = parse_device("cpu" if device is None else device, "device")
    dtype = parse_dtype(dtype) or torch.float32
    config, files, method, group = inspect_quantized(directory)
    check_fits(config, method, group or DEFAULT_GROUP_SIZE)
    check_kernel(method, device)
    with torch.device("meta"):  # no memory and no random init for weights about to be replaced
        model = model_class(config)
    names = quantized_layer_names(config.n_layer)
    for name in names:
        old = model.get_submodule(name)
        model.set_submodule(name, _LAYER_TYPES[method](old.in_features, old.out_features, old.bias is not None,
                                                       group, device="meta", dtype=dtype,
                                                       centered=name == "lm_head"))
    expected = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    for f in files:
        for key, tensor in read_tensors(f).items():
            name = _our_name(key)
            if name not in expected:
                continue  # a bias-free model's zero biases (see inspect_quantized)
            keep = not tensor.is_floating_point() or name.endswith((".qweight", ".scales", ".zeros", ".mean_row"))
            state[name] = tensor.to(device=device, dtype=None if keep else dtype).contiguous()
    _check_dtypes(state, model, _source(directory, files))
    model.load_state_dict(state, strict=True, assign=True)
    for name in names:
        model.get_submodule(name).prepare()
    model.quantization_config = _config(method, group)
    return model.eval()


def _source(directory: Path, files: list[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"{directory} (sharded)"


def _our_name(key: str) -> str:
    return key if key.startswith(("transformer.", "lm_head.")) else "transformer." + key


def _check_names_and_shapes(shapes: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]],
                            source: str) -> None:
    missing = sorted(expected.keys() - shapes.keys())
    unexpected = sorted(shapes.keys() - expected.keys())
    if missing:
        raise CheckpointError(f"{source}: missing tensors {', '.join(missing[:3])}"
                              f"{f' and {len(missing) - 3} more' if len(missing) > 3 else ''}")
    if unexpected:
        raise CheckpointError(f"{source}: unexpected tensors {', '.join(unexpected[:3])}"
                              f"{f' and {len(unexpected) - 3} more' if len(unexpected) > 3 else ''}")
    for key, shape in expected.items():
        if shapes[key] != shape:
            raise CheckpointError(f"{source}: tensor {key} has shape {shapes[key]} but config.json and "
                                  f"quantization_config imply {shape}")


def _check_dtypes(state: dict[str, torch.Tensor], model: nn.Module, source: str) -> None:
    """Quantized tensors must have the stored dtypes (an int8 file read as int4 would be garbage),
    and every other tensor must be a float one."""
    for name, tensor in state.items():
        if name.endswith((".qweight", ".scales", ".zeros", ".mean_row")):
            want = str(model.get_buffer(name).dtype).removeprefix("torch.")
        elif not tensor.is_floating_point():
            want = "a float dtype"
        else:
            continue
        got = str(tensor.dtype).removeprefix("torch.")
        if got != want:
            raise CheckpointError(f"{source}: tensor {name} is {got}, expected {want}")
