"""Hugging Face-layout checkpoints: exact parity with transformers both ways, every layout a user
meets (ours, transformers' save_pretrained, the hub's older .bin layout, sharded safetensors,
the hub cache), and one clear error for each kind of bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from gpt2 import GPT2, CheckpointError, GPT2Config, UsageError
from gpt2.checkpoint import SAFETENSORS_FILE

SHAPES = [
    dict(n_layer=2, n_embd=64, n_head=4, n_positions=128),
    dict(n_layer=3, n_embd=48, n_head=3, n_positions=64, vocab_size=1000),
    dict(n_layer=1, n_embd=96, n_head=8, n_positions=32, vocab_size=515),
    dict(n_layer=4, n_embd=72, n_head=6, n_positions=96, layer_norm_epsilon=1e-6),
]


def max_abs_diff(ours: GPT2, hf, tokens: torch.Tensor) -> float:
    with torch.no_grad():
        return (ours(tokens) - hf(tokens).logits).abs().max().item()


def random_tokens(config: GPT2Config, batch: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, config.vocab_size, (batch, config.n_ctx), generator=g)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"L{s['n_layer']}-C{s['n_embd']}-H{s['n_head']}")
def test_transformers_checkpoint_loads_with_identical_logits(tmp_path, hf_model_factory, shape):
    hf = hf_model_factory(**shape)
    hf.save_pretrained(tmp_path)
    ours = GPT2.from_pretrained(tmp_path)
    assert not ours.training
    assert ours.config.n_ctx == shape["n_positions"] and ours.config.n_layer == shape["n_layer"]
    assert max_abs_diff(ours, hf, random_tokens(ours.config)) <= 1e-5


@pytest.mark.parametrize("shape", SHAPES[:2], ids=["L2", "L3"])
def test_our_checkpoint_loads_in_transformers_with_identical_logits(tmp_path, shape):
    from transformers import GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=shape["n_layer"], n_embd=shape["n_embd"], n_head=shape["n_head"],
                        n_ctx=shape["n_positions"], vocab_size=shape.get("vocab_size", 50257))
    ours = GPT2(config).eval()
    ours.save_pretrained(tmp_path)
    hf, info = GPT2LMHeadModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert max_abs_diff(ours, hf.eval(), random_tokens(config)) <= 1e-5
    # ... and back again, exactly.
    again = GPT2.from_pretrained(tmp_path)
    assert again.config == config
    for (k, a), (_, b) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k
    assert again.lm_head.weight is again.transformer.wte.weight


def test_model_without_biases_round_trips_through_transformers(tmp_path):
    from transformers import GPT2LMHeadModel

    torch.manual_seed(0)
    ours = GPT2(GPT2Config(n_layer=2, n_embd=32, n_head=2, n_ctx=16, bias=False)).eval()
    ours.save_pretrained(tmp_path)
    hf = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    assert max_abs_diff(ours, hf, random_tokens(ours.config)) <= 1e-5
    assert GPT2.from_pretrained(tmp_path).config.bias is False


def test_hub_layout_pytorch_bin_without_prefix_and_with_mask_buffers(tmp_path, hf_model_factory):
    """The hub's gpt2 checkpoints: keys without `transformer.`, causal-mask buffers, a .bin."""
    hf = hf_model_factory()
    hf.save_pretrained(tmp_path)
    (tmp_path / SAFETENSORS_FILE).unlink()
    state = {k.removeprefix("transformer."): v for k, v in hf.state_dict().items()}
    n_pos = hf.config.n_positions
    for i in range(hf.config.n_layer):
        state[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n_pos, n_pos)).view(1, 1, n_pos, n_pos)
        state[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    torch.save(state, tmp_path / "pytorch_model.bin")
    ours = GPT2.from_pretrained(tmp_path)
    assert max_abs_diff(ours, hf, random_tokens(ours.config)) <= 1e-5


def test_sharded_safetensors(tmp_path, hf_model_factory):
    hf = hf_model_factory()
    hf.save_pretrained(tmp_path, max_shard_size="2MB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    ours = GPT2.from_pretrained(tmp_path)
    assert max_abs_diff(ours, hf, random_tokens(ours.config)) <= 1e-5


def test_dtype_and_device_arguments(hf_checkpoint):
    model = GPT2.from_pretrained(hf_checkpoint, device="cpu", dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.lm_head.weight is model.transformer.wte.weight
    with pytest.raises(UsageError, match="unknown dtype 'float8'; choose one of: float32, bfloat16, float16"):
        GPT2.from_pretrained(hf_checkpoint, dtype="float8")
    with pytest.raises(UsageError, match="unknown dtype 'torch.int8'"):
        GPT2.from_pretrained(hf_checkpoint, dtype=torch.int8)


@pytest.mark.parametrize("device, message", [
    ("banana", r"device 'banana' is not a device name; devices here: cpu"),
    ("cuda:7", r"device 'cuda:7': .*devices here: cpu"),
])
def test_a_device_that_is_not_here_is_one_line_naming_those_that_are(hf_checkpoint, device, message):
    if torch.cuda.is_available():
        pytest.skip("the message lists this machine's devices")
    with pytest.raises(UsageError, match=message) as e:
        GPT2.from_pretrained(hf_checkpoint, device=device)
    assert "\n" not in str(e.value)


def test_hub_name_loads_from_the_hub_cache(tmp_path, monkeypatch, hf_checkpoint):
    """A hub name resolves through huggingface_hub's cache: the path a user's download takes."""
    import huggingface_hub.constants

    repo = tmp_path / "models--openai-community--gpt2"
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in ("config.json", SAFETENSORS_FILE):
        shutil.copy(hf_checkpoint / f, snapshot / f)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    for name in ("gpt2", "openai-community/gpt2"):
        model = GPT2.from_pretrained(name)
        assert model.config.n_layer == 2


def test_hub_name_without_network_says_so(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    expected = ("cannot download 'gpt2': no network; pass a local directory holding "
                "config.json and model.safetensors")
    with pytest.raises(CheckpointError) as e:
        GPT2.from_pretrained("gpt2")
    assert str(e.value) == expected


def test_the_checkpoint_layer_reads_and_writes_configs_and_tensors(tmp_path, hf_checkpoint):
    """read_checkpoint / write_checkpoint, with no model: configs and state dicts in our names."""
    from gpt2.checkpoint import read_checkpoint, write_checkpoint

    config, state = read_checkpoint(hf_checkpoint)
    assert {k: tuple(v.shape) for k, v in state.items()} == config.tensor_shapes()
    assert {(v.dtype, v.device.type) for v in state.values()} == {(torch.float32, "cpu")}
    write_checkpoint(config, state, tmp_path / "out")
    again_config, again = read_checkpoint(tmp_path / "out", dtype="bfloat16")
    assert again_config == config and again.keys() == state.keys()
    for k, v in state.items():
        assert torch.equal(again[k], v.to(torch.bfloat16)), k


@pytest.mark.parametrize("bias", [True, False])
def test_to_hf_and_from_hf_are_inverse(bias):
    from gpt2.checkpoint import from_hf, to_hf

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_ctx=16, vocab_size=100, bias=bias)
    state = GPT2(config).state_dict()
    hf = to_hf(state, config)
    assert "lm_head.weight" not in hf and hf["transformer.h.0.attn.c_attn.weight"].shape == (32, 96)
    back = from_hf(hf, config)
    assert back.keys() == state.keys() - {"lm_head.weight"}
    for k, v in back.items():
        assert torch.equal(v, state[k]), k


def test_the_checkpoint_layer_does_not_import_the_model():
    """Imports run one way: model -> checkpoint -> config."""
    import subprocess
    import sys

    code = "import sys, gpt2.checkpoint; assert 'gpt2.model' not in sys.modules, 'imports gpt2.model'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- bad input


def copy_checkpoint(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        GPT2.from_pretrained(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        GPT2.from_pretrained("./runs/nope")


def test_a_file_is_not_a_checkpoint(hf_checkpoint):
    with pytest.raises(CheckpointError, match="not a directory"):
        GPT2.from_pretrained(hf_checkpoint / "config.json")


def test_missing_config(tmp_path, hf_checkpoint):
    d = copy_checkpoint(hf_checkpoint, tmp_path / "c")
    (d / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config.json: no such file"):
        GPT2.from_pretrained(d)


def test_invalid_config_json(tmp_path, hf_checkpoint):
    d = copy_checkpoint(hf_checkpoint, tmp_path / "c")
    (d / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config.json: not valid JSON"):
        GPT2.from_pretrained(d)


def test_no_weights_file(tmp_path, hf_checkpoint):
    d = copy_checkpoint(hf_checkpoint, tmp_path / "c")
    (d / SAFETENSORS_FILE).unlink()
    with pytest.raises(CheckpointError, match="no weights file; expected model.safetensors"):
        GPT2.from_pretrained(d)


def test_corrupt_safetensors(tmp_path, hf_checkpoint):
    d = copy_checkpoint(hf_checkpoint, tmp_path / "c")
    (d / SAFETENSORS_FILE).write_bytes(b"\x13\x00\x00\x00\x00\x00\x00\x00garbage-not-a-header")
    with pytest.raises(CheckpointError, match="model.safetensors: not a valid safetensors file"):
        GPT2.from_pretrained(d)


def test_truncated_safetensors(tmp_path, hf_checkpoint):
    d = copy_checkpoint(hf_checkpoint, tmp_path / "c")
    data = (d / SAFETENSORS_FILE).read_bytes()
    (d / SAFETENSORS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"model.safetensors: truncated: its header describes "
                                              f"{len(data):,} bytes but the file has {len(data) // 2:,}"):
        GPT2.from_pretrained(d)
    (d / SAFETENSORS_FILE).write_bytes(data + b"\0\0")
    with pytest.raises(CheckpointError, match="not a valid safetensors file \\(2 bytes after the tensors\\)"):
        GPT2.from_pretrained(d)
    for junk in (b"", b"\x07", b"\xff" * 8 + b"{}", b"\x02\0\0\0\0\0\0\0[]"):
        (d / SAFETENSORS_FILE).write_bytes(junk)
        with pytest.raises(CheckpointError, match="model.safetensors: not a valid safetensors file"):
            GPT2.from_pretrained(d)


def test_headers_are_checked_before_tensor_data_is_read(tmp_path, hf_checkpoint, monkeypatch):
    """inspect_checkpoint reads no tensor data; a disagreement is found from the header alone."""
    import gpt2.checkpoint as ckpt

    d = copy_checkpoint(hf_checkpoint, tmp_path / "c")
    monkeypatch.setattr(ckpt, "read_tensors", lambda path: pytest.fail("tensor data was read"))
    config, files = ckpt.inspect_checkpoint(d)
    assert config.n_layer == 2 and files == [d / SAFETENSORS_FILE]
    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps(config | {"n_embd": 32}))
    with pytest.raises(CheckpointError, match=r"wte.weight has shape \(50257, 64\) but config.json implies"):
        GPT2.from_pretrained(d)


def test_shapes_that_disagree_with_config(tmp_path, hf_checkpoint):
    d = copy_checkpoint(hf_checkpoint, tmp_path / "c")
    config = json.loads((d / "config.json").read_text())
    config["n_positions"] = 64
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"wpe.weight has shape \(128, 64\) but config.json implies \(64, 64\)"):
        GPT2.from_pretrained(d)


def test_missing_layer_tensors(tmp_path, hf_checkpoint):
    d = copy_checkpoint(hf_checkpoint, tmp_path / "c")
    config = json.loads((d / "config.json").read_text())
    config["n_layer"] = 3
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"config.json says n_layer=3 but the weights have 2 layers"):
        GPT2.from_pretrained(d)
    config["n_layer"] = 10**12  # refused from the header, without building such a model
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"n_layer=1000000000000 but the weights have 2 layers"):
        GPT2.from_pretrained(d)


@pytest.mark.parametrize("change, message", [
    ({"n_head": 5}, r"n_embd \(64\) must be divisible by n_head \(5\)"),
    ({"n_layer": -2}, r"n_layer must be a positive integer, got -2"),
    ({"n_embd": "64"}, r"n_embd must be a positive integer, got '64'"),
    ({"layer_norm_epsilon": float("nan")}, r"layer_norm_epsilon must be in \(0, 1\), got nan"),
    ({"resid_pdrop": "high"}, r"resid_pdrop must be a number in \[0, 1\), got 'high'"),
    ({"vocab_size": True}, r"vocab_size must be a positive integer, got True"),
])
def test_config_values_out_of_range_are_one_line(tmp_path, hf_checkpoint, change, message):
    d = copy_checkpoint(hf_checkpoint, tmp_path / "c")
    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps(config | change))
    with pytest.raises(CheckpointError, match=message) as e:
        GPT2.from_pretrained(d)
    assert "config.json" in str(e.value) and "\n" not in str(e.value)


class NotATensor:
    pass


def test_pickled_code_is_never_run(tmp_path, hf_checkpoint):
    d = copy_checkpoint(hf_checkpoint, tmp_path / "c")
    (d / SAFETENSORS_FILE).unlink()
    torch.save({"wte.weight": NotATensor()}, d / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pytorch_model.bin: refused: it holds a Python object "
                                              r"\(.*NotATensor\) besides tensors") as e:
        GPT2.from_pretrained(d)
    # One readable line, without torch's advice to load with weights_only=False.
    assert "\n" not in str(e.value) and "weights_only" not in str(e.value)


def test_failed_save_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    import safetensors.torch

    torch.manual_seed(0)
    config = GPT2Config(n_layer=1, n_embd=32, n_head=2, n_ctx=16, vocab_size=100)
    GPT2(config).save_pretrained(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def failing_save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", failing_save_file)
    with pytest.raises(OSError, match="disk full"):
        GPT2(config.replace(n_layer=2)).save_pretrained(tmp_path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # no temporary file left, nothing overwritten
