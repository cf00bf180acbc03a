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
    (["--task", "nq_open", "--set", "shots=x"], "--shots must be an integer >= 0, got 'x'"),
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
    assert e.value.code == 2 and "positive integer" in capsys.readouterr().err
