"""GPT2Config: the hyperparameters of a GPT-2 model, and the named presets.

The four published sizes are those of Radford et al. (2019), Table 2; the parameter counts in
the comments are exact (token + position embeddings, blocks, final LayerNorm; the output head
is tied to the token embedding and adds nothing).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .validate import is_real

# name: (n_layer, n_head, n_embd)
_PRESETS: dict[str, tuple[int, int, int]] = {
    # The published GPT-2 sizes.
    "gpt2": (12, 12, 768),  # 124,439,808 parameters ("117M" in the paper)
    "gpt2-medium": (24, 16, 1024),  # 354,823,168 ("345M")
    "gpt2-large": (36, 20, 1280),  # 774,030,080 ("762M")
    "gpt2-xl": (48, 25, 1600),  # 1,557,611,200 ("1542M")
    # Small shapes for CPU work and tests (minGPT's names); same vocabulary and context.
    "gpt2-mini": (6, 6, 384),
    "gpt2-micro": (4, 4, 128),
    "gpt2-nano": (3, 3, 48),
}

# Hub repository ids that are aliases of the presets.
HUB_ALIASES: dict[str, str] = {
    "openai-community/gpt2": "gpt2",
    "openai-community/gpt2-medium": "gpt2-medium",
    "openai-community/gpt2-large": "gpt2-large",
    "openai-community/gpt2-xl": "gpt2-xl",
}

@dataclass(frozen=True)
class GPT2Config:
    """Hyperparameters of a GPT-2 model. Defaults are those of the 124M model."""

    vocab_size: int = 50257  # 50,000 BPE merges + 256 byte tokens + <|endoftext|>
    n_ctx: int = 1024  # context length (number of learned positions)
    n_embd: int = 768  # residual stream width
    n_layer: int = 12  # number of Transformer blocks
    n_head: int = 12  # attention heads per block; n_embd must divide evenly
    dropout: float = 0.0  # GPT-2 trained with 0.1; 0 for inference and fine-tuning by default
    bias: bool = True  # biases in Linear and LayerNorm layers, as in GPT-2
    layer_norm_epsilon: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_ctx", "n_embd", "n_layer", "n_head"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"GPT2Config.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ConfigError(
                f"GPT2Config.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
            )
        if not is_real(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"GPT2Config.dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.bias, bool):
            raise ConfigError(f"GPT2Config.bias must be true or false, got {self.bias!r}")
        if not is_real(self.layer_norm_epsilon) or not 0 < self.layer_norm_epsilon < 1:
            raise ConfigError(
                f"GPT2Config.layer_norm_epsilon must be in (0, 1), got {self.layer_norm_epsilon!r}"
            )

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "GPT2Config":
        """The config of a named size: gpt2, gpt2-medium, gpt2-large, gpt2-xl, or a small one."""
        key = HUB_ALIASES.get(name, name)
        if key not in _PRESETS:
            raise ConfigError(
                f"unknown preset {name!r}; choose one of: {', '.join(preset_names())}"
            )
        n_layer, n_head, n_embd = _PRESETS[key]
        return cls(**(dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd) | overrides))

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """The model's tensors (our names, the tied head left out) and their shapes, from the
        config alone: what a checkpoint must hold. Equal to GPT2(config).state_dict()'s."""
        C, L = self.n_embd, self.n_layer
        linear = {"attn.c_attn": (3 * C, C), "attn.c_proj": (C, C),
                  "mlp.c_fc": (4 * C, C), "mlp.c_proj": (C, 4 * C)}
        shapes: dict[str, tuple[int, ...]] = {
            "transformer.wte.weight": (self.vocab_size, C),
            "transformer.wpe.weight": (self.n_ctx, C),
        }
        for i in range(L):
            block = f"transformer.h.{i}"
            for part in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"):
                weight = linear.get(part, (C,))
                shapes[f"{block}.{part}.weight"] = weight
                if self.bias:
                    shapes[f"{block}.{part}.bias"] = weight[:1]
        shapes["transformer.ln_f.weight"] = (C,)
        if self.bias:
            shapes["transformer.ln_f.bias"] = (C,)
        return shapes

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Parameters of the model this config builds (the tied head once), without building it
        (so `gpt2 info` needs no model). Equal to GPT2.num_parameters."""
        total = sum(math.prod(shape) for shape in self.tensor_shapes().values())
        if exclude_embeddings:
            total -= (self.vocab_size + self.n_ctx) * self.n_embd
        return total

    def replace(self, **changes: Any) -> "GPT2Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # --- The Hugging Face config.json, so transformers and the ecosystem read our checkpoints.

    def to_hf_dict(self) -> dict[str, Any]:
        """config.json content that `transformers.GPT2Config` reads as this model."""
        return {
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "vocab_size": self.vocab_size,
            "n_positions": self.n_ctx,
            "n_ctx": self.n_ctx,
            "n_embd": self.n_embd,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_inner": None,
            "activation_function": "gelu_new",
            "resid_pdrop": self.dropout,
            "embd_pdrop": self.dropout,
            "attn_pdrop": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "initializer_range": 0.02,
            "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False,
            "reorder_and_upcast_attn": False,
            "tie_word_embeddings": True,
            "bos_token_id": 50256 if self.vocab_size > 50256 else self.vocab_size - 1,
            "eos_token_id": 50256 if self.vocab_size > 50256 else self.vocab_size - 1,
            "gpt2_bias": self.bias,  # ours: False means the zero biases written are not trained
        }

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], source: str = "config.json") -> "GPT2Config":
        """Read a Hugging Face GPT-2 config.json; refuse variants this model does not implement."""
        if d.get("model_type", "gpt2") != "gpt2":
            raise ConfigError(f"{source}: model_type is {d.get('model_type')!r}, expected 'gpt2'")
        act = d.get("activation_function", "gelu_new")
        if act not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ConfigError(
                f"{source}: activation_function {act!r} is not GPT-2's tanh GELU ('gelu_new')"
            )
        n_embd = d.get("n_embd", 768)
        if d.get("n_inner") not in (None, 4 * n_embd if isinstance(n_embd, int) else None):
            raise ConfigError(f"{source}: n_inner {d['n_inner']!r} is not 4 * n_embd")
        for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
            if d.get(flag):
                raise ConfigError(f"{source}: {flag}=true is not supported (GPT-2 uses false)")
        if d.get("scale_attn_weights") is False:
            raise ConfigError(f"{source}: scale_attn_weights=false is not supported")
        if d.get("tie_word_embeddings") is False:
            raise ConfigError(f"{source}: tie_word_embeddings=false is not supported")
        dropouts = [d.get(k, 0.1) for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")]
        for key, value in zip(("resid_pdrop", "embd_pdrop", "attn_pdrop"), dropouts):
            if not is_real(value) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{source}: {key} must be a number in [0, 1), got {value!r}")
        try:
            return cls(
                vocab_size=d.get("vocab_size", 50257),
                n_ctx=d.get("n_positions", d.get("n_ctx", 1024)),
                n_embd=n_embd,
                n_layer=d.get("n_layer", 12),
                n_head=d.get("n_head", 12),
                dropout=max(dropouts),  # one rate in our model; HF's three are always equal for GPT-2
                bias=d.get("gpt2_bias", True),
                layer_norm_epsilon=d.get("layer_norm_epsilon", 1e-5),
            )
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None


def preset_names() -> list[str]:
    """Names accepted by GPT2Config.preset, largest published size last among the four."""
    return list(_PRESETS)
