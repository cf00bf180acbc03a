"""The GPT-2 Transformer (Radford et al., 2019), readable top to bottom.

    input ids (B, T)
      -> token embedding wte + position embedding wpe        (B, T, C)
      -> n_layer x Block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
      -> final LayerNorm ln_f
      -> lm_head (the transpose of wte: tied weights)         (B, T, vocab_size)

GPT-2 moved LayerNorm to the input of each sub-block (pre-LN, as in the paper's section 2.3),
added a LayerNorm after the last block, and scaled the initial weights of the projections that
write into the residual stream by 1/sqrt(2 * n_layer), since each block adds two of them.

Module and parameter names follow Hugging Face's GPT2LMHeadModel (transformer.h.0.attn.c_attn,
...), so a checkpoint maps onto this model by name; the only difference is that their Conv1D
layers store weights as (in, out) and our nn.Linear layers as (out, in) (see checkpoint.py).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import overload

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import parse_dtype, quantization_config, read_checkpoint, resolve_checkpoint, write_checkpoint
from .config import GPT2Config
from .devices import parse_device
from .errors import TokenIdError


class KVCache:
    """Preallocated keys and values of every layer, for incremental decoding.

    Storage is (n_layer, batch, n_head, max_len, head_dim) for keys and for values, allocated
    once, so decoding never reallocates or copies the prefix. `length` is the number of
    positions already written; a forward pass with the cache writes positions
    [length, length + T) of every layer and then advances `length` by T.
    """

    def __init__(
        self,
        config: GPT2Config,
        batch_size: int,
        max_len: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        max_len = config.n_ctx if max_len is None else max_len
        if not 0 < max_len <= config.n_ctx:
            raise ValueError(f"KVCache max_len must be in [1, n_ctx={config.n_ctx}], got {max_len}")
        shape = (config.n_layer, batch_size, config.n_head, max_len, config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's keys/values (B, nh, T, hd) for `layer`; return all of them so far."""
        end = self.length + k.shape[2]
        self.k[layer, :, :, self.length : end] = k
        self.v[layer, :, :, self.length : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def reset(self) -> None:
        self.length = 0


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)  # residual write
        self.attn_dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None,
        kv_cache: KVCache | None,
        layer: int,
    ) -> torch.Tensor:
        B, T, C = x.shape
        # (B, T, 3C) -> q, k, v each (B, nh, T, hd): views, in one step (fewer small ops per token)
        q, k, v = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4).unbind(0)
        if kv_cache is not None:
            k, v = kv_cache.update(layer, k, v)  # (B, nh, past + T, hd)
        dropout = self.attn_dropout if self.training else 0.0
        if attn_mask is None:
            # Plain causal attention; with a cache and one new token, that token sees everything.
            causal = k.shape[2] == T and T > 1
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=causal)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble the heads
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)  # residual write
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # GPT-2 uses the tanh approximation of GELU ("gelu_new" in transformers).
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    """One pre-LayerNorm Transformer block."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None, kv_cache: KVCache | None, layer: int
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), attn_mask, kv_cache, layer)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT2(nn.Module):
    """GPT-2: a decoder-only Transformer language model.

    The body, and the language-model head on it (transformers splits them the same way:
    GPT2Model + heads; other heads sit on hidden_states too):
        model.hidden_states(input_ids)  -> the final LayerNorm's output (B, T, n_embd)
        model(input_ids)            -> logits, float tensor (B, T, vocab_size)
        model(input_ids, targets)   -> (logits, loss); loss is the mean cross-entropy over
                                       positions whose target is not -100 (a 0-d float32 tensor)

    Keyword options (all optional; hidden_states takes the first three):
        attention_mask  (B, past + T), 1 = real token, 0 = padding: padded keys are never
                        attended to (used for left-padded batches). Or the whole boolean mask
                        (B, 1, T, past + T), True = may attend, used as it is (the serving
                        engine's rows, each at its own length).
        position_ids    (B, T) positions to embed; default past, past + 1, ..., past + T - 1.
        kv_cache        a KVCache: keys/values of earlier positions are read from it and those
                        of this call are appended to it (incremental decoding).
        last_logits_only  compute logits only for the last position: (B, 1, vocab_size). Saves
                        the (T x vocab) projection when only the next token is wanted.
    """

    # Set by gpt2.quantize when the Linear layers hold int8/int4 weights (config.json's entry).
    quantization_config: dict | None = None

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),  # token embedding
                wpe=nn.Embedding(config.n_ctx, config.n_embd),  # learned position embedding
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
                ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied input/output embeddings
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2's initialization: N(0, 0.02) weights, zero biases, and the two residual
        projections of each block at N(0, 0.02 / sqrt(2 * n_layer))."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                std = residual_std if name.endswith("c_proj") else 0.02
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # lm_head shares wte's tensor; it was initialised with it.

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Number of distinct parameters (the tied head counts once).

        With exclude_embeddings, the token and position embeddings are left out, as in the
        scaling-law convention (the tied head is the token embedding).
        """
        n = sum(p.numel() for p in self.parameters())  # parameters() de-duplicates tied tensors
        if exclude_embeddings:
            n -= self.transformer.wte.weight.numel() + self.transformer.wpe.weight.numel()
        return n

    def resize_token_embeddings(self, vocab_size: int, *, generator: torch.Generator | None = None) -> None:
        """Grow (or shrink) the vocabulary to `vocab_size` rows, keeping the existing rows; new
        rows are drawn from N(0, 0.02) as GPT-1 initialised its task tokens. The head stays tied."""
        old = self.transformer.wte.weight
        if vocab_size == old.shape[0]:
            return
        new = torch.empty(vocab_size, old.shape[1], device=old.device, dtype=old.dtype)
        keep = min(vocab_size, old.shape[0])
        with torch.no_grad():
            new[:keep] = old[:keep]
            new[keep:].normal_(0.0, 0.02, generator=generator)
        self.transformer.wte = nn.Embedding(vocab_size, old.shape[1], _weight=new, device=old.device,
                                            dtype=old.dtype)
        self.transformer.wte.weight.requires_grad_(old.requires_grad)
        self.lm_head = nn.Linear(old.shape[1], vocab_size, bias=False, device="meta")
        self.lm_head.weight = self.transformer.wte.weight
        self.config = dataclasses.replace(self.config, vocab_size=vocab_size)

    @overload
    def forward(self, input_ids: torch.Tensor, targets: None = None, **kw) -> torch.Tensor: ...
    @overload
    def forward(
        self, input_ids: torch.Tensor, targets: torch.Tensor, **kw
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def forward(
        self,
        input_ids: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        last_logits_only: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The language-model head on hidden_states (see the class docstring)."""
        x = self.hidden_states(input_ids, attention_mask=attention_mask, position_ids=position_ids,
                               kv_cache=kv_cache)
        if targets is not None:
            logits = self.lm_head(x)
            loss = F.cross_entropy(
                logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100
            )
            return logits, loss
        if last_logits_only:
            x = x[:, -1:, :]
        return self.lm_head(x)

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
    ) -> torch.Tensor:
        """The body every head sits on: embeddings, the blocks and the final LayerNorm,
        (B, T, n_embd). Options as for forward (transformers' GPT2Model last_hidden_state)."""
        B, T = input_ids.shape
        self._check_ids(input_ids)  # here, so that every head gets it
        past = kv_cache.length if kv_cache is not None else 0
        if past + T > self.config.n_ctx:
            raise ValueError(
                f"sequence of {past + T} tokens is longer than the context n_ctx={self.config.n_ctx}"
            )
        if kv_cache is not None and past + T > kv_cache.max_len:
            raise ValueError(f"KV cache holds {kv_cache.max_len} positions; {past + T} needed")
        if position_ids is None:
            position_ids = torch.arange(past, past + T, device=input_ids.device).unsqueeze(0)

        x = self.transformer.wte(input_ids) + self.transformer.wpe(position_ids)
        x = self.transformer.drop(x)
        attn_mask = self._attention_mask(attention_mask, B, T, past, x.device)
        for i, block in enumerate(self.transformer.h):
            x = block(x, attn_mask, kv_cache, i)
        if kv_cache is not None:
            kv_cache.length += T
        return self.transformer.ln_f(x)

    def _check_ids(self, input_ids: torch.Tensor) -> None:
        """Ids must index the vocabulary: the embedding's own error ("index out of range in
        self") names neither. One min/max reduction over the ids; the details only on error."""
        if input_ids.dtype not in (torch.long, torch.int, torch.int16, torch.uint8, torch.int8):
            raise TypeError(f"input_ids must be an integer tensor, got {input_ids.dtype}")
        if input_ids.numel() == 0:
            return
        low, high = torch.aminmax(input_ids)
        vocab = self.config.vocab_size
        if bool((low < 0) | (high >= vocab)):
            bad = int(low) if int(low) < 0 else int(high)
            raise TokenIdError(f"token id {bad} is out of range: the vocabulary has {vocab} ids "
                               f"(0 to {vocab - 1})")

    @staticmethod
    def _attention_mask(
        attention_mask: torch.Tensor | None, B: int, T: int, past: int, device: torch.device
    ) -> torch.Tensor | None:
        """The boolean mask (B, 1, T, past + T) for SDPA (True = may attend), or None when
        plain causal attention (or, for one new token, no mask) is exact."""
        if attention_mask is None and (past == 0 or T == 1):
            return None
        if attention_mask is not None and attention_mask.dim() == 4:
            if attention_mask.shape != (B, 1, T, past + T) or attention_mask.dtype != torch.bool:
                raise ValueError(f"a 4-d attention_mask must be bool of shape {(B, 1, T, past + T)}, "
                                 f"got {attention_mask.dtype} {tuple(attention_mask.shape)}")
            return attention_mask
        q_pos = torch.arange(past, past + T, device=device).view(T, 1)
        k_pos = torch.arange(past + T, device=device).view(1, past + T)
        allowed = (k_pos <= q_pos).view(1, 1, T, past + T)
        if attention_mask is not None:
            if attention_mask.shape != (B, past + T):
                raise ValueError(
                    f"attention_mask must have shape {(B, past + T)}, got {tuple(attention_mask.shape)}"
                )
            real = attention_mask.bool().view(B, 1, 1, past + T)
            # A padding query would see no key at all (a row of -inf gives NaN): let every
            # query see itself. Outputs at padding positions are never used.
            allowed = (allowed & real) | (k_pos == q_pos).view(1, 1, T, past + T)
        return allowed

    # --- Checkpoints in the Hugging Face layout: files and tensors in checkpoint.py.

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str],
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
    ) -> GPT2:
        """Load a checkpoint directory (config.json + model.safetensors or pytorch_model.bin)
        or a hub name such as "gpt2"; the model comes back in eval mode. dtype None is float32.
        A quantized checkpoint (`gpt2 quantize`) comes back with its quantized layers."""
        # Bad arguments are refused before anything is downloaded or read.
        device = parse_device("cpu" if device is None else device, "device")
        dtype = parse_dtype(dtype)
        directory = resolve_checkpoint(name_or_path)
        if quantization_config(directory) is not None:
            from .quantize import load_quantized

            return load_quantized(cls, directory, device=device, dtype=dtype)
        config, state = read_checkpoint(directory, device=device, dtype=dtype)
        with torch.device("meta"):  # no memory and no random init for weights about to be replaced
            model = cls(config)
        model.load_state_dict(state, strict=False, assign=True)  # strict=False: the tied head
        model.lm_head.weight = model.transformer.wte.weight  # re-tie: assign replaced wte's tensor
        return model.eval()

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Write config.json + model.safetensors that transformers' GPT2LMHeadModel loads (a
        quantized model: gpt2.quantize's format, with its quantization_config)."""
        extra = {"quantization_config": self.quantization_config} if self.quantization_config else None
        write_checkpoint(self.config, self.state_dict(), directory, extra_config=extra)
