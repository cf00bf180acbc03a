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

from gpt2 import GPT2, UsageError
from gpt2.cli.generate import separator
from gpt2.cli.main import main
from gpt2.generation import generate
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
    # Several samples are separated on stdout by OpenAI's separator line, nothing on stderr.
    assert text == "".join(f"{separator(i + 1)}\n{s.text}\n" for i, s in enumerate(samples))
    assert separator(2) == "=" * 40 + " SAMPLE 2 " + "=" * 40
    assert err == ""


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
    ([""], None, "empty prompt"),
    ([], None, "empty prompt"),
    (["-"], b"", "empty prompt"),
    (["-"], b"caf\xe9\n", "stdin is not UTF-8"),
    (["x", "--unconditional"], None, "--unconditional takes no PROMPT"),
    (["x", "--stop", ""], None, "--stop '': empty text"),
    (["x", "--device", "nonsense"], None, "'nonsense' is not a device name; devices here: cpu"),
])
def test_errors_are_one_line_and_exit_2(capsys, monkeypatch, model_dir, args, stdin, message):
    code, out, err = run(capsys, monkeypatch, [*args, "--model", str(model_dir)], stdin=stdin)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


@pytest.mark.parametrize("option, value, message", [
    ("--temperature", "-1", "must be at least 0"),
    ("--temperature", "inf", "not a finite number"),
    ("--top-p", "0", "must be in (0, 1]"),
    ("--top-p", "nan", "not a finite number"),
    ("--top-k", "-1", "out of range"),
    ("--max-new-tokens", "0", "out of range"),
    ("--max-new-tokens", "4e9", "not an integer"),
    ("--max-new-tokens", "100000000000000000000", "out of range"),
    ("--repetition-penalty", "0", "out of range"),
    ("--n-samples", "1001", "out of range"),
    ("--seed", "-1", "out of range"),
    ("--seed", str(2**63), "out of range"),
    ("--dtype", "int3", "invalid choice"),
])
def test_numbers_have_documented_ranges(capsys, option, value, message):
    """argparse refuses them (one line, exit 2) before anything loads; the range is in --help."""
    with pytest.raises(SystemExit) as e:
        main(["generate", "x", option, value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and option in err and message in err


def test_cli_ranges_agree_with_sampling_options():
    """One rule: every value the CLI's types accept SamplingOptions accepts, and the bounds
    just outside are refused by both."""
    import argparse

    from gpt2.cli.main import build_parser
    from gpt2.generation import SamplingOptions

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    types = {a.dest: a.type for a in sub.choices["generate"]._actions if a.type is not None}
    edges = {"max_new_tokens": (["1", "1000000"], ["0", "1000001"]),
             "temperature": (["0", "1e300"], ["-1e-9", "inf"]),
             "top_k": (["0", "1000000"], ["-1", "1000001"]),
             "top_p": (["1e-9", "1"], ["0", "1.0000001"]),
             "repetition_penalty": (["1e-300", "1e300"], ["0", "-1"]),
             "n_samples": (["1", "1000"], ["0", "1001"]),
             "seed": (["0", str(2**63 - 1)], ["-1", str(2**63)])}
    for dest, (good, bad) in edges.items():
        for text in good:
            SamplingOptions(**{dest: types[dest](text)})
        for text in bad:
            with pytest.raises(argparse.ArgumentTypeError):
                types[dest](text)
            value = float(text) if "." in text or "e" in text or dest in ("temperature", "top_p") else int(text)
            with pytest.raises(UsageError, match=dest):
                SamplingOptions(**{dest: value})


def test_unknown_model(capsys, monkeypatch, tmp_path):
    code, _, err = run(capsys, monkeypatch, ["x", "--model", str(tmp_path / "nope")])
    assert code == 2 and err.count("\n") == 1 and "nope" in err


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
    proc.send_signal(signal.SIGINT)  # at the prompt: the session ends, as Ctrl-C does elsewhere
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and out == b"" and b"Traceback" not in err
    assert err.decode().splitlines()[-1] == "gpt2 generate: interrupted"


def test_interactive_ctrl_c_during_an_answer_returns_to_the_prompt(model_dir):
    """Ctrl-C while an answer is written stops that answer only; the next prompt is served."""
    import signal

    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gpt2.cli.main", "generate", "--interactive",
                             "--model", str(model_dir), "--max-new-tokens", "1000000", "--ignore-eot"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    import threading

    watchdog = threading.Timer(120, proc.kill)  # a hang fails the test instead of the run
    watchdog.start()

    def wait_for(text: bytes) -> None:
        seen = b""
        while not seen.endswith(text):
            byte = proc.stderr.read(1)
            assert byte, f"the process ended before {text!r}: {seen!r}"
            seen += byte

    wait_for(b">>> ")
    proc.stdin.write(b"Once upon a time\n")
    proc.stdin.flush()
    wait_for(b"sliding the window")  # the context warning: the answer is being written
    proc.send_signal(signal.SIGINT)
    wait_for(b"(stopped)\n")
    wait_for(b">>> ")  # back at the prompt
    out, err = proc.communicate(b"", timeout=60)  # EOF at the prompt ends with 0
    watchdog.cancel()
    assert proc.returncode == 0 and out.endswith(b"\n") and len(out) > 10


def test_interactive_on_a_terminal_has_line_editing(model_dir):
    """On a terminal the prompt is read with readline: a left arrow moves the cursor, so
    "hX", left, "i" is the prompt "hiX" (without readline it would hold the escape bytes)."""
    import pty
    import select
    import threading

    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TERM": "xterm"}
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gpt2.cli.main", "generate", "--interactive", "--json",
                             "--model", str(model_dir), "--temperature", "0", "--max-new-tokens", "2"],
                            stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    seen = b""

    def read_until(text: bytes, times: int = 1) -> None:
        nonlocal seen
        while seen.count(text) < times:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # the process ended and closed the terminal
                    break
            assert proc.poll() is None or seen.count(text) >= times, f"ended before {text!r}: {seen!r}"

    try:
        read_until(b">>> ")  # the prompt is on the terminal
        os.write(master, b"hX\x1b[Di\r")
        read_until(b'"text"')
        line = next(x for x in seen.decode(errors="replace").splitlines() if x.startswith("{"))
        assert json.loads(line)["prompt_tokens"] == Tokenizer.from_pretrained("gpt2").encode("hiX")
        read_until(b">>> ", times=2)  # the next prompt
        os.write(master, b"\x04")  # Ctrl-D at the prompt: the session ends with 0
        assert proc.wait(timeout=60) == 0
    finally:
        watchdog.cancel()
        proc.kill()
        os.close(master)
