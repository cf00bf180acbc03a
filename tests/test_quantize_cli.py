"""The quantize switch from every command that loads a model, and `gpt2 quantize` itself: each
gives what the Python API gives (gpt2.load(..., quantize=...)), and a saved quantized checkpoint
loads back as it was saved. (The layers' arithmetic: test_quantize.py; bad input: bad_input/.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpt2 import generate, load
from gpt2.cli.main import main

FIXTURES = Path(__file__).parent / "evaluate" / "fixtures"


def gpt2_cli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "gpt2.cli.main", *args], capture_output=True, text=True,
                          timeout=120, check=True).stdout


def greedy_text(model_and_tok, prompt: str = "ROMEO:", n: int = 12) -> str:
    model, tok = model_and_tok
    return generate(model, tok, prompt, temperature=0, max_new_tokens=n, stop_token_ids=())[0].text


def test_the_cli_choices_are_the_api_methods():
    from gpt2.cli.generate import QUANTIZE
    from gpt2.cli.quantize import GROUP_SIZES
    from gpt2.quantize import GROUP_SIZES as API_GROUP_SIZES
    from gpt2.quantize import METHODS

    assert QUANTIZE == METHODS and GROUP_SIZES == API_GROUP_SIZES


def test_quantize_command_writes_a_checkpoint_that_loads_quantized(tmp_path, capsys):
    out = tmp_path / "demo-int4"
    assert main(["quantize", "demo", "-o", str(out), "--quantize", "int4", "--group-size", "64"]) == 0
    assert str(out) in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json",
         "special_tokens_map.json"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind
    config = json.loads((out / "config.json").read_text())["quantization_config"]
    assert (config["quant_method"], config["bits"], config["group_size"]) == ("gpt2-weight-only", 4, 64)
    info = json.loads(gpt2_cli("info", str(out), "--json"))
    assert info["quantized"] == "int4, groups of 64"

    saved = load(out)
    assert type(saved[0].lm_head).__name__ == "Int4Linear" and saved[0].lm_head.group_size == 64
    from gpt2.quantize import quantize_model

    fresh = load("demo")
    quantize_model(fresh[0], "int4", group_size=64)
    assert greedy_text(saved) == greedy_text(fresh)
    # The command line reads it too, as saved.
    got = gpt2_cli("generate", "ROMEO:", "--model", str(out), "--temperature", "0", "--max-new-tokens", "12",
                   "--ignore-eot", "--json")
    assert json.loads(got)["text"] == greedy_text(saved)


def test_quantize_into_an_empty_directory(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["quantize", "demo", "-o", str(out), "--dtype", "bfloat16"]) == 0
    model, _ = load(out)
    assert model.quantization_config["bits"] == 8
    assert model.transformer.wte.weight.dtype.is_floating_point
    import torch

    assert load(out, dtype="float32")[0].transformer.wte.weight.dtype == torch.float32


@pytest.mark.parametrize("method", ["int8", "int4", "fp16"])
def test_generate_quantize_equals_the_api(method):
    got = gpt2_cli("generate", "ROMEO:", "--quantize", method, "--temperature", "0", "--max-new-tokens", "12",
                   "--ignore-eot", "--json")
    assert json.loads(got)["text"] == greedy_text(load("demo", quantize=method))


def test_eval_quantize_is_recorded_and_close_to_float(tmp_path):
    def perplexity(*extra: str) -> tuple[float, dict]:
        report = tmp_path / f"r{len(extra)}.json"
        assert main(["eval", "--task", "lambada_openai", "--data", str(FIXTURES / "lambada.jsonl"), "--limit", "4",
                     "--no-progress", "--json", str(report), *extra]) == 0
        (r,) = json.loads(report.read_text())["results"]
        return {m["metric"]: m["value"] for m in r["metrics"]}["perplexity"], r["settings"]

    plain, plain_settings = perplexity()
    int8, int8_settings = perplexity("--quantize", "int8")
    assert plain_settings["quantize"] is None and int8_settings["quantize"] == "int8"
    assert int8 != plain and int8 == pytest.approx(plain, rel=0.02)


def test_evaluate_api_takes_quantize_by_name_only():
    from gpt2.errors import UsageError
    from gpt2.evaluate import evaluate

    with pytest.raises(UsageError, match="quantize= goes with a model given by name"):
        evaluate(load("demo")[0], "lambada_openai", str(FIXTURES / "lambada.jsonl"), quantize="int8")


def test_quantize_an_adapter_merges_it_first(tmp_path, demo_adapter):
    """MODEL may be a LoRA adapter directory: it is merged into its base, then quantized, giving
    what gpt2.load(adapter_dir, quantize=...) gives."""
    assert main(["quantize", str(demo_adapter), "-o", str(tmp_path / "q")]) == 0
    saved = load(tmp_path / "q")
    assert greedy_text(saved) == greedy_text(load(demo_adapter, quantize="int8"))
    assert greedy_text(saved) != greedy_text(load("demo", quantize="int8"))
