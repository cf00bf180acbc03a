"""`gpt2 info` and the command's error contract (one line, exit code 2, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_no_subcommand_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err
