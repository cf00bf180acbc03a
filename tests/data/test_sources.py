"""Readers: formats, compression, and bad input counted (or fatal with strict)."""

from __future__ import annotations

import gzip
import json
import lzma
import time

import pytest

from gpt2.data import DataError, ReadOptions
from gpt2.data import sources
from gpt2.data.sources import SourceStats, iter_documents


def read(paths, **options):
    stats = SourceStats()
    docs = list(iter_documents(paths, ReadOptions(**options), stats))
    return docs, stats


def test_text_file_is_one_document_unless_separated(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("one\n\n---\ntwo\n---\nthree", encoding="utf-8")
    docs, _ = read([p])
    assert [d.text for d in docs] == ["one\n\n---\ntwo\n---\nthree"]
    docs, _ = read([p], separator="\n---\n")
    assert [d.text for d in docs] == ["one\n", "two", "three"]


def test_separator_split_across_read_chunks(tmp_path, monkeypatch):
    import gpt2.data.sources as sources

    monkeypatch.setattr(sources, "_CHUNK", 3)  # every separator straddles a chunk boundary
    p = tmp_path / "a.txt"
    p.write_text("alpha<SEP>beta<SEP>gamma", encoding="utf-8")
    docs, _ = read([p], separator="<SEP>")
    assert [d.text for d in docs] == ["alpha", "beta", "gamma"]


def test_directories_recursive_sorted_and_compressed(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("z", encoding="utf-8")
    (tmp_path / "a.txt").write_text("a", encoding="utf-8")
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as f:
        f.write(json.dumps({"text": "c"}) + "\n")
    with lzma.open(tmp_path / "d.jsonl.xz", "wt") as f:
        f.write(json.dumps({"text": "d"}) + "\n")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")  # not picked up from a directory
    docs, stats = read([tmp_path])
    assert [d.text for d in docs] == ["a", "z", "c", "d"]
    assert stats.files == 4


def test_zstd_jsonl(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    p = tmp_path / "a.jsonl.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(b'{"text": "x"}\n{"content": "y"}\n'))
    docs, _ = read([p], text_field="content")
    assert [d.text for d in docs] == ["y"]


def test_bad_lines_are_skipped_and_counted(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"text": "ok"}\nnot json\n{"other": 1}\n[1, 2]\n{"text": 5}\n\n{"text": "ok2"}\n')
    docs, stats = read([p])
    assert [d.text for d in docs] == ["ok", "ok2"]
    assert sum(stats.skipped_lines.values()) == 4
    assert stats.skipped_lines["not valid JSON"] == 1
    with pytest.raises(DataError, match=r"a\.jsonl:2: not valid JSON"):
        read([p], strict=True)


def test_undecodable_bytes_replaced_and_counted(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"caf\xe9 ok \xff\xfe end")
    docs, stats = read([p])
    assert docs[0].text == "caf\ufffd ok \ufffd\ufffd end"
    assert stats.replaced_bytes == 3 and stats.files_with_replacements == 1


def test_empty_and_unreadable_files(tmp_path):
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "broken.jsonl.gz").write_bytes(b"not gzip at all")
    docs, stats = read([tmp_path / "empty.txt", tmp_path / "broken.jsonl.gz"])
    assert docs == [] and stats.empty_files == 1 and stats.unreadable == 1
    with pytest.raises(DataError, match="broken.jsonl.gz: cannot be read"):
        read([tmp_path / "broken.jsonl.gz"], strict=True)


def test_missing_path_names_it(tmp_path):
    with pytest.raises(DataError, match="nope.txt: no such file"):
        read([tmp_path / "nope.txt"])


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["a", None, "b"], "id": [1, 2, 3]}), tmp_path / "t.parquet")
    docs, stats = read([tmp_path / "t.parquet"])
    assert [d.text for d in docs] == ["a", "b"] and sum(stats.skipped_lines.values()) == 1
    with pytest.raises(DataError, match='no "body" column'):
        read([tmp_path / "t.parquet"], text_field="body")


def test_lone_surrogates_replaced_and_counted(tmp_path):
    p = tmp_path / "a.jsonl"
    # JSON escapes: a lone high surrogate, a lone low one, and a valid pair (one emoji).
    p.write_text('{"text": "broken \\ud83d here"}\n{"text": "pair \\ud83d\\ude00 and \\udc00"}\n', encoding="utf-8")
    docs, stats = read([p])
    assert [d.text for d in docs] == ["broken \ufffd here", "pair \U0001F600 and \ufffd"]
    assert stats.replaced_surrogates == 2 and stats.files_with_replacements == 1
    assert any("2 lone surrogate(s) replaced" in e for e in stats.examples)
    for doc in docs:
        doc.text.encode("utf-8")  # what hashing and tokenization need


def _corrupt_zstd(zstandard, tmp_path):
    data = b"".join(json.dumps({"text": f"line {i} " * 20}).encode() + b"\n" for i in range(2000))
    blob = bytearray(zstandard.ZstdCompressor().compress(data))
    blob[len(blob) // 2:len(blob) // 2 + 50] = b"\xff" * 50
    (tmp_path / "bad.jsonl.zst").write_bytes(bytes(blob))
    (tmp_path / "garbage.jsonl.zst").write_bytes(b"this is not zstd at all")


def test_corrupt_compressed_files_are_unreadable_not_a_crash(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    _corrupt_zstd(zstandard, tmp_path)
    # A valid gzip header before a deflate stream that zlib rejects (zlib.error, not an OSError).
    (tmp_path / "bad.jsonl.gz").write_bytes(gzip.compress(b'{"text": "x"}\n')[:10] + b"\xff" * 64)
    files = [tmp_path / "bad.jsonl.zst", tmp_path / "garbage.jsonl.zst", tmp_path / "bad.jsonl.gz"]
    docs, stats = read(files)
    assert stats.unreadable == 3
    assert any("garbage.jsonl.zst: cannot be read (ZstdError" in e for e in stats.examples)
    assert any("bad.jsonl.gz: cannot be read" in e for e in stats.examples)
    for f in files:
        with pytest.raises(DataError, match=f"{f.name}: cannot be read"):
            read([f], strict=True)


def _parquet_with(tmp_path, name: str, patch) -> object:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / name
    pq.write_table(pa.table({"text": ["first doc", "MARKERMARKER value", "third"]}), path,
                   compression="none", use_dictionary=False, write_statistics=False)
    raw = path.read_bytes()
    i = raw.index(b"MARKERMARKER")
    path.write_bytes(patch(raw, i))
    return path


def test_corrupt_parquet_pages_are_unreadable_not_a_crash(tmp_path):
    import struct

    # The value's 4-byte length prefix made huge: pyarrow raises ArrowInvalid (a ValueError) in
    # iter_batches, after the file opened fine.
    path = _parquet_with(tmp_path, "bad.parquet", lambda b, i: b[:i - 4] + struct.pack("<I", 0x7FFFFF00) + b[i:])
    docs, stats = read([path])
    assert stats.unreadable == 1 and "ArrowInvalid" in stats.examples[0]
    with pytest.raises(DataError, match=r"bad\.parquet: cannot be read \(ArrowInvalid"):
        read([path], strict=True)


def test_invalid_utf8_in_parquet_is_replaced_and_counted(tmp_path):
    path = _parquet_with(tmp_path, "latin.parquet", lambda b, i: b[:i] + b"MARKER\xe9\xffRKER" + b[i + 12:])
    docs, stats = read([path])
    assert [d.text for d in docs] == ["first doc", "MARKER\ufffd\ufffdRKER value", "third"]
    assert stats.replaced_bytes == 2 and stats.unreadable == 0


class _FailingStream:
    """A Hugging Face streaming dataset whose connection drops after two records."""

    def __iter__(self):
        yield {"text": "one \ud83d"}
        yield {"text": "two"}
        raise ConnectionError("connection reset by peer")


def test_hugging_face_stream_failing_midway(monkeypatch):
    import sys
    import types

    fake = types.ModuleType("datasets")
    fake.load_dataset = lambda name, config, split, streaming: _FailingStream()
    monkeypatch.setitem(sys.modules, "datasets", fake)
    monkeypatch.setattr(sources, "_hub_problem", lambda: None)  # as if the hub were reachable
    docs, stats = read(["hf:some/dataset"])
    assert [d.text for d in docs] == ["one \ufffd", "two"] and stats.replaced_surrogates == 1
    assert stats.unreadable == 1
    assert any("hf:some/dataset: cannot be read (the stream failed at record 2 (ConnectionError" in e
               for e in stats.examples)
    with pytest.raises(DataError, match="hf:some/dataset: cannot be read.*ConnectionError"):
        read(["hf:some/dataset"], strict=True)


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_DATASETS_OFFLINE": "true"},
                                 {"HF_ENDPOINT": "http://127.0.0.1:9"}])  # the discard port: refused
def test_hugging_face_unusable_fails_at_once(monkeypatch, env):
    pytest.importorskip("datasets")
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_ENDPOINT", "HTTPS_PROXY", "https_proxy",
                "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    sources._hub_problem.cache_clear()
    try:
        start = time.monotonic()
        with pytest.raises(DataError, match=r"hf:some/dataset: the Hugging Face hub cannot be used: "
                                            r"(HF_\w+ is set|cannot reach 127\.0\.0\.1:9)"):
            read(["hf:some/dataset"])
        assert time.monotonic() - start < 3  # not datasets' half a minute of retries
    finally:
        sources._hub_problem.cache_clear()
