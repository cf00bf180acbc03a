"""`gpt2 info` and the command's error contract (one line, exit code 2, no traceback)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpt2.cli.main import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpt2.cli.main", *args],
                          capture_output=True, text=True, timeout=120)


def test_info_preset_offline():
    result = run_cli("info", "gpt2")
    assert result.returncode == 0, result.stderr
    assert "124,439,808" in result.stdout
    assert "n_layer              12" in result.stdout


def test_info_json_for_a_checkpoint_directory(hf_checkpoint, capsys):
    assert main(["info", str(hf_checkpoint), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"]["n_layer"] == 2 and info["config"]["n_ctx"] == 128
    assert info["weights_files"][0]["file"] == "model.safetensors"
    # 50257*64 + 128*64 + 2 blocks * (12*64^2 + 13*64) + 2*64
    assert info["parameters"] == 50257 * 64 + 128 * 64 + 2 * (12 * 64 * 64 + 13 * 64) + 128


def test_bad_model_is_one_line_and_exit_code_2():
    result = run_cli("info", "not-a-model")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("gpt2 info: error: not-a-model: not a checkpoint directory nor a preset")


def test_no_subcommand_fails_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2 and "give a command" in capsys.readouterr().err


def test_info_demo(capsys):
    assert main(["info", "demo"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model        demo (demo)\n") and "6,901,760" in out
    assert "weights      model.safetensors (13." in out


def _checkpoint(tmp_path: Path, src: Path, config: dict | None = None, weights: bytes | None = None) -> Path:
    d = tmp_path / "c"
    shutil.copytree(src, d)
    if config is not None:
        (d / "config.json").write_text(json.dumps(config))
    if weights is not None:
        (d / "model.safetensors").write_bytes(weights)
    return d


@pytest.mark.parametrize("case, message", [
    ("empty-config-no-weights", r"c: no weights file; expected model.safetensors"),
    ("garbage-weights", r"model.safetensors: not a valid safetensors file"),
    ("truncated-weights", r"model.safetensors: truncated: its header describes"),
    ("n_layer-disagrees", r"config.json says n_layer=5 but the weights have 2 layers"),
    ("n_head-not-dividing", r"n_embd \(64\) must be divisible by n_head \(3\)"),
])
def test_info_refuses_a_checkpoint_it_cannot_describe(capsys, tmp_path, hf_checkpoint, case, message):
    """These used to print a parameter count (124,439,808 for `{}`, '(0.0 MiB)' for garbage)."""
    config = json.loads((hf_checkpoint / "config.json").read_text())
    data = (hf_checkpoint / "model.safetensors").read_bytes()
    d = {"empty-config-no-weights": lambda: _checkpoint(tmp_path, hf_checkpoint, {}),
         "garbage-weights": lambda: _checkpoint(tmp_path, hf_checkpoint, weights=b"\0" * 100),
         "truncated-weights": lambda: _checkpoint(tmp_path, hf_checkpoint, weights=data[:-10]),
         "n_layer-disagrees": lambda: _checkpoint(tmp_path, hf_checkpoint, config | {"n_layer": 5}),
         "n_head-not-dividing": lambda: _checkpoint(tmp_path, hf_checkpoint, config | {"n_head": 3}),
         }[case]()
    if case == "empty-config-no-weights":
        (d / "model.safetensors").unlink()
    assert main(["info", str(d)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and re.search(message, err), err
