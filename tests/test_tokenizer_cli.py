"""`gpt2 tokenizer encode|decode|train`: inputs read as `prepare` reads them, outputs never
silently replaced, strict id parsing, and a training run that Ctrl-C stops at once."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from gpt2 import Tokenizer, TokenizerError
from gpt2.cli.main import main
from gpt2.cli.tokenizer import parse_ids, run_in_child

TEXT = "the quick brown fox jumps over the lazy dog. " * 40


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def textfile(tmp_path) -> Path:
    path = tmp_path / "in" / "a.txt"
    path.parent.mkdir()
    path.write_text(TEXT)
    return path


def _train(*argv: str) -> int:
    return main(["tokenizer", "train", *argv])


# ------------------------------------------------------------------------------ train: outputs


def test_train_refuses_to_replace_a_tokenizer(textfile, tmp_path, capsys):
    # It used to overwrite the tokenizer a dataset had been built with.
    out = tmp_path / "tok"
    assert _train(str(textfile), "--vocab-size", "300", "--output", str(out)) == 0
    before = _snapshot(out)
    capsys.readouterr()
    assert _train(str(textfile), "--vocab-size", "280", "--output", str(out)) == 2
    err = capsys.readouterr().err
    assert "already holds a tokenizer (vocab.json); pass --overwrite" in err and err.count("\n") == 1
    assert _snapshot(out) == before


def test_overwrite_replaces_only_the_tokenizer_files(textfile, tmp_path):
    out = tmp_path / "tok"
    assert _train(str(textfile), "--vocab-size", "300", "--output", str(out)) == 0
    (out / "manifest.json").write_text("{}")
    (out / "notes").mkdir()
    (out / "notes" / "n.txt").write_text("mine")
    assert _train(str(textfile), "--vocab-size", "280", "--output", str(out), "--overwrite") == 0
    assert Tokenizer.from_pretrained(out).vocab_size == 280
    assert (out / "manifest.json").read_text() == "{}" and (out / "notes" / "n.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", "notes", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"])


@pytest.mark.parametrize("name", ["encoder.json", "tokenizer.json", "gpt2.tiktoken", "merges.txt"])
def test_any_tokenizer_file_counts_as_a_tokenizer(textfile, tmp_path, capsys, name):
    out = tmp_path / "tok"
    out.mkdir()
    (out / name).write_text("x")
    assert _train(str(textfile), "--vocab-size", "300", "--output", str(out)) == 2
    assert f"already holds a tokenizer ({name})" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == [name]


def test_an_empty_existing_directory_is_fine(textfile, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert _train(str(textfile), "--vocab-size", "300", "--output", str(out)) == 0
    assert (out / "vocab.json").is_file()


@pytest.mark.parametrize("output, message", [
    ("in/a.txt", "is a file; give a directory"),
    ("in/a.txt/sub", "a.txt is a file, so nothing can be written under it"),
])
def test_output_that_is_or_is_under_a_file(textfile, tmp_path, capsys, monkeypatch, output, message):
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    assert _train(str(textfile), "--vocab-size", "300", "--output", output) == 2
    assert message in capsys.readouterr().err
    assert _snapshot(tmp_path) == before


# ------------------------------------------------------------------------------ train: inputs


def test_a_directory_is_read_recursively(tmp_path, capsys):
    # It used to say "adir: no such file" for an existing directory.
    (tmp_path / "adir" / "deep").mkdir(parents=True)
    (tmp_path / "adir" / "deep" / "a.txt").write_text(TEXT)
    (tmp_path / "adir" / "b.md").write_text(TEXT)
    assert _train(str(tmp_path / "adir"), "--vocab-size", "300", "--output", str(tmp_path / "tok")) == 0
    assert "on 2 documents" in capsys.readouterr().out


def test_jsonl_is_trained_on_its_text_field(tmp_path):
    # It used to be trained on as raw JSON, keys and quotes included.
    lines = [json.dumps({"id": i, "body": f"the quick brown fox {i} jumps over"}) for i in range(60)]
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "tok"
    assert _train(str(tmp_path / "d.jsonl"), "--text-field", "body", "--vocab-size", "320",
                  "--output", str(out)) == 0
    merged = [t for t in Tokenizer.from_pretrained(out).mergeable_ranks if len(t) > 1]
    assert b" quick" in merged and not any(b'"' in t or b"body" in t for t in merged)


def test_missing_text_field_is_one_line_naming_the_option(tmp_path, capsys):
    (tmp_path / "d.jsonl").write_text('{"text": "hello"}\n')
    assert _train(str(tmp_path / "d.jsonl"), "--text-field", "body", "--vocab-size", "300",
                  "--output", str(tmp_path / "tok")) == 2
    err = capsys.readouterr().err
    assert 'no "body" field (choose another with --text-field)' in err and err.count("\n") == 1
    assert not (tmp_path / "tok").exists()


def test_skipped_lines_are_reported(tmp_path, capsys):
    (tmp_path / "d.jsonl").write_text(json.dumps({"text": TEXT}) + "\nnot json\n")
    assert _train(str(tmp_path / "d.jsonl"), "--vocab-size", "300", "--output", str(tmp_path / "tok")) == 0
    assert "warning: 1 lines skipped" in capsys.readouterr().err


# ------------------------------------------------------------------------------ decode / encode


@pytest.mark.parametrize("text, ids", [
    ("15496 995", [15496, 995]), ("15496,995", [15496, 995]), (" 15496 ,\n 995 ", [15496, 995]),
    ("[15496, 995]", [15496, 995]), ("[]", []), ("", []), ("-1", [-1]),
])
def test_parse_ids(text, ids):
    assert parse_ids(text) == ids


@pytest.mark.parametrize("text", ["[1, [2]]", "[1, 2.0]", "[true]", "[1,2] 3", '{"a": 1}', "1 2.0",
                                  "1e3", "0x10", "[1, 2", "1 two", '["1"]'])
def test_parse_ids_refuses_anything_else(text):
    # "[1, [2]]" used to decode as [1, 2].
    from gpt2.errors import UsageError

    with pytest.raises(UsageError, match="IDS: "):
        parse_ids(text)


def test_decode_of_an_out_of_range_id_names_the_vocabulary_size(capsys):
    assert main(["tokenizer", "decode", "15496", "50257"]) == 2
    err = capsys.readouterr().err
    assert "token id 50257 is not in the vocabulary of gpt2 (50257 ids: 0..50256)" in err


def _binary_stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_encode_refuses_non_utf8_stdin(monkeypatch, capsys):
    # It used to encode the bytes as U+FFFD.
    _binary_stdin(monkeypatch, b"caf\xe9")
    assert main(["tokenizer", "encode"]) == 2
    assert "TEXT: stdin is not UTF-8 text" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["encode", "decode"])
def test_closed_stdin(monkeypatch, capsys, action):
    monkeypatch.setattr("sys.stdin", None)
    assert main(["tokenizer", action]) == 2
    assert "stdin is closed" in capsys.readouterr().err


def test_encode_refuses_undecodable_argv(capsys):
    assert main(["tokenizer", "encode", "caf\udce9"]) == 2  # how Python keeps a non-UTF-8 byte
    assert "TEXT: not UTF-8 text" in capsys.readouterr().err


# ------------------------------------------------------------------------------ the child process


def test_child_errors_and_results_come_back():
    with pytest.raises(TokenizerError, match="nowhere"):
        run_in_child(Tokenizer.from_pretrained, "/nowhere/at/all")
    assert run_in_child(print, "a stray print goes to stderr") is None
    assert run_in_child(sorted, [3, 1, 2]) == [1, 2, 3]


def test_ctrl_c_ends_the_child_at_once(tmp_path):
    # HF's trainer never returns to Python while it works; the parent must not wait for it.
    main_thread = threading.main_thread().ident
    pid_file = tmp_path / "pid"
    sent = []

    def interrupt_once_started() -> None:
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        sent.append(time.monotonic())
        signal.pthread_kill(main_thread, signal.SIGINT)

    threading.Thread(target=interrupt_once_started, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_in_child(_write_pid_then_sleep, str(pid_file), 60)
    assert time.monotonic() - sent[0] < 1.0
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone (and reaped)


def _write_pid_then_sleep(path: str, seconds: float) -> None:
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)


def test_a_pipe_named_by_dev_fd_is_read(tmp_path):
    # bash's <(zcat corpus.gz) passes /dev/fd/N; the training process must get that descriptor.
    r, w = os.pipe()
    threading.Thread(target=lambda: (os.write(w, TEXT.encode()), os.close(w)), daemon=True).start()
    try:
        assert _train(f"/dev/fd/{r}", "--vocab-size", "300", "--output", str(tmp_path / "tok")) == 0
    finally:
        os.close(r)
    assert b" quick" in Tokenizer.from_pretrained(tmp_path / "tok").mergeable_ranks
