"""LoRA adapters in PEFT's format: exact against PEFT on transformers' GPT-2 both ways (our
adapter in PEFT, PEFT's adapter here), merging, what trains, the errors, and gpt2.load."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import gpt2
from gpt2 import GPT2
from gpt2.checkpoint import to_hf
from gpt2.errors import ConfigError, FinetuneError
from gpt2.finetune.lora import (CONFIG_FILE, WEIGHTS_FILE, LoRAConfig, LoRALinear, apply_lora, load_adapter,
                                merge_lora, save_adapter)
from gpt2.settings import build, numeric_ranges

ALL = ("c_attn", "c_proj", "c_fc")
VOCAB = 97


@pytest.fixture(scope="module")
def base(tmp_path_factory, hf_model_factory) -> Path:
    """A tiny random GPT-2 (random biases and LayerNorms too) saved by transformers."""
    directory = tmp_path_factory.mktemp("lora-base")
    hf_model_factory(n_layer=2, n_embd=32, n_head=4, n_positions=32, vocab_size=VOCAB).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, 16), generator=torch.Generator().manual_seed(1))


def hf_model(base: Path):
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel.from_pretrained(base).eval()


def randomise_lora(model: nn.Module, seed: int = 0) -> None:
    """Non-zero B (and a fresh A) so that the adapter changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                for w in (m.lora_A.weight, m.lora_B.weight):
                    w.copy_(torch.randn(w.shape, generator=g) * 0.2)


def ours_with_lora(base: Path, targets=("c_attn",), r: int = 4, alpha: float = 8.0) -> GPT2:
    model = GPT2.from_pretrained(base)
    apply_lora(model, LoRAConfig(r=r, alpha=alpha, targets=targets))
    randomise_lora(model)
    return model


def logits(model, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(tokens)
    return getattr(out, "logits", out)


def one_line_error(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


# --------------------------------------------------------------------------- exact against PEFT


@pytest.mark.parametrize("targets", [("c_attn",), ALL], ids=["c_attn", "all"])
def test_our_adapter_loads_in_peft_with_equal_logits(tmp_path, base, tokens, targets):
    from peft import LoraConfig, PeftModel, get_peft_model

    ours = ours_with_lora(base, targets, r=4, alpha=12)
    save_adapter(ours, tmp_path / "ours", base_model_name_or_path=str(base))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peft_model = PeftModel.from_pretrained(hf_model(base), tmp_path / "ours").eval()
    assert not [w for w in caught if "key" in str(w.message).lower()]  # no missing/unexpected keys
    assert peft_model.peft_config["default"].fan_in_fan_out is True
    got, want = logits(ours, tokens), logits(peft_model, tokens)
    assert (got - want).abs().max().item() <= 1e-5
    assert (got - logits(GPT2.from_pretrained(base), tokens)).abs().max().item() > 1e-2  # the adapter acts

    # The files hold what PEFT itself writes for the same settings: keys, shapes, config values.
    made = get_peft_model(hf_model(base), LoraConfig(r=4, lora_alpha=12, target_modules=list(targets),
                                                     task_type="CAUSAL_LM"))
    made.save_pretrained(tmp_path / "peft")
    from safetensors import safe_open

    def layout(directory: Path) -> dict[str, list[int]]:
        with safe_open(str(directory / WEIGHTS_FILE), "pt") as f:
            return {k: f.get_slice(k).get_shape() for k in f.keys()}

    assert layout(tmp_path / "ours") == layout(tmp_path / "peft")
    ours_config = json.loads((tmp_path / "ours" / CONFIG_FILE).read_text())
    peft_config = json.loads((tmp_path / "peft" / CONFIG_FILE).read_text())
    for config in (ours_config, peft_config):  # PEFT writes a set: its order varies from run to run
        config["target_modules"] = sorted(config["target_modules"])
    assert {k: v for k, v in peft_config.items() if k in ours_config and k != "base_model_name_or_path"} == \
        {k: v for k, v in ours_config.items() if k != "base_model_name_or_path"}
    assert ours_config["base_model_name_or_path"] == str(base)


@pytest.mark.parametrize("target_modules, expected", [
    (["c_attn", "c_proj"], ["attn.c_attn", "attn.c_proj", "mlp.c_proj"]),  # both c_proj, as PEFT matches
    (r".*\.mlp\.c_fc", ["mlp.c_fc"]),  # a string is a regular expression over the whole name
    ("all-linear", ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]),
], ids=["list", "regex", "all-linear"])
def test_peft_adapter_loads_here_with_equal_logits(tmp_path, base, tokens, target_modules, expected):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(r=3, lora_alpha=7, lora_dropout=0.1, target_modules=target_modules,
                        init_lora_weights=False, task_type="CAUSAL_LM")  # False: B is random, not 0
    peft_model = get_peft_model(hf_model(base), config).eval()
    peft_model.save_pretrained(tmp_path)
    ours = GPT2.from_pretrained(base)
    names = load_adapter(ours, tmp_path)
    assert names == [f"transformer.h.{i}.{n}" for i in range(2) for n in expected]
    assert not ours.training and not any(m.training for m in ours.modules())
    assert (logits(ours, tokens) - logits(peft_model, tokens)).abs().max().item() <= 1e-5


def test_merge_equals_unmerged_peft_merge_and_a_plain_checkpoint(tmp_path, base, tokens):
    from peft import PeftModel
    from transformers import GPT2LMHeadModel

    ours = ours_with_lora(base, ALL)
    save_adapter(ours, tmp_path / "adapter", base_model_name_or_path=None)
    unmerged = logits(ours, tokens)
    assert merge_lora(ours) is ours
    assert not any(isinstance(m, LoRALinear) for m in ours.modules())
    assert ours.state_dict().keys() == GPT2.from_pretrained(base).state_dict().keys()
    assert (logits(ours, tokens) - unmerged).abs().max().item() <= 1e-5

    # The same weights as PEFT's merge_and_unload (transformers' Conv1D stores the transpose).
    peft_merged = PeftModel.from_pretrained(hf_model(base), tmp_path / "adapter").merge_and_unload()
    theirs = peft_merged.state_dict()
    for name, tensor in to_hf(ours.state_dict(), ours.config).items():
        assert torch.allclose(tensor, theirs[name], atol=1e-6), name

    ours.save_pretrained(tmp_path / "merged")
    hf, info = GPT2LMHeadModel.from_pretrained(tmp_path / "merged", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert (logits(hf.eval(), tokens) - unmerged).abs().max().item() <= 1e-5


# --------------------------------------------------------------------------- training


class WithHead(nn.Module):
    """A model with a task head, its GPT-2 body at `.lm` (as a fine-tuning model holds it)."""

    def __init__(self, lm: GPT2) -> None:
        super().__init__()
        self.lm = lm
        self.head = nn.Linear(lm.config.n_embd, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.lm.hidden_states(ids)[:, -1])


def test_only_lora_and_trainable_parameters_train(base, tokens):
    model = WithHead(GPT2.from_pretrained(base))
    plain_names = set(GPT2.from_pretrained(base).state_dict())
    names = apply_lora(model, LoRAConfig(r=2, targets=("attn.c_proj", "c_fc")), trainable=("head",))
    assert names == [f"lm.transformer.h.{i}.{n}" for i in range(2) for n in ("attn.c_proj", "mlp.c_fc")]
    lora = {f"{n}.lora_{x}.weight" for n in names for x in "AB"}
    trainable = lora | {"head.weight", "head.bias"}
    assert {n for n, p in model.named_parameters() if p.requires_grad} == trainable

    # The base weights keep their names, so the checkpoint layer maps them as before.
    state = {k.removeprefix("lm."): v for k, v in model.state_dict().items() if k.startswith("lm.")}
    base_state = {k: v for k, v in state.items() if ".lora_" not in k}
    assert base_state.keys() == plain_names
    assert to_hf(base_state, model.lm.config).keys() == to_hf(GPT2.from_pretrained(base).state_dict(),
                                                             model.lm.config).keys()

    randomise_lora(model)  # mid-training: every LoRA weight gets a gradient
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    loss = nn.functional.cross_entropy(model(tokens), torch.tensor([0, 2]))
    loss.backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == trainable


def test_a_fresh_adapter_changes_nothing_and_keeps_eval_mode(base, tokens):
    model = GPT2.from_pretrained(base)
    want = logits(model, tokens)
    apply_lora(model, LoRAConfig(r=4, dropout=0.5, targets=ALL))  # B = 0, as PEFT initialises it
    assert all(not m.training for m in model.modules())  # so the LoRA dropout is off too
    assert torch.equal(logits(model, tokens), want)
    layer = model.transformer.h[0].attn.c_attn
    assert layer.lora_A.weight.abs().sum() > 0 and layer.lora_B.weight.abs().sum() == 0


def test_lora_config_is_a_settings_section():
    config = build(LoRAConfig, {"r": 16, "alpha": 32, "targets": ["c_attn", "c_fc"]}, "lora.", "recipe.toml")
    assert config == LoRAConfig(r=16, alpha=32.0, dropout=0.0, targets=("c_attn", "c_fc"))
    assert all(rng is not None for rng in numeric_ranges(LoRAConfig).values())
    for bad in ({"r": 0}, {"dropout": 1.0}, {"alpha": -1}, {"targets": "c_attn"}, {"targets": []}):
        with pytest.raises(ConfigError) as e:
            build(LoRAConfig, bad, "lora.", "recipe.toml")
        one_line_error(e)
    with pytest.raises(ConfigError):
        LoRAConfig(r=True)


# --------------------------------------------------------------------------- errors


def test_a_target_matching_nothing_names_the_valid_ones(base):
    with pytest.raises(FinetuneError) as e:
        apply_lora(GPT2.from_pretrained(base), LoRAConfig(targets=("c_attn", "q_proj")))
    assert "'q_proj'" in one_line_error(e) and "c_attn, c_fc, c_proj" in str(e.value)
    with pytest.raises(FinetuneError, match="lm_head"):  # the tied head is not a LoRA target
        apply_lora(GPT2.from_pretrained(base), LoRAConfig(targets=("lm_head",)))
    with pytest.raises(FinetuneError, match="'heads'"):
        apply_lora(GPT2.from_pretrained(base), LoRAConfig(), trainable=("heads",))
    model = GPT2.from_pretrained(base)
    apply_lora(model, LoRAConfig())
    with pytest.raises(FinetuneError, match="already has LoRA"):
        apply_lora(model, LoRAConfig())


def _edit_config(directory: Path, **changes) -> None:
    path = directory / CONFIG_FILE
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def _add_tensor(directory: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(directory / WEIGHTS_FILE)
    tensors["base_model.model.transformer.h.0.attn.c_attn.lora_magnitude_vector"] = torch.ones(96)
    save_file(tensors, directory / WEIGHTS_FILE)


BAD_ADAPTERS = {
    "dora": (lambda d: _edit_config(d, use_dora=True), "use_dora = true is not supported"),
    "rslora": (lambda d: _edit_config(d, use_rslora=True), "use_rslora = true"),
    "modules_to_save": (lambda d: _edit_config(d, modules_to_save=["score"]), "modules_to_save"),
    "bias": (lambda d: _edit_config(d, bias="all"), "bias = \"all\""),
    "pissa": (lambda d: _edit_config(d, init_lora_weights="pissa"), "init_lora_weights"),
    "ia3": (lambda d: _edit_config(d, peft_type="IA3"), "peft_type 'IA3'"),
    "rank": (lambda d: _edit_config(d, r=2), "has shape (4, 32) but this model with r=2 needs (2, 32)"),
    "target": (lambda d: _edit_config(d, target_modules=["c_attn", "q_proj"]), "target 'q_proj' matches no"),
    "untargeted": (lambda d: _edit_config(d, target_modules=r"transformer\.h\.0\.attn\.c_attn"),
                   "tensors for transformer.h.1.attn.c_attn, which target_modules does not select"),
    "lacking": (lambda d: _edit_config(d, target_modules=["c_attn", "c_fc"]),
                "target_modules selects transformer.h.0.mlp.c_fc but the file has no tensors for it"),
    "unknown tensor": (_add_tensor, "lora_magnitude_vector is not a LoRA A or B weight"),
    "bin": (lambda d: (d / WEIGHTS_FILE).rename(d / "adapter_model.bin"), "adapter_model.bin is a pickle"),
    "no weights": (lambda d: (d / WEIGHTS_FILE).unlink(), "no adapter_model.safetensors"),
    "corrupt": (lambda d: (d / WEIGHTS_FILE).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{"), "safetensors"),
    "bad json": (lambda d: (d / CONFIG_FILE).write_text("{"), "cannot read"),
    "no config": (lambda d: (d / CONFIG_FILE).unlink(), "not a PEFT adapter directory"),
    "no directory": (lambda d: shutil.rmtree(d), "no such adapter directory"),
}


@pytest.fixture(scope="module")
def saved_adapter(tmp_path_factory, base) -> Path:
    directory = tmp_path_factory.mktemp("adapter")
    save_adapter(ours_with_lora(base), directory, base_model_name_or_path=str(base))
    return directory


@pytest.mark.parametrize("case", BAD_ADAPTERS, ids=list(BAD_ADAPTERS))
def test_bad_adapters_are_one_line_errors_and_leave_the_model_alone(tmp_path, base, saved_adapter, case):
    spoil, expected = BAD_ADAPTERS[case]
    directory = tmp_path / "adapter"
    shutil.copytree(saved_adapter, directory)
    spoil(directory)
    model = GPT2.from_pretrained(base)
    with pytest.raises(FinetuneError) as e:
        load_adapter(model, directory)
    assert expected in one_line_error(e)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())


def test_an_adapter_for_another_shape_is_refused(tmp_path, hf_model_factory, saved_adapter):
    hf_model_factory(n_layer=1, n_embd=32, n_head=4, n_positions=32, vocab_size=VOCAB).save_pretrained(tmp_path)
    with pytest.raises(FinetuneError) as e:
        load_adapter(GPT2.from_pretrained(tmp_path), saved_adapter)
    assert "transformer.h.1.attn.c_attn, which is not a linear layer of this model" in one_line_error(e)


def test_saving_or_merging_without_adapters_is_an_error(tmp_path, base):
    with pytest.raises(FinetuneError, match="no LoRA adapters to save"):
        save_adapter(GPT2.from_pretrained(base), tmp_path, base_model_name_or_path=None)
    with pytest.raises(FinetuneError, match="no LoRA adapters to merge"):
        merge_lora(GPT2.from_pretrained(base))


# --------------------------------------------------------------------------- gpt2.load


def test_gpt2_load_with_an_adapter(tmp_path, base, tokens, saved_adapter):
    want = logits(ours_with_lora(base), tokens)
    model, tok = gpt2.load(base, adapter=saved_adapter)
    assert not model.training and isinstance(model.transformer.h[0].attn.c_attn, LoRALinear)
    assert (logits(model, tokens) - want).abs().max().item() <= 1e-6
    assert tok.encode("hello") == gpt2.load(base)[1].encode("hello")

    # The adapter directory alone: its base_model_name_or_path names the base.
    alone, _ = gpt2.load(saved_adapter)
    assert (logits(alone, tokens) - want).abs().max().item() <= 1e-6
    half, _ = gpt2.load(saved_adapter, dtype="bfloat16")
    assert half.transformer.h[0].attn.c_attn.lora_B.weight.dtype == torch.bfloat16

    plain, _ = gpt2.load(base)  # no adapter: unchanged
    assert not any(isinstance(m, LoRALinear) for m in plain.modules())


def test_gpt2_load_errors(tmp_path, base, saved_adapter):
    shutil.copytree(saved_adapter, tmp_path / "nameless")
    _edit_config(tmp_path / "nameless", base_model_name_or_path=None)
    with pytest.raises(FinetuneError) as e:
        gpt2.load(tmp_path / "nameless")
    assert "pass the base model with the adapter" in one_line_error(e)
    with pytest.raises(FinetuneError, match="is an adapter directory"):
        gpt2.load(saved_adapter, adapter=saved_adapter)
    with pytest.raises(FinetuneError, match="no such adapter directory"):
        gpt2.load(base, adapter=tmp_path / "missing")
