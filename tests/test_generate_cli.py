"""`gpt2 generate`: output streams, JSON lines, stdin prompts, the interactive loop, and every
error case (one line on stderr, exit code 2, no traceback)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gpt2 import GPT2
from gpt2.cli.main import main
from gpt2.sampling import generate
from gpt2.tokenizer import Tokenizer


# Tiny models decode faster on one thread (and are not slowed by a busy machine).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, hf_model_factory) -> Path:
    directory = tmp_path_factory.mktemp("generate-cli-model")
    hf_model_factory(seed=5, n_positions=64).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def api(model_dir):
    return GPT2.from_pretrained(model_dir), Tokenizer.from_pretrained("gpt2")


def run(capsys, monkeypatch, args: list[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    code = main(["generate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_greedy_text_equals_the_api(capsys, monkeypatch, model_dir, api):
    code, out, err = run(capsys, monkeypatch, ["Hello world", "--model", str(model_dir),
                                               "--temperature", "0", "--max-new-tokens", "15"])
    expected = generate(*api, "Hello world", max_new_tokens=15, temperature=0)[0]
    assert code == 0 and out == expected.text + "\n"
    assert err == ""  # nothing but the text on stdout, nothing to say on stderr


def test_json_lines(capsys, monkeypatch, model_dir, api):
    args = ["Once upon a time", "--model", str(model_dir), "--json", "--n-samples", "3",
            "--seed", "11", "--max-new-tokens", "12", "--top-p", "0.9", "--repetition-penalty", "1.2"]
    code, out, _ = run(capsys, monkeypatch, args)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == 3
    samples = generate(*api, "Once upon a time", max_new_tokens=12, top_k=40, top_p=0.9,
                       repetition_penalty=1.2, seed=11, n_samples=3)
    tok = api[1]
    for line, s in zip(lines, samples):
        assert set(line) == {"prompt_tokens", "tokens", "text"}
        assert line["prompt_tokens"] == tok.encode("Once upon a time")
        assert line["tokens"] == s.tokens and line["text"] == s.text == tok.decode(s.tokens)
    # The same seed prints the same samples again; in text mode too, sample by sample.
    assert run(capsys, monkeypatch, args)[1] == out
    code, text, err = run(capsys, monkeypatch, [a for a in args if a != "--json"])
    assert text == "".join(s.text + "\n" for s in samples)
    assert err.count("SAMPLE") == 3


def test_stop_strings_and_unconditional(capsys, monkeypatch, model_dir, api):
    full = generate(*api, None, max_new_tokens=20, temperature=0, stop_token_ids=())[0].text
    stop = full[5:8]
    code, out, _ = run(capsys, monkeypatch, ["--unconditional", "--model", str(model_dir), "--temperature",
                                             "0", "--max-new-tokens", "20", "--ignore-eot", "--stop", stop,
                                             "--stop", "zzzzzz", "--json"])
    line = json.loads(out)
    assert code == 0 and line["prompt_tokens"] == [50256]
    assert line["text"] == full[: full.index(stop)]


def test_prompt_from_stdin(capsys, monkeypatch, model_dir, api):
    code, out, _ = run(capsys, monkeypatch, ["-", "--model", str(model_dir), "--temperature", "0",
                                             "--max-new-tokens", "8", "--json"], stdin="Olá, mundo\n".encode())
    assert code == 0 and json.loads(out)["prompt_tokens"] == api[1].encode("Olá, mundo\n")


def test_interactive_loop_until_eof(capsys, monkeypatch, model_dir, api):
    code, out, err = run(capsys, monkeypatch, ["--interactive", "--model", str(model_dir), "--temperature", "0",
                                               "--max-new-tokens", "6"], stdin=b"first\n\nsecond\n")
    first, second = (generate(*api, p, max_new_tokens=6, temperature=0)[0].text for p in ("first", "second"))
    assert code == 0 and out == f"{first}\n{second}\n"
    assert err.count("Model prompt >>>") == 4 and "Prompt should not be empty!" in err


@pytest.mark.parametrize("args, stdin, message", [
    (["x", "--temperature", "-1"], None, "temperature must be >= 0"),
    (["x", "--top-p", "0"], None, "top_p must be in (0, 1]"),
    (["x", "--top-p", "1.5"], None, "top_p must be in (0, 1]"),
    (["x", "--top-k", "-1"], None, "top_k must be an integer >= 0"),
    (["x", "--max-new-tokens", "0"], None, "max_new_tokens must be an integer >= 1"),
    (["x", "--n-samples", "0"], None, "n_samples"),
    ([""], None, "empty prompt"),
    ([], None, "empty prompt"),
    (["-"], b"", "empty prompt"),
    (["-"], b"caf\xe9\n", "stdin is not UTF-8"),
    (["x", "--unconditional"], None, "--unconditional takes no PROMPT"),
    (["x", "--device", "nonsense"], None, "not a device"),
    (["x", "--dtype", "int3"], None, "unknown dtype"),
])
def test_errors_are_one_line_and_exit_2(capsys, monkeypatch, model_dir, args, stdin, message):
    code, out, err = run(capsys, monkeypatch, [*args, "--model", str(model_dir)], stdin=stdin)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_unknown_model_and_missing_model(capsys, monkeypatch, tmp_path):
    code, _, err = run(capsys, monkeypatch, ["x", "--model", str(tmp_path / "nope")])
    assert code == 2 and err.count("\n") == 1 and "nope" in err
    from gpt2.cli.generate import DEMO_MODEL

    if not (DEMO_MODEL / "config.json").is_file():
        code, _, err = run(capsys, monkeypatch, ["x"])
        assert code == 2 and err.count("\n") == 1 and "--model is required" in err


def test_real_command_streams_and_warns_on_stderr(model_dir):
    """The installed entry point in a process of its own: text on stdout as it comes, the
    context warning on stderr as one line, exit code 0; and a bad option is one line, code 2."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "gpt2.cli.main", "generate", "A long story:", "--model", str(model_dir),
           "--max-new-tokens", "80", "--seed", "0", "--ignore-eot"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = proc.stdout.read(1)  # arrives before the whole sample is done
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and first and (first + rest).decode().endswith("\n")
    assert err.decode().splitlines() == [
        "gpt2 generate: warning: the sequence outgrew the model's context of 64 tokens: "
        "sliding the window (keeping the last 48)"]
    bad = subprocess.run(cmd + ["--top-k", "-5"], capture_output=True, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stdout == b"" and len(bad.stderr.splitlines()) == 1
    assert b"Traceback" not in bad.stderr


def test_interactive_ctrl_c_exits_cleanly(model_dir):
    import signal

    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gpt2.cli.main", "generate", "--interactive",
                             "--model", str(model_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    prompt = b""
    while not prompt.endswith(b">>> "):  # wait for the first prompt: the model is loaded
        byte = proc.stderr.read(1)
        assert byte, "the process ended before prompting"
        prompt += byte
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out == b"" and b"Traceback" not in err
