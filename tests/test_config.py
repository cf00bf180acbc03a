from __future__ import annotations

import pytest
import torch

from gpt2 import GPT2, ConfigError, GPT2Config
from gpt2.config import preset_names

# Published parameter counts (tied output head), as transformers counts them.
PUBLISHED = {
    "gpt2": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_preset_parameter_counts_are_the_published_ones(name):
    with torch.device("meta"):
        model = GPT2(GPT2Config.preset(name))
    assert model.num_parameters() == PUBLISHED[name]


@pytest.mark.parametrize("config", [
    GPT2Config.preset("gpt2"), GPT2Config.preset("gpt2-nano", bias=False),
    GPT2Config(vocab_size=8192, n_ctx=256, n_embd=256, n_layer=6, n_head=8),
])
def test_config_counts_parameters_as_the_model_does(config):
    with torch.device("meta"):
        model = GPT2(config)
    for exclude in (False, True):
        assert config.num_parameters(exclude) == model.num_parameters(exclude)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "lm_head.weight"}
    assert config.tensor_shapes() == state and list(config.tensor_shapes()) == list(state)


def test_presets_have_gpt2_vocabulary_and_context():
    for name in preset_names():
        config = GPT2Config.preset(name)
        assert (config.vocab_size, config.n_ctx) == (50257, 1024)
        assert config.n_embd % config.n_head == 0


def test_hub_alias_is_a_preset():
    assert GPT2Config.preset("openai-community/gpt2-medium") == GPT2Config.preset("gpt2-medium")


def test_preset_overrides():
    assert GPT2Config.preset("gpt2", dropout=0.1).dropout == 0.1


@pytest.mark.parametrize(
    "field, value",
    [("n_embd", 0), ("n_layer", -1), ("n_head", 0), ("vocab_size", 2.5), ("n_ctx", True),
     ("dropout", 1.0), ("dropout", -0.1), ("layer_norm_epsilon", 0), ("bias", "yes"),
     ("dropout", float("nan")), ("layer_norm_epsilon", float("nan")), ("layer_norm_epsilon", float("inf")),
     ("dropout", True), ("layer_norm_epsilon", "1e-5"), ("layer_norm_epsilon", True)],
)
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        GPT2Config(**{field: value})


def test_n_embd_must_divide_by_n_head():
    with pytest.raises(ConfigError, match=r"n_embd \(100\) must be divisible by n_head \(3\)"):
        GPT2Config(n_embd=100, n_head=3)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ConfigError, match="unknown preset 'gpt3'.*gpt2-medium"):
        GPT2Config.preset("gpt3")


def test_hf_dict_round_trip():
    config = GPT2Config(n_layer=3, n_embd=96, n_head=6, n_ctx=256, vocab_size=1000, dropout=0.1)
    assert GPT2Config.from_hf_dict(config.to_hf_dict()) == config


def test_hf_config_is_read_by_transformers():
    from transformers import GPT2Config as HFConfig

    config = GPT2Config(n_layer=3, n_embd=96, n_head=6, n_ctx=256)
    hf = HFConfig(**config.to_hf_dict())
    assert (hf.n_layer, hf.n_embd, hf.n_head, hf.n_positions) == (3, 96, 6, 256)
    assert hf.activation_function == "gelu_new"


@pytest.mark.parametrize(
    "change, message",
    [({"activation_function": "relu"}, "activation_function"),
     ({"n_inner": 100}, "n_inner"),
     ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
     ({"model_type": "llama"}, "model_type"),
     ({"n_embd": 100, "n_head": 3}, "divisible")],
)
def test_hf_variants_we_do_not_implement_are_refused(change, message):
    with pytest.raises(ConfigError, match=message):
        GPT2Config.from_hf_dict(GPT2Config().to_hf_dict() | change)


def test_the_pipeline_and_tokenizer_start_without_torch():
    """`gpt2 prepare` / `gpt2 tokenizer` and prepare's worker processes import these modules;
    importing torch would cost them about a second each (benchmarks/RESULTS.md)."""
    import subprocess
    import sys

    code = ("import sys, gpt2, gpt2.data.prepare, gpt2.tokenizer, gpt2.cli.main; "
            "gpt2.cli.main.build_parser(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    # ... and the lazily exported names still resolve.
    import gpt2

    assert gpt2.GPT2.__name__ == "GPT2" and callable(gpt2.generate) and gpt2.Tokenizer.__name__ == "Tokenizer"


@pytest.mark.parametrize("key", ["resid_pdrop", "embd_pdrop", "attn_pdrop"])
@pytest.mark.parametrize("value", ["0.1", None, float("nan"), 1.5])
def test_hf_dropouts_of_the_wrong_type_name_the_key(key, value):
    """Mixed types used to escape as a TypeError from max()."""
    with pytest.raises(ConfigError, match=rf"config.json: {key} must be a number in \[0, 1\)"):
        GPT2Config.from_hf_dict(GPT2Config().to_hf_dict() | {key: value})
