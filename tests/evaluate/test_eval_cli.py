"""`gpt2 eval`: the table, the JSON report, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import math

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


def test_bad_limit_is_refused(ckpt, capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval", "--model", str(ckpt), "--task", "lambada_openai", "--limit", "0"])
    assert e.value.code == 2 and "positive integer" in capsys.readouterr().err
