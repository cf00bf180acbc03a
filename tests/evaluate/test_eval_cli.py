"""`gpt2 eval`: the table, the JSON report, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from conftest import unigram_logprob, unigram_model
from gpt2.cli.main import main

TABLE = {262: 12.0, 6342: 10.0}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval-cli-ckpt")
    unigram_model(TABLE).save_pretrained(d)
    return d


def test_table_and_json(ckpt, fixtures, tmp_path, capsys):
    out = tmp_path / "report.json"
    rc = main(["eval", "--model", str(ckpt), "--task", "lambada_openai", "--data",
               str(fixtures / "lambada.jsonl"), "--limit", "3", "--batch-size", "2", "--json", str(out)])
    assert rc == 0
    table = capsys.readouterr().out
    assert "lambada_openai" in table and "acc" in table and "perplexity" in table
    report = json.loads(out.read_text())
    (r,) = report["results"]
    assert r["task"] == "lambada_openai" and r["n"] == 3 and r["model"] == str(ckpt)
    assert r["data_hash"].startswith("sha256:") and r["settings"]["batch_size"] == 2
    metrics = {m["metric"]: m for m in r["metrics"]}
    assert set(metrics) == {"acc", "perplexity"}
    # The first three passages end in " lighthouse", " bicycle", " salt" (one token each).
    expected = math.exp(-sum(unigram_logprob(TABLE, t) for t in (46371, 17026, 8268)) / 3)
    assert metrics["perplexity"]["value"] == pytest.approx(expected, rel=1e-4)
    assert metrics["acc"]["value"] == 0.0 and metrics["acc"]["n"] == 3


def test_list(capsys):
    assert main(["eval", "--list"]) == 0
    listing = capsys.readouterr().out
    for name in ("lambada_openai", "wikitext", "hellaswag", "cbt_cn", "winograd", "coqa", "nq_open"):
        assert name in listing


@pytest.mark.parametrize("args, message", [
    (["--task", "nope"], "unknown task 'nope'"),
    (["--task", "lambada_openai", "--data", "/nonexistent.jsonl"], "no such data file"),
    (["--task", "lambada_openai", "--stride", "8"], "has no setting stride"),
    (["--task", "lambada_openai", "--set", "oops"], "expected KEY=VALUE"),
])
def test_errors_are_one_line(ckpt, capsys, args, message):
    assert main(["eval", "--model", str(ckpt), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_json_report_is_strict(ckpt, fixtures, tmp_path):
    out = tmp_path / "report.json"
    assert main(["eval", "--model", str(ckpt), "--task", "lambada_openai", "--data",
                 str(fixtures / "lambada.jsonl"), "--limit", "1", "--json", str(out)]) == 0
    (r,) = strict_json(out.read_text())["results"]  # no NaN: one example has no standard error
    assert [m["stderr"] for m in r["metrics"]] == [None, None]
    assert r["metrics"][0]["value"] == 0.0


def write_lines(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


WSC = {"text": "The cat and the dog saw it run.", "pronoun": "it", "pronoun_loc": 24,
       "options": ["the cat", "the dog"], "label": 0}


@pytest.mark.parametrize("task, rows, message", [
    ("winograd", [WSC | {"text": "The cat and the dog saw it"}], "nothing follows the pronoun"),
    ("winograd", [WSC | {"label": "0"}], "label must be an index of options, got '0'"),
    ("winograd", [WSC | {"pronoun_loc": 24.0}], "pronoun_loc must be an integer"),
    # candidate + rest of sentence: more than 64 tokens
    ("cbt_cn", [{"sentences": ["One ."], "question": "XXXXX" + " and so on" * 30 + " .", "answer": "a",
                 "options": ["a", "b"]}], "more than the model's context n_ctx=64"),
    ("nq_open", [{"question": "q", "answer": "a"}] * 2, "--set max_new_tokens must be an integer in [1, 63]"),
])
def test_data_errors_are_one_line(ckpt, tmp_path, capsys, task, rows, message):
    data = write_lines(tmp_path / "data.jsonl", rows)
    extra = ["--set", "max_new_tokens=64", "--shots", "1"] if task == "nq_open" else []
    assert main(["eval", "--model", str(ckpt), "--task", task, "--data", str(data), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--task", "nq_open", "--set", "shots=x"], "--shots must be an integer in [0, 10000], got 'x'"),
    (["--task", "ptb", "--set", "stride=0"], "--stride must be an integer in [1, n_ctx]"),
    (["--task", "wikitext", "--stride", "8"], "task wikitext has no setting stride"),
    (["--task", "lambada_openai", "--json", "/nonexistent-dir/r.json"], "no such directory /nonexistent-dir"),
])
def test_refused_before_the_model_loads(capsys, args, message):
    # The model does not exist: these are caught first.
    assert main(["eval", "--model", "/nonexistent-model", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unwritable_json_path(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    # root ignores permission bits; Linux's /sys takes no new files, even from root.
    unwritable = ro if not os.access(ro, os.W_OK) else Path("/sys")
    if not unwritable.is_dir():
        pytest.skip("no unwritable directory here")
    for path, message in [(unwritable / "r.json", "cannot write in"),
                          (tmp_path / "file" / "r.json", "is not a directory"),
                          (tmp_path, "a directory; give a file name")]:
        assert main(["eval", "--model", "/nonexistent-model", "--task", "lambada_openai", "--json", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_stride_help_is_truthful(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "not for wikitext" in capsys.readouterr().out


def test_bad_limit_is_refused(ckpt, capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval", "--model", str(ckpt), "--task", "lambada_openai", "--limit", "0"])
    assert e.value.code == 2 and "--limit: 0 is out of range" in capsys.readouterr().err


MC = [{"query": "The sky is", "choices": ["blue", "green"], "gold": 0},
      {"query": "One, two,", "choices": ["three", "four five six"], "gold": 0}]


def test_default_model_is_the_demo_model(tmp_path, capsys):
    # `gpt2 eval` without --model used to require one; it must use the bundled demo model, as
    # `gpt2 generate` does, and `--model demo` must name it (with the demo's own tokenizer).
    from gpt2 import load
    from gpt2.evaluate import evaluate

    data = write_lines(tmp_path / "mc.jsonl", MC)
    reports = []
    for extra in ([], ["--model", "demo"]):
        out = tmp_path / f"r{len(reports)}.json"
        assert main(["eval", *extra, "--task", "mc", "--data", str(data), "--json", str(out)]) == 0
        (r,) = json.loads(out.read_text())["results"]
        reports.append(r)
    assert [r["model"] for r in reports] == ["demo", "demo"]
    assert reports[0]["metrics"] == reports[1]["metrics"]
    model, tok = load("demo")
    expected = evaluate(model, "mc", data, tokenizer=tok)
    assert [m["value"] for m in reports[0]["metrics"]] == pytest.approx([m.value for m in expected.metrics])
    by_name = evaluate("demo", "mc", data)  # the Python API takes the name too
    assert by_name.model == "demo" and by_name["acc"] == expected["acc"]


@pytest.mark.parametrize("args, message", [
    (["--task", "mc", "--device", "cuda"], "--device 'cuda'"),
    (["--task", "mc", "--device", "banana"], "--device 'banana' is not a device name"),
    (["--task", "mc", "--dtype", "fp8"], "--dtype 'fp8': choose float32, bfloat16 or float16"),
    (["--task", "mc", "--set", "seed=1"], "task mc has no setting seed"),
    (["--task", "cnn_dailymail", "--seed", "1", "--set", "seed=2"], "--seed and --set seed= both given"),
    (["--task", "cnn_dailymail", "--set", "top_k=1", "--set", "top_k=2"], "--set top_k given twice"),
    (["--task", "cnn_dailymail", "--set", "top_k=NaN"], "--set top_k must be an integer"),
    (["--task", "mc"], "needs --data PATH"),
    (["--task", ","], "no task name"),
    ([], "give --task TASK"),
])
def test_refused_before_the_model_loads_cli(capsys, args, message):
    # The model does not exist: these are caught first (device and dtype included).
    if "cuda" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    assert main(["eval", "--model", "/nonexistent-model", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_data_is_checked_before_the_model_loads(tmp_path, capsys):
    data = write_lines(tmp_path / "mc.jsonl", MC)
    assert main(["eval", "--model", "/nonexistent-model", "--task", "mc", "--data", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such data file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q"}\n')
    assert main(["eval", "--model", "/nonexistent-model", "--task", "mc", "--data", str(bad)]) == 2
    assert "missing field(s) choices, gold" in capsys.readouterr().err
    assert main(["eval", "--model", "/nonexistent-model", "--task", "mc", "--data", str(data)]) == 2
    assert "/nonexistent-model" in capsys.readouterr().err  # the data was fine: now the model


def test_long_question_next_to_long_answers_at_every_batch_size(tmp_path, capsys):
    # The crash: one long question with short answers next to a short question with long
    # answers packed past n_ctx (KVCache max_len error at the default batch size 16).
    import torch

    from gpt2 import GPT2, GPT2Config

    torch.manual_seed(0)
    ckpt = tmp_path / "ckpt"
    GPT2(GPT2Config(n_layer=1, n_embd=16, n_head=2, n_ctx=64)).save_pretrained(ckpt)
    rows = [{"query": "one two three four five " * 10, "choices": ["yes", "no"], "gold": 0},
            {"query": "Why?", "choices": ["because of " * 15, "never " * 20], "gold": 1}]
    data = write_lines(tmp_path / "mc.jsonl", rows)
    values = {}
    for bs in ("1", "2", "16"):
        out = tmp_path / f"r{bs}.json"
        assert main(["eval", "--model", str(ckpt), "--task", "mc", "--data", str(data),
                     "--batch-size", bs, "--json", str(out)]) == 0, capsys.readouterr().err
        values[bs] = [m["value"] for m in json.loads(out.read_text())["results"][0]["metrics"]]
    assert values["1"] == values["2"] == values["16"]


def test_set_reads_values_as_train_overrides_do():
    """One KEY=VALUE parser (gpt2.settings) for `gpt2 train`'s overrides, `gpt2 prepare --set`
    and `gpt2 eval --set`: TOML values, bare words as text."""
    from gpt2.cli import eval as eval_cli
    from gpt2.cli.main import build_parser
    from gpt2.settings import parse_override

    items = ["max_new_tokens=50", "join=true", "top_k=1_000", "name=a b", "quoted='7'"]
    args = build_parser().parse_args(["eval", "--task", "x", "--shots", "2", *[a for i in items for a in ("--set", i)]])
    assert eval_cli._settings(args) == dict(map(parse_override, items)) | {"shots": 2}
    assert eval_cli._settings(args)["top_k"] == 1000 and eval_cli._settings(args)["quoted"] == "7"
