"""Bad inputs to `gpt2 info`: names that are nothing, checkpoint directories it cannot describe
(no weights, corrupt or truncated weights, weights that disagree with config.json, config values
out of range), and a stdout that cannot be written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .harness import Case


class NotATensor:
    """Pickled into a pytorch_model.bin: a loader with weights_only=True must refuse it."""


def checkpoint(config: dict | str | None = None, weights: str | None = None, keep_weights: bool = True):
    """A setup: {tmp}/c, a copy of {ckpt} with config.json changed (a dict merged into it, or
    raw text) and its weights replaced ("garbage", "truncated", "tail", "pickle") or removed."""

    def setup(tmp: Path, assets: dict) -> None:
        d = tmp / "c"
        shutil.copytree(assets["ckpt"], d)
        if isinstance(config, dict):
            current = json.loads((d / "config.json").read_text())
            (d / "config.json").write_text(json.dumps(current | config))
        elif isinstance(config, str):
            (d / "config.json").write_text(config)
        st = d / "model.safetensors"
        data = st.read_bytes()
        if weights == "garbage":
            st.write_bytes(b"\x89PNG not weights at all" * 50)
        elif weights == "truncated":
            st.write_bytes(data[: len(data) * 2 // 3])
        elif weights == "tail":
            st.write_bytes(data + b"\0" * 16)
        elif weights == "pickle":
            import torch

            st.unlink()
            torch.save({"wte.weight": NotATensor()}, d / "pytorch_model.bin")
        elif weights == "index":
            st.unlink()
            (d / "model.safetensors.index.json").write_text('{"weight_map": [1, 2]}')
        elif weights == "missing-shard":
            st.unlink()
            (d / "model.safetensors.index.json").write_text(
                '{"weight_map": {"wte.weight": "model-00001-of-00002.safetensors"}}')
        if not keep_weights:
            st.unlink()

    return setup


def only(files: dict[str, str]):
    """A setup: {tmp}/c holding just these files."""

    def setup(tmp: Path, assets: dict) -> None:
        (tmp / "c").mkdir()
        for name, text in files.items():
            (tmp / "c" / name).write_text(text)

    return setup


C = "{tmp}/c"

CASES = [
    Case("info-unknown-name", ("info", "banana"), match=r"banana: not a checkpoint directory nor a preset \(demo, gpt2"),
    Case("info-missing-directory", ("info", "{tmp}/nope"), match=r"nope: not a checkpoint directory nor a preset"),
    Case("info-a-file", ("info", "{text}"), match=r"text.txt: not a directory"),
    Case("info-path-under-a-file", ("info", "{text}/ckpt", "--json"), match=r"ckpt: not a checkpoint directory"),
    Case("info-empty-directory", ("info", C), setup=only({}), match=r"c/config.json: no such file"),
    Case("info-empty-config-no-weights", ("info", C), setup=only({"config.json": "{}"}),
         match=r"c: no weights file; expected model.safetensors"),
    Case("info-no-weights", ("info", C, "--json"), setup=checkpoint(keep_weights=False),
         match=r"no weights file"),
    Case("info-config-not-json", ("info", C), setup=checkpoint("{not json"), match=r"config.json: not valid JSON"),
    Case("info-config-not-an-object", ("info", C), setup=checkpoint("[1, 2]"), match=r"config.json: expected a JSON object"),
    Case("info-config-n-head-not-dividing", ("info", C), setup=checkpoint({"n_head": 5}),
         match=r"config.json: .*n_embd \(48\) must be divisible by n_head \(5\)"),
    Case("info-config-negative-n-layer", ("info", C), setup=checkpoint({"n_layer": -3}),
         match=r"config.json: .*n_layer must be a positive integer, got -3"),
    Case("info-config-nan-epsilon", ("info", C), setup=checkpoint('{"layer_norm_epsilon": NaN}'),
         match=r"config.json: .*layer_norm_epsilon must be in \(0, 1\), got nan"),
    Case("info-config-string-width", ("info", C), setup=checkpoint({"n_embd": "48"}),
         match=r"config.json: .*n_embd must be a positive integer, got '48'"),
    Case("info-config-huge-n-layer", ("info", C), setup=checkpoint({"n_layer": 10**12}),
         match=r"n_layer=1000000000000 but the weights have 3 layers"),
    Case("info-n-layer-disagrees", ("info", C), setup=checkpoint({"n_layer": 4}),
         match=r"model.safetensors: config.json says n_layer=4 but the weights have 3 layers"),
    Case("info-shape-disagrees", ("info", C, "--json"), setup=checkpoint({"n_positions": 128}),
         match=r"tensor wpe.weight has shape \(64, 48\) but config.json implies \(128, 48\)"),
    Case("info-garbage-weights", ("info", C), setup=checkpoint(weights="garbage"),
         match=r"model.safetensors: not a valid safetensors file"),
    Case("info-truncated-weights", ("info", C), setup=checkpoint(weights="truncated"),
         match=r"model.safetensors: truncated: its header describes [\d,]+ bytes but the file has"),
    Case("info-weights-with-bytes-appended", ("info", C), setup=checkpoint(weights="tail"),
         match=r"not a valid safetensors file \(16 bytes after the tensors\)"),
    Case("info-pickled-weights", ("info", C), setup=checkpoint(weights="pickle"),
         match=r"pytorch_model.bin: refused: it holds a Python object \(.*NotATensor\) besides tensors"),
    Case("info-bad-shard-index", ("info", C), setup=checkpoint(weights="index"),
         match=r"model.safetensors.index.json: not a valid safetensors index"),
    Case("info-missing-shard", ("info", C), setup=checkpoint(weights="missing-shard"),
         match=r"model-00001-of-00002.safetensors: no such file"),
    Case("info-stdout-closed", ("info", "gpt2"), stdout="closed", match=r"stdout is closed"),
    Case("info-stdout-full", ("info", "gpt2"), stdout="full", match=r"cannot write to stdout: No space left"),
    Case("info-json-stdout-full", ("info", "demo", "--json"), stdout="full", match=r"No space left on device"),
]
