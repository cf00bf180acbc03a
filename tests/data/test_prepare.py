"""The pipeline end to end: planted cases dropped for the right reasons, byte-identical re-runs,
an interrupted run, refusing to clobber, and the CLI's one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gpt2.cli.main import main as cli
from gpt2.data import DataError, Dataset, DecontamConfig, PrepareConfig, prepare
from gpt2.data.shards import open_shard, read_header


def shard_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.bin"))}


def test_planted_cases_and_report(corpus, tmp_path):
    config = PrepareConfig(decontam=DecontamConfig((str(corpus["eval"]),)), val_fraction=0.2, shard_tokens=3000)
    m = prepare([corpus["path"]], tmp_path / "out", config=config, workers=0)
    assert m["filters"]["dropped"] == {"contaminated": 1, "exact_duplicate": 1, "near_duplicate": 1,
                                       "quality_alphabetic_words": 1}
    assert m["documents"]["read"] == 44 and m["documents"]["kept"] == 40
    assert m["filters"]["contaminated_documents"] == [f"{corpus['path']}:29"]  # the one dropped
    assert m["sources"]["skipped_lines"] == {'"text" is not a string': 1, "not valid JSON": 1,
                                            'no "text" field (choose another with --text-field)': 1}
    ds = Dataset(tmp_path / "out")
    ds.verify()
    assert len(ds.splits["train"]) > 1  # small shards: the token stream spans several
    from gpt2.tokenizer import Tokenizer

    tok = Tokenizer.from_pretrained("gpt2")
    texts = [tok.decode(d) for s in ("train", "val") for d in ds.iter_documents(s)]
    assert sorted(texts) == sorted(corpus["docs"])  # every kept document, exactly, once
    assert 0 < m["documents"]["val"] < 20
    for shard in ds.shard_paths("train"):
        dtype, count, _ = read_header(shard)
        assert dtype == np.uint16 and open_shard(shard).size == count


def test_report_mode_keeps_contaminated(corpus, tmp_path):
    config = PrepareConfig(decontam=DecontamConfig((str(corpus["eval"]),), action="report"))
    m = prepare([corpus["path"]], tmp_path / "out", config=config, workers=0)
    assert "contaminated" not in m["filters"]["dropped"] and m["filters"]["contaminated_kept"] == 1
    # Which one, by origin: row 25 of the fixture, after three bad lines, is line 29 of the file.
    assert m["filters"]["contaminated_documents"] == [f"{corpus['path']}:29"]


def test_switches_turn_filters_off(corpus, tmp_path):
    config = PrepareConfig(exact_dedup=False, near_dedup=None, clean=PrepareConfig().clean.__class__(quality=None))
    m = prepare([corpus["path"]], tmp_path / "out", config=config, workers=0)
    assert m["filters"]["dropped"] == {} and m["documents"]["kept"] == 44


def test_byte_identical_reruns_whatever_the_workers(corpus, tmp_path):
    config = PrepareConfig(val_fraction=0.2, shard_tokens=2500)
    prepare([corpus["path"]], tmp_path / "a", config=config, workers=0)
    prepare([corpus["path"]], tmp_path / "b", config=config, workers=2)
    prepare([corpus["path"]], tmp_path / "b", config=config, workers=2)  # same dataset: rebuilt in place
    a, b = shard_bytes(tmp_path / "a"), shard_bytes(tmp_path / "b")
    assert a == b and len(a) >= 3
    ma = json.loads((tmp_path / "a" / "manifest.json").read_text())
    mb = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert ma == mb


def test_refuses_a_different_dataset_unless_overwrite(corpus, tmp_path):
    out = tmp_path / "out"
    prepare([corpus["path"]], out, config=PrepareConfig(), workers=0)
    before = shard_bytes(out)
    with pytest.raises(DataError, match="different prepared dataset.*--overwrite"):
        prepare([corpus["path"]], out, config=PrepareConfig(val_fraction=0.5), workers=0)
    assert shard_bytes(out) == before  # nothing already written is lost
    prepare([corpus["path"]], out, config=PrepareConfig(val_fraction=0.5), workers=0, overwrite=True)
    assert json.loads((out / "manifest.json").read_text())["settings"]["val_fraction"] == 0.5
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty and not a prepared dataset"):
        prepare([corpus["path"]], other, workers=0)


def test_failure_midway_keeps_the_previous_dataset(corpus, tmp_path):
    out = tmp_path / "out"
    prepare([corpus["path"]], out, workers=0)
    before = shard_bytes(out)
    with pytest.raises(DataError, match=r"corpus\.jsonl:4: not valid JSON"):
        prepare([corpus["path"]], out, workers=0, overwrite=True,
                config=PrepareConfig(read=PrepareConfig().read.__class__(strict=True)))
    assert shard_bytes(out) == before and (out / "manifest.json").is_file()
    assert not (out / ".partial").exists()


_SCRIPT = """
import os, signal, sys
from gpt2.data import PrepareConfig, prepare, shards
from gpt2.data.clean import CleanConfig

if os.environ.get("DIE_AFTER_SHARDS"):  # killed right after its n-th complete shard: as hard as it gets
    close = shards.ShardWriter._close

    def close_then_die(self):
        close(self)
        if len(self.shards) == int(os.environ["DIE_AFTER_SHARDS"]):
            os.kill(os.getpid(), signal.SIGKILL)

    shards.ShardWriter._close = close_then_die
if __name__ == "__main__":
    prepare([sys.argv[1]], sys.argv[2], workers=0, config=PrepareConfig(
        clean=CleanConfig(quality=None), near_dedup=None, shard_tokens=5_000))
"""


def test_interrupted_run_leaves_nothing_corrupt_and_reruns_identically(tmp_path, prose):
    src = tmp_path / "big.jsonl"
    with open(src, "w") as f:
        for i in range(300):
            f.write(json.dumps({"text": prose(i, 150)}) + "\n")
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, str(script), str(src), str(out)],
                            env={**os.environ, "DIE_AFTER_SHARDS": "2"})
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "manifest.json").exists()  # the run is visibly incomplete
    assert not list(out.glob("*.bin"))  # and nothing half-made sits among real shards
    partial = sorted((out / ".partial").glob("train-*.bin"))
    assert len(partial) == 2  # killed with two complete shards written
    for shard in partial:
        assert read_header(shard)[1] == 5_000  # every shard that got its final name is whole
    subprocess.run([sys.executable, str(script), str(src), str(out)], check=True)
    subprocess.run([sys.executable, str(script), str(src), str(tmp_path / "ref")], check=True)
    assert shard_bytes(out) == shard_bytes(tmp_path / "ref") and not (out / ".partial").exists()
    assert [p.name for p in partial] == sorted(shard_bytes(out))[:2]  # the same first shards again
    Dataset(out).verify()


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli(["prepare", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing.txt: no such file" in err
    assert cli(["overlap", str(tmp_path), "--eval", str(tmp_path / "nope.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("gpt2 overlap: error: ") and "nope.txt: no such file" in err
    (tmp_path / "e.txt").write_text("one two three four five six seven eight nine", encoding="utf-8")
    assert cli(["overlap", str(tmp_path / "gone"), "--eval", str(tmp_path / "e.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "gone: no such file" in err
    with pytest.raises(SystemExit) as exit_:
        cli(["overlap", str(tmp_path), "--eval", str(tmp_path / "e.txt"), "--fpr", "2"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.count("\n") == 0 and "--fpr: 2 is out of range" in err


def test_cli_prepare_demo_corpus_and_overlap(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["prepare", "--corpus", "demo", "-o", str(out), "--no-near-dedup", "--workers", "0", "--val-fraction", "0.2"]
    assert cli(argv) == 0
    printed = capsys.readouterr().out
    assert "108 of 108 documents kept" in printed
    m = json.loads((out / "manifest.json").read_text())
    # No --tokenizer: the demo model's own 8,192-token vocabulary, as configs/demo.toml expects.
    from gpt2.checkpoint import resolve_checkpoint
    from gpt2.tokenizer import Tokenizer

    demo = Tokenizer.from_pretrained(resolve_checkpoint("demo"))
    assert m["tokenizer"]["fingerprint"] == demo.fingerprint and m["tokenizer"]["vocab_size"] == 8192
    assert m["arguments"]["corpus"] == "demo" and m["arguments"]["tokenizer"] == "demo"
    assert m["settings"]["val_fraction"] == 0.2  # chosen explicitly: the demo's 0.1 does not override it
    assert m["command"] == ["gpt2", *argv]  # what was passed to main(), not pytest's sys.argv
    hamlet = tmp_path / "hamlet.txt"
    hamlet.write_text("To be, or not to be, that is the question: Whether 'tis nobler in the mind to suffer")
    assert cli(["overlap", str(out), "--eval", str(hamlet), "--splits", "train,val", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["evals"][0]["percent"] == 100.0 and report["false_positive_bound"] <= 1e-4


FAST = PrepareConfig(near_dedup=None, val_fraction=0.0)


def test_lone_surrogates_through_prepare_and_overlap(tmp_path, prose, capsys):
    docs = [prose(i) for i in range(3)]
    docs[1] += " broken \ud83d end"  # json.dumps writes it as the escape "\ud83d"
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    m = prepare([path], tmp_path / "out", config=PrepareConfig(val_fraction=0.0), workers=0)  # near-dedup hashes
    assert m["documents"]["kept"] == 3 and m["sources"]["replaced_surrogates"] == 1
    from gpt2.tokenizer import Tokenizer

    tok = Tokenizer.from_pretrained("gpt2")
    texts = [tok.decode(d) for d in Dataset(tmp_path / "out").iter_documents("train")]
    assert docs[1].replace("\ud83d", "\ufffd") in texts
    assert cli(["overlap", str(path), "--eval", str(path), "--json"]) == 0  # reads the raw text itself
    assert json.loads(capsys.readouterr().out)["evals"][0]["percent"] == 100.0


def test_corrupt_zstd_input_through_the_cli(tmp_path, capsys, prose):
    zstandard = pytest.importorskip("zstandard")
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"text": prose(1)}) + "\n", encoding="utf-8")
    bad = tmp_path / "bad.jsonl.zst"
    bad.write_bytes(zstandard.ZstdCompressor().compress(b'{"text": "x"}\n' * 100)[:-8] + b"\x00" * 8)
    args = ["prepare", str(good), str(bad), "-o", str(tmp_path / "out"), "--workers", "0", "--val-fraction", "0"]
    assert cli(args + ["--strict"]) == 2
    progress, err = capsys.readouterr().err.rstrip().split("\n")  # found while reading: after the progress line
    assert progress.startswith("  reading 2 input file(s)") and "bad.jsonl.zst: cannot be read (ZstdError" in err
    assert not (tmp_path / "out").exists()  # nothing left behind, not even the directory
    assert cli(args) == 0  # without --strict: skipped, counted, reported
    assert "unreadable files: 1" in capsys.readouterr().out
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["sources"]["unreadable_files"] == 1 and m["documents"]["kept"] == 1


def test_demo_val_fraction_default_and_explicit():
    from gpt2.cli import prepare as prepare_cli
    from gpt2.cli.main import build_parser

    def val_fraction(*argv: str) -> float:
        return prepare_cli.resolve(build_parser().parse_args(["prepare", "-o", "x", *argv]))[1].val_fraction

    assert val_fraction("--corpus", "demo") == 0.1
    assert val_fraction("--corpus", "demo", "--val-fraction", "0.005") == 0.005  # the default's value, chosen
    assert val_fraction("--corpus", "demo", "--set", "val_fraction=0.3") == 0.3  # chosen, however
    assert val_fraction("in.txt") == PrepareConfig().val_fraction
    assert val_fraction("in.txt", "--val-fraction", "0.3") == 0.3


def test_default_workers_are_the_cores_this_process_may_use(corpus, tmp_path, monkeypatch):
    prep = sys.modules["gpt2.data.prepare"]  # gpt2.data.prepare, the attribute, is the function
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)  # e.g. taskset -c 3
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    used = []
    real = prep._ordered_results

    def record(batches, workers, initargs):
        used.append(workers)
        return real(batches, 0, initargs)

    monkeypatch.setattr(prep, "_ordered_results", record)
    prepare([corpus["path"]], tmp_path / "out", config=FAST)
    assert used == [1]


def test_near_dup_threshold_decides(tmp_path, prose, capsys):
    from gpt2.data.dedup import minhash, shingle_hashes

    shared, a_end, b_end = prose(1, 300), prose(2, 100), prose(3, 100)
    a, b = shared + "\n" + a_end, shared + "\n" + b_end  # 5-gram Jaccard about 0.6
    sa, sb = set(shingle_hashes(a, 5).tolist()), set(shingle_hashes(b, 5).tolist())
    assert 0.55 < len(sa & sb) / len(sa | sb) < 0.65
    estimate = np.mean(minhash(np.array(sorted(sa), np.uint32)) == minhash(np.array(sorted(sb), np.uint32)))
    assert 0.5 < estimate < 0.7
    path = tmp_path / "pair.jsonl"
    path.write_text(json.dumps({"text": a}) + "\n" + json.dumps({"text": b}) + "\n", encoding="utf-8")
    dropped = {}
    for threshold in ("0.5", "0.8"):
        out = tmp_path / threshold
        argv = ["prepare", str(path), "-o", str(out), "--near-dup-threshold", threshold, "--workers", "0", "-q"]
        assert cli(argv) == 0
        m = json.loads((out / "manifest.json").read_text())
        dropped[threshold] = m["filters"]["dropped"].get("near_duplicate", 0)
        assert m["settings"]["near_dedup"]["threshold"] == float(threshold)
    assert dropped == {"0.5": 1, "0.8": 0}


def test_length_bounds_normalization_and_their_report(tmp_path):
    from gpt2.data.clean import CleanConfig
    from gpt2.tokenizer import Tokenizer

    rows = ["short", "x" * 61, "   \n ", "Cafe\u0301 au lait, decomposed", "a bell\x07 rings\r\nhere",
            "the \ufb01ne print \u2460"]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": r}) + "\n" for r in rows), encoding="utf-8")
    tok = Tokenizer.from_pretrained("gpt2")

    def run(out: str, **clean) -> tuple[dict, list[str]]:
        config = PrepareConfig(clean=CleanConfig(quality=None, **clean), near_dedup=None, val_fraction=0.0)
        m = prepare([path], tmp_path / out, config=config, workers=0)
        return m, [tok.decode(d) for d in Dataset(tmp_path / out).iter_documents("train")]

    m, texts = run("a", min_chars=10, max_chars=60)
    assert m["filters"]["dropped"] == {"empty": 1, "too_long": 1, "too_short": 1}
    assert texts == ["Caf\u00e9 au lait, decomposed", "a bell rings\nhere", "the \ufb01ne print \u2460"]
    assert m["filters"]["changed"] == {"control_characters": 1, "normalization": 1}
    m, texts = run("b", normalize=None, strip_control=False)
    assert m["filters"]["changed"] == {"control_characters": 0, "normalization": 0}
    assert texts == [r for r in rows if r.strip()]
    m, texts = run("c", normalize="NFKC")
    assert texts[-1] == "the fine print 1" and m["filters"]["changed"]["normalization"] == 2


class _CharTokenizer:
    """Every code point its own token: a vocabulary of 0x110001 ids, too many for uint16."""

    vocab_size = 0x110001
    eot_token = 0x110000
    fingerprint = "test-chars"

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids) -> str:
        return "".join(map(chr, ids))


def test_large_vocabulary_writes_uint32_shards(tmp_path, monkeypatch):
    from gpt2.data.loader import ShardLoader

    monkeypatch.setattr(sys.modules["gpt2.data.prepare"], "load_tokenizer", lambda name: _CharTokenizer())
    docs = [f"document {i} \U0001F600 with ids past 65535 \U00020000" for i in range(40)]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    config = PrepareConfig(clean=PrepareConfig().clean.__class__(quality=None), near_dedup=None,
                           val_fraction=0.0, shard_tokens=300)
    m = prepare([path], tmp_path / "out", tokenizer="chars", config=config, workers=0)
    assert m["dtype"] == "uint32"
    ds = Dataset(tmp_path / "out")
    ds.verify()
    for shard in ds.shard_paths("train"):
        assert read_header(shard)[0] == np.uint32 and shard.stat().st_size == 32 + 4 * read_header(shard)[1]
    assert [_CharTokenizer().decode(d.tolist()) for d in ds.iter_documents("train")] == docs
    loader = ShardLoader(tmp_path / "out", batch_size=4, n_ctx=32)
    ids = {int(t) for _ in range(loader.batches_per_epoch) for t in loader.next_batch()[0].flatten()}
    assert {0x1F600, 0x20000, 0x110000} <= ids  # ids beyond uint16 arrive intact


def test_demo_corpus_defaults_to_the_demo_model_tokenizer():
    from gpt2.checkpoint import resolve_checkpoint
    from gpt2.cli.main import build_parser
    from gpt2.data import corpus

    def tokenizer(*argv: str) -> str:
        args = build_parser().parse_args(["prepare", "-o", "x", *argv])
        return corpus.default_tokenizer(args.corpus) if args.tokenizer is None else args.tokenizer

    assert tokenizer("--corpus", "demo") == "demo"
    assert tokenizer("--corpus", "demo", "--tokenizer", "gpt2") == "gpt2"  # named explicitly: kept
    assert tokenizer("in.txt") == "gpt2"
    demo_dir = Path(corpus.tokenizer_location("demo"))
    assert demo_dir == resolve_checkpoint("demo") and (demo_dir / "vocab.json").is_file()
    assert corpus.tokenizer_location("gpt2") == "gpt2"


# ----------------------------------------------------------------------------- settings

def _cli_dataset(tmp_path: Path, name: str, source: Path, *options: str) -> tuple[dict, dict[str, bytes]]:
    out = tmp_path / name
    assert cli(["prepare", str(source), "-o", str(out), "--workers", "0", "-q", *options]) == 0
    return json.loads((out / "manifest.json").read_text()), shard_bytes(out)


def test_options_set_and_config_file_give_the_same_dataset(corpus, tmp_path):
    """Each option is a shorthand for one key: the three ways to say the same settings make the
    same dataset (fingerprint, settings, shards)."""
    (tmp_path / "prep.toml").write_text(
        'val_fraction = 0.2\nshard_tokens = 3000\n[clean]\nmin_chars = 20\nquality = false\n'
        '[near_dedup]\nthreshold = 0.5\nnum_perm = 64\n', encoding="utf-8")
    by_options = _cli_dataset(tmp_path, "options", corpus["path"], "--val-fraction", "0.2", "--shard-tokens",
                              "3000", "--min-chars", "20", "--no-quality", "--near-dup-threshold", "0.5",
                              "--num-perm", "64")
    by_set = _cli_dataset(tmp_path, "set", corpus["path"], "--set", "val_fraction=0.2", "--set", "shard_tokens=3000",
                          "--set", "clean.min_chars=20", "--set", "clean.quality=false",
                          "--set", "near_dedup.threshold=0.5", "--set", "near_dedup.num_perm=64")
    by_file = _cli_dataset(tmp_path, "file", corpus["path"], "--config", str(tmp_path / "prep.toml"))
    for manifest, shards in (by_set, by_file):
        assert manifest["fingerprint"] == by_options[0]["fingerprint"]
        assert manifest["settings"] == by_options[0]["settings"]
        assert shards == by_options[1] and shards
    s = by_options[0]["settings"]
    assert (s["clean"]["min_chars"], s["clean"]["quality"], s["near_dedup"]["num_perm"]) == (20, None, 64)


def test_later_sources_win_key_by_key(tmp_path):
    from gpt2.cli import prepare as prepare_cli
    from gpt2.cli.main import build_parser

    (tmp_path / "p.toml").write_text("val_fraction = 0.1\nshard_tokens = 500\n[near_dedup]\nnum_perm = 32\n")

    def config(*argv: str) -> PrepareConfig:
        args = build_parser().parse_args(["prepare", "in.txt", "-o", "x", "--config", str(tmp_path / "p.toml"), *argv])
        return prepare_cli.resolve(args)[1]

    c = config("--val-fraction", "0.2", "--set", "val_fraction=0.3", "--near-dup-threshold", "0.6")
    assert (c.val_fraction, c.shard_tokens) == (0.3, 500)  # file < options < --set, other keys kept
    assert (c.near_dedup.threshold, c.near_dedup.num_perm) == (0.6, 32)  # sections merge, not replace
    assert config("--no-near-dedup").near_dedup is None  # a switch wins over the file's section
    assert config("--set", "near_dedup=false").near_dedup is None
    assert config("--set", "decontam.ngram=5").decontam is None  # no evaluation files: nothing to do
    c = config("--set", "clean.normalize=false", "--set", "clean.max_chars=99", "--set", 'read.separator="\\n\\n"')
    assert (c.clean.normalize, c.clean.max_chars, c.read.separator) == (None, 99, "\n\n")
    assert config("--normalize", "none").clean.normalize is None


def test_the_manifest_holds_every_setting(corpus, tmp_path):
    """Derived, not listed: every field of PrepareConfig (and of its sections) is in the manifest,
    with the value the run used."""
    import dataclasses

    from gpt2.data import CleanConfig

    config = PrepareConfig(clean=CleanConfig(min_chars=7), decontam=DecontamConfig((str(corpus["eval"]),)),
                           val_fraction=0.2)
    m = prepare([corpus["path"]], tmp_path / "out", config=config, workers=0)

    def check(obj: object, recorded: dict) -> None:
        assert set(recorded) == {f.name for f in dataclasses.fields(obj)}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                check(value, recorded[f.name])
            else:
                assert recorded[f.name] == (list(value) if isinstance(value, tuple) else value), f.name

    check(config, json.loads(json.dumps(m["settings"])))  # as returned (tuples are JSON lists)
    check(config, json.loads((tmp_path / "out" / "manifest.json").read_text())["settings"])


def test_fingerprints_of_earlier_datasets_stay_the_same():
    """A dataset prepared by an earlier version keeps its fingerprint (re-running its command is
    a no-op, not a "different dataset"): the default settings hash as they always have."""
    import hashlib

    from gpt2.data.prepare import _identity_settings

    blob = json.dumps(_identity_settings(PrepareConfig()), sort_keys=True).encode()
    assert hashlib.sha256(blob).hexdigest() == "43d6847bad9a1de9a533d4770f5ee6a28ab411cfaa8befbf7a3032aceca240a1"


def test_every_numeric_setting_has_a_range():
    from gpt2.data.prepare import numeric_ranges

    ranges = numeric_ranges()
    assert {"val_fraction", "clean.min_chars", "clean.quality.min_words", "near_dedup.threshold",
            "decontam.ngram"} <= set(ranges)
    assert not [key for key, r in ranges.items() if r is None]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "-1", "1e30"])
def test_no_numeric_setting_takes_nan_infinity_or_out_of_range(value):
    from gpt2 import ConfigError
    from gpt2.data.prepare import build_config, numeric_ranges
    from gpt2.settings import parse_override, set_dotted

    for key in numeric_ranges():
        data: dict = {}
        set_dotted(data, key, parse_override(f"{key}={value}")[1])
        with pytest.raises(ConfigError, match=rf"{key} must be (in|int)"):
            build_config([("--set", data)])


def test_a_config_made_in_python_is_checked_too(corpus, tmp_path):
    from gpt2 import ConfigError
    from gpt2.data import CleanConfig, DecontamConfig, NearDupConfig

    for config, message in [(PrepareConfig(val_fraction=1.0), r"val_fraction must be in \[0, 1\)"),
                            (PrepareConfig(clean=CleanConfig(min_chars=9, max_chars=3)), "below clean.min_chars 9"),
                            (PrepareConfig(clean=CleanConfig(normalize="nfc")), "clean.normalize must be one of"),
                            (PrepareConfig(near_dedup=NearDupConfig(threshold=1.0)),
                             r"near_dedup\.threshold must be in \(0, 1\), got 1\.0"),
                            (PrepareConfig(decontam=DecontamConfig(("e.jsonl",), action="bad")),  # type: ignore
                             r"^config: decontam\.action must be drop or report, got 'bad'$")]:
        with pytest.raises(ConfigError, match=message):
            prepare([corpus["path"]], tmp_path / "out", config=config, workers=0)
    assert not (tmp_path / "out").exists()


def test_tally_counts_what_the_report_says():
    from gpt2.data.prepare import Tally

    t = Tally()
    t.drop("too_short", "a:1")
    t.drop("contaminated", "a:2")
    t.keep("train", "a:3", contaminated=False)
    t.keep("val", "a:4", contaminated=True)
    assert t.documents(read=5) == {"read": 5, "kept": 2, "dropped": 2, "train": 1, "val": 1}
    f = t.filters(None, decontaminating=True)
    assert f["dropped"] == {"contaminated": 1, "too_short": 1} and f["contaminated_kept"] == 1
    assert f["contaminated_documents"] == ["a:2", "a:4"]
    assert t.filters(None, decontaminating=False)["contaminated_documents"] is None
