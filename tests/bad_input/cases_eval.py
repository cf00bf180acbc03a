"""Bad inputs to `gpt2 eval`: every option's classes of mistakes, data files that are missing,
of the wrong kind or malformed, an unreachable hub, unusable stdout, and Ctrl-C mid-run.

Rows run on {ckpt} (GPT-2's vocabulary, n_ctx 64) with small data files their `setup` writes."""

from __future__ import annotations

import json
import random
from pathlib import Path

from .harness import EXIT_INTERRUPTED, Case, write_file

MC = [{"query": "The sky is", "choices": ["blue", "green"], "gold": 0},
      {"query": "One, two,", "choices": ["three", "four five six"], "gold": 0}]


def _lines(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def mc(tmp: Path, assets: dict) -> None:
    _lines(tmp / "mc.jsonl", MC)


def writes(name: str, data: bytes):
    def setup(tmp: Path, assets: dict) -> None:
        (tmp / name).write_bytes(data)
    return setup


def big_mc(tmp: Path, assets: dict) -> None:
    """Thousands of questions: minutes of scoring, so a Ctrl-C lands mid-run."""
    rng = random.Random(0)
    words = "the of and to in a is was lighthouse keeper harbour storm village river mill".split()

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    _lines(tmp / "big.jsonl", [{"query": text(30), "choices": [text(12) for _ in range(4)], "gold": 0}
                               for _ in range(20000)])


def cbt_too_long(tmp: Path, assets: dict) -> None:
    _lines(tmp / "cbt.jsonl", [{"sentences": ["One ."], "question": "XXXXX" + " and so on" * 30 + " .",
                                "answer": "a", "options": ["a", "b"]}])


def nq(tmp: Path, assets: dict) -> None:
    _lines(tmp / "nq.jsonl", [{"question": "q", "answer": "a"}] * 2)


def file_in_tmp(tmp: Path, assets: dict) -> None:
    (tmp / "file").write_text("not a directory\n")


def empty_dir(tmp: Path, assets: dict) -> None:
    (tmp / "empty").mkdir()


def both(*setups):
    def setup(tmp: Path, assets: dict) -> None:
        for s in setups:
            s(tmp, assets)
    return setup


M = ("eval", "--model", "{ckpt}")
MC_ARGS = (*M, "--task", "mc", "--data", "{tmp}/mc.jsonl")
OFFLINE_HOME = {"HF_HOME": "{tmp}/hf", "HF_DATASETS_CACHE": "{tmp}/hf/datasets"}

CASES = [
    # --task
    Case("eval-no-task", M, match=r"give --task TASK"),
    Case("eval-task-unknown", (*M, "--task", "banana"), match=r"unknown task 'banana'; choose one of"),
    Case("eval-task-empty-list", (*M, "--task", ","), match=r"--task ',': no task name"),
    Case("eval-task-needs-data", (*M, "--task", "enwik8"), match=r"task enwik8 needs --data PATH"),
    # --model
    Case("eval-adapter-missing", (*M, "--adapter", "{tmp}/nope", "--task", "mc", "--data", "{tmp}/mc.jsonl"),
         setup=mc, match=r"nope"),
    Case("eval-adapter-not-an-adapter", (*M, "--adapter", "{ckpt}", "--task", "mc", "--data", "{tmp}/mc.jsonl"),
         setup=mc, match=r"adapter_config\.json"),
    Case("eval-finetuned-task-on-a-base-model", (*M, "--task", "classification", "--data", "{tasks}"),
         match=r"has no classification head"),
    Case("eval-finetuned-task-bad-file", ("eval", "--model", "{ftmodel}", "--task", "classification", "--data",
                                          "{tmp}/x.jsonl"), setup=write_file("x.jsonl", '{"text": 1}\n'),
         match=r"x\.jsonl, line 1: (missing field 'label'|field 'text' must be a string)"),
    Case("eval-finetuned-label-unseen", ("eval", "--model", "{ftmodel}", "--task", "classification", "--data",
                                         "{tmp}/x.jsonl"), setup=write_file("x.jsonl", '{"text": "t", "label": "zz"}\n'),
         match=r"label 'zz' never appears in the training data"),
    Case("eval-model-missing", ("eval", "--model", "{tmp}/nope", "--task", "mc", "--data", "{tmp}/mc.jsonl"),
         setup=mc, match=r"nope: no such checkpoint directory"),
    Case("eval-model-is-a-file", ("eval", "--model", "{text}", "--task", "mc", "--data", "{tmp}/mc.jsonl"),
         setup=mc, match=r"text\.txt: not a directory"),
    Case("eval-model-empty-dir", ("eval", "--model", "{tmp}/empty", "--task", "mc", "--data", "{tmp}/mc.jsonl"),
         setup=both(mc, empty_dir), match=r"config\.json: no such file"),
    Case("eval-model-hub-offline", ("eval", "--model", "gpt2", "--task", "mc", "--data", "{tmp}/mc.jsonl"),
         setup=mc, env={"HF_HUB_OFFLINE": "1", **OFFLINE_HOME}, match=r"cannot download 'gpt2'"),
    # --data
    Case("eval-data-missing", (*M, "--task", "mc", "--data", "{tmp}/nope.jsonl"), match=r"nope\.jsonl: no such data file"),
    Case("eval-data-is-a-dir", (*M, "--task", "mc", "--data", "{tmp}"), match=r"a directory; pass the data file itself"),
    Case("eval-data-under-a-file", (*M, "--task", "mc", "--data", "{tmp}/file/mc.jsonl"), setup=file_in_tmp,
         match=r"file/mc\.jsonl: no such data file"),
    Case("eval-data-binary", (*M, "--task", "mc", "--data", "{tmp}/bin.jsonl"),
         setup=writes("bin.jsonl", b"\xff\xfe\x00garbage\n"), match=r"bin\.jsonl: not UTF-8 text"),
    Case("eval-data-not-json", (*M, "--task", "mc", "--data", "{tmp}/bad.jsonl"),
         setup=writes("bad.jsonl", b'{"query": "q",\n'), match=r"bad\.jsonl:1: not valid JSON"),
    Case("eval-data-missing-field", (*M, "--task", "mc", "--data", "{tmp}/bad.jsonl"),
         setup=writes("bad.jsonl", b'{"query": "q"}\n'), match=r"bad\.jsonl:1: missing field\(s\) choices, gold"),
    Case("eval-data-empty", (*M, "--task", "mc", "--data", "{tmp}/empty.jsonl"),
         setup=writes("empty.jsonl", b""), match=r"empty\.jsonl: no examples"),
    Case("eval-data-with-two-tasks", (*M, "--task", "mc,hellaswag", "--data", "{tmp}/mc.jsonl"), setup=mc,
         match=r"--data goes with one --task"),
    Case("eval-data-longer-than-n-ctx", (*M, "--task", "cbt_cn", "--data", "{tmp}/cbt.jsonl"), setup=cbt_too_long,
         match=r"more than the model's context n_ctx=64"),
    # no --data: the hub, offline or unreachable, fails at once
    Case("eval-hub-offline", (*M, "--task", "wikitext2"), env={"HF_HUB_OFFLINE": "1", **OFFLINE_HOME},
         match=r"task wikitext2: .*HF_HUB_OFFLINE is set; pass --data PATH", timeout=30),
    Case("eval-hub-datasets-offline", (*M, "--task", "lambada_openai"),
         env={"HF_HUB_OFFLINE": None, "HF_DATASETS_OFFLINE": "1", **OFFLINE_HOME},
         match=r"task lambada_openai: .*HF_DATASETS_OFFLINE is set; pass --data PATH", timeout=30),
    Case("eval-hub-unreachable", (*M, "--task", "wikitext2"),
         env={"HF_HUB_OFFLINE": None, "HF_DATASETS_OFFLINE": None, "HF_ENDPOINT": "http://127.0.0.1:9",
              "HTTPS_PROXY": None, "https_proxy": None, "ALL_PROXY": None, "all_proxy": None, **OFFLINE_HOME},
         match=r"task wikitext2: no --data given and the Hugging Face hub .* cannot be reached; pass --data",
         timeout=30),
    # --limit
    Case("eval-limit-zero", (*MC_ARGS, "--limit", "0"), setup=mc, match=r"--limit: 0 is out of range"),
    Case("eval-limit-negative", (*MC_ARGS, "--limit", "-3"), setup=mc, match=r"--limit: -3 is out of range"),
    Case("eval-limit-nan", (*MC_ARGS, "--limit", "nan"), setup=mc, match=r"--limit: 'nan' is not an integer"),
    Case("eval-limit-huge", (*MC_ARGS, "--limit", "1" + "0" * 30), setup=mc, match=r"--limit: 10+ is out of range"),
    # --batch-size
    Case("eval-batch-size-zero", (*MC_ARGS, "--batch-size", "0"), setup=mc, match=r"--batch-size.*: 0 is out of range"),
    Case("eval-batch-size-inf", (*MC_ARGS, "--batch-size", "inf"), setup=mc, match=r"--batch-size.*'inf' is not an integer"),
    Case("eval-batch-size-fraction", (*MC_ARGS, "--batch-size", "2.5"), setup=mc,
         match=r"--batch-size.*'2\.5' is not an integer"),
    Case("eval-batch-size-huge", (*MC_ARGS, "--batch-size", "99999999999999999999"), setup=mc,
         match=r"--batch-size.*out of range"),
    # --stride
    Case("eval-stride-zero", (*M, "--task", "ptb", "--data", "{text}", "--stride", "0"), match=r"--stride: 0 is out of range"),
    Case("eval-stride-nan", (*M, "--task", "ptb", "--data", "{text}", "--stride", "NaN"),
         match=r"--stride: 'NaN' is not an integer"),
    Case("eval-stride-over-n-ctx", (*M, "--task", "ptb", "--data", "{text}", "--stride", "65"),
         match=r"--stride must be an integer in \[1, 64\]"),
    Case("eval-stride-wrong-task", (*MC_ARGS, "--stride", "8"), setup=mc, match=r"task mc has no setting stride"),
    # --shots
    Case("eval-shots-negative", (*M, "--task", "nq_open", "--data", "{tmp}/nq.jsonl", "--shots", "-1"), setup=nq,
         match=r"--shots: -1 is out of range"),
    Case("eval-shots-huge", (*M, "--task", "nq_open", "--data", "{tmp}/nq.jsonl", "--shots", "1e9"), setup=nq,
         match=r"--shots: '1e9' is not an integer"),
    Case("eval-shots-all-examples", (*M, "--task", "nq_open", "--data", "{tmp}/nq.jsonl", "--shots", "2"), setup=nq,
         match=r"shots=2 leaves no examples to score"),
    # --seed
    Case("eval-seed-negative", (*M, "--task", "cnn_dailymail", "--data", "{tmp}/x.jsonl", "--seed", "-1"),
         match=r"--seed: -1 is out of range"),
    Case("eval-seed-huge", (*M, "--task", "cnn_dailymail", "--data", "{tmp}/x.jsonl", "--seed", str(2**64)),
         match=r"--seed: \d+ is out of range"),
    Case("eval-seed-wrong-task", (*MC_ARGS, "--seed", "1"), setup=mc, match=r"task mc has no setting seed"),
    # --set
    Case("eval-set-no-equals", (*MC_ARGS, "--set", "oops"), setup=mc, match=r"--set 'oops': expected KEY=VALUE"),
    Case("eval-set-unknown-key", (*MC_ARGS, "--set", "banana=1"), setup=mc, match=r"task mc has no setting banana"),
    Case("eval-set-no-key", (*MC_ARGS, "--set", "=1"), setup=mc, match=r"--set '=1': expected KEY=VALUE"),
    Case("eval-set-nan", (*M, "--task", "cnn_dailymail", "--set", "top_k=nan"),
         match=r"--set top_k must be an integer in \[0, 1000000\].*got nan"),
    Case("eval-set-json-nan", (*M, "--task", "cnn_dailymail", "--set", "top_k=NaN"),  # not TOML: the text 'NaN'
         match=r"--set top_k must be an integer in \[0, 1000000\].*got 'NaN'"),
    Case("eval-set-float-for-int", (*M, "--task", "cnn_dailymail", "--set", "top_k=2.5"),
         match=r"--set top_k must be an integer .*got 2\.5"),
    Case("eval-set-quoted-number", (*M, "--task", "cnn_dailymail", "--set", "top_k='5'"),
         match=r"--set top_k must be an integer .*got '5'"),
    Case("eval-set-negative", (*M, "--task", "cnn_dailymail", "--set", "top_k=-1"),
         match=r"--set top_k must be an integer in \[0, 1000000\].*got -1"),
    Case("eval-set-huge", (*M, "--task", "nq_open", "--set", "max_new_tokens=1" + "0" * 25),
         match=r"--set max_new_tokens must be an integer"),
    Case("eval-set-over-n-ctx", (*M, "--task", "nq_open", "--data", "{tmp}/nq.jsonl", "--shots", "1",
                                  "--set", "max_new_tokens=64"), setup=nq,
         match=r"--set max_new_tokens must be an integer in \[1, 63\]"),
    Case("eval-set-not-a-bool", (*M, "--task", "ptb", "--data", "{text}", "--set", "join=maybe"),
         match=r"--set join must be true or false, got 'maybe'"),
    Case("eval-set-twice", (*M, "--task", "cnn_dailymail", "--set", "top_k=1", "--set", "top_k=2"),
         match=r"--set top_k given twice"),
    Case("eval-set-and-flag", (*M, "--task", "cnn_dailymail", "--seed", "1", "--set", "seed=2"),
         match=r"--seed and --set seed= both given"),
    # --device, --dtype
    Case("eval-device-cuda", (*MC_ARGS, "--device", "cuda"), setup=mc, match=r"--device 'cuda': CUDA is not available"),
    Case("eval-device-cuda-index", (*MC_ARGS, "--device", "cuda:7"), setup=mc, match=r"--device 'cuda:7'"),
    Case("eval-device-banana", (*MC_ARGS, "--device", "banana"), setup=mc,
         match=r"--device 'banana' is not a device name; devices here: cpu"),
    Case("eval-dtype-banana", (*MC_ARGS, "--dtype", "banana"), setup=mc,
         match=r"--dtype 'banana': choose float32, bfloat16 or float16"),
    # --quantize
    Case("eval-quantize-int3", (*MC_ARGS, "--quantize", "int3"), setup=mc,
         match=r"argument --quantize: invalid choice: 'int3'"),
    Case("eval-quantize-int4-narrow-model", (*MC_ARGS, "--quantize", "int4"), setup=mc,
         match=r"int4 with groups of 32 needs n_embd to be a multiple of 32"),
    # --json
    Case("eval-json-missing-dir", (*MC_ARGS, "--json", "{tmp}/no/r.json"), setup=mc, match=r"--json .*no such directory"),
    Case("eval-json-under-a-file", (*MC_ARGS, "--json", "{tmp}/file/r.json"), setup=both(mc, file_in_tmp),
         match=r"--json .*file is not a directory"),
    Case("eval-json-is-a-dir", (*MC_ARGS, "--json", "{tmp}"), setup=mc, match=r"--json .*a directory; give a file name"),
    Case("eval-json-unwritable", (*MC_ARGS, "--json", "/proc/gpt2-report.json"), setup=mc,
         match=r"--json /proc/gpt2-report\.json: cannot write in /proc"),
    # stdout
    Case("eval-list-stdout-closed", ("eval", "--list"), stdout="closed", match=r"stdout is closed"),
    Case("eval-list-stdout-full", ("eval", "--list"), stdout="full", match=r"cannot write to stdout"),
    Case("eval-stdout-closed", (*MC_ARGS, "--no-progress"), setup=mc, stdout="closed", match=r"stdout is closed"),
    Case("eval-stdout-full-no-report", (*MC_ARGS, "--json", "{tmp}/r.json"), setup=mc, stdout="full",
         match=r"cannot write to stdout"),
    # Ctrl-C after the model loads, while scoring: exit 130, one line, no --json report
    Case("eval-interrupt-scoring", (*M, "--task", "mc", "--data", "{tmp}/big.jsonl", "--json", "{tmp}/r.json",
                                    "--no-progress"),
         setup=big_mc, expect=EXIT_INTERRUPTED, interrupt=15.0, deadline=5.0),
    Case("eval-interrupt-early", (*M, "--task", "mc", "--data", "{tmp}/big.jsonl", "--json", "{tmp}/r.json",
                                  "--batch-size", "4"),
         setup=big_mc, expect=EXIT_INTERRUPTED, interrupt=5.0, deadline=5.0),
]
