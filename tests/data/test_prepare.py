"""The pipeline end to end: planted cases dropped for the right reasons, byte-identical re-runs,
an interrupted run, refusing to clobber, and the CLI's one-line errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
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
import sys
from gpt2.data import PrepareConfig, prepare
from gpt2.data.clean import CleanConfig
if __name__ == "__main__":
    prepare([sys.argv[1]], sys.argv[2], workers=0, config=PrepareConfig(
        clean=CleanConfig(quality=None), near_dedup=None, shard_tokens=20_000))
"""


def test_interrupted_run_leaves_nothing_corrupt_and_reruns_identically(tmp_path, prose):
    src = tmp_path / "big.jsonl"
    with open(src, "w") as f:
        for i in range(3000):
            f.write(json.dumps({"text": prose(i, 150)}) + "\n")
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(script), str(src), str(out)])
    deadline = time.time() + 60
    while time.time() < deadline and not list((out / ".partial").glob("train-0000[1-9].bin")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # as hard as an interruption gets
    proc.wait()
    assert not (out / "manifest.json").exists()  # the run is visibly incomplete
    assert not list(out.glob("*.bin"))  # and nothing half-made sits among real shards
    for shard in (out / ".partial").glob("*.bin"):
        read_header(shard)  # every shard that got its final name is whole
    subprocess.run([sys.executable, str(script), str(src), str(out)], check=True)
    subprocess.run([sys.executable, str(script), str(src), str(tmp_path / "ref")], check=True)
    assert shard_bytes(out) == shard_bytes(tmp_path / "ref") and not (out / ".partial").exists()
    Dataset(out).verify()


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli(["prepare", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing.txt: no such file" in err
    assert cli(["overlap", str(tmp_path), "--eval", str(tmp_path / "nope.txt")]) == 2
    assert "nope.txt" in capsys.readouterr().err


def test_cli_prepare_demo_corpus_and_overlap(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli(["prepare", "--corpus", "demo", "-o", str(out), "--no-near-dedup", "--workers", "0"]) == 0
    printed = capsys.readouterr().out
    assert "108 of 108 documents kept" in printed
    m = json.loads((out / "manifest.json").read_text())
    assert m["arguments"]["corpus"] == "demo" and m["tokenizer"]["vocab_size"] == 50257
    hamlet = tmp_path / "hamlet.txt"
    hamlet.write_text("To be, or not to be, that is the question: Whether 'tis nobler in the mind to suffer")
    assert cli(["overlap", str(out), "--eval", str(hamlet), "--splits", "train,val", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["evals"][0]["percent"] == 100.0 and report["false_positive_bound"] <= 1e-4
