"""The overlap analysis on constructed cases with known answers, and the Bloom filter's bound."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

from gpt2.data import DataError, overlap
from gpt2.data.decontam import EvalNgrams
from gpt2.data.overlap import NgramBloom


def test_known_percentages(tmp_path, prose):
    train_text = prose(1, 400)
    words = train_text.split()
    (tmp_path / "train.txt").write_text(train_text, encoding="utf-8")
    # 20 words copied from training (13 of its 8-grams) + 20 unseen made-up words: of the
    # 33 8-grams of this 40-word file, exactly the 13 wholly inside the copy occur in training.
    unseen = " ".join(f"zzq{i}x" for i in range(20))
    (tmp_path / "half.txt").write_text(" ".join(words[100:120]) + " " + unseen, encoding="utf-8")
    (tmp_path / "same.txt").write_text(" ".join(words[:50]), encoding="utf-8")
    (tmp_path / "none.txt").write_text(unseen + " " + unseen.upper().replace("ZZQ", "QQZ"), encoding="utf-8")
    report = overlap([tmp_path / "train.txt"], [tmp_path / "half.txt", tmp_path / "same.txt", tmp_path / "none.txt"])
    half, same, none = report.evals
    assert (half.ngrams, half.present) == (33, 13)
    assert (same.ngrams, same.present, same.percent) == (43, 43, 100.0)
    assert none.present == 0 and none.ngrams == 33
    assert report.false_positive_bound <= 1e-4
    assert "33" in report.format()


def test_overlap_reads_a_prepared_dataset(tmp_path, prose):
    from gpt2.data import PrepareConfig, prepare

    docs = [prose(i, 200) for i in range(5)]
    (tmp_path / "a.jsonl").write_text("".join(f'{{"text": "{d.replace(chr(10), " ")}"}}\n' for d in docs))
    prepare([tmp_path / "a.jsonl"], tmp_path / "ds", config=PrepareConfig(val_fraction=0.0), workers=0)
    (tmp_path / "eval.txt").write_text(" ".join(docs[2].split()[:30]), encoding="utf-8")
    report = overlap([tmp_path / "ds"], [tmp_path / "eval.txt"])
    assert report.train_documents == 5
    assert report.evals[0].percent == 100.0


def test_bloom_false_positive_rate_within_bound():
    rng = np.random.default_rng(0)
    bloom = NgramBloom(200_000, 1e-3)
    bloom.add(rng.integers(0, 2**63, 200_000, dtype=np.uint64))
    assert bloom.false_positive_bound() <= 1e-3
    probes = rng.integers(0, 2**63, 400_000, dtype=np.uint64)
    rate = bloom.contains(probes).mean()
    assert rate <= 2 * bloom.false_positive_bound()  # 400k probes: ~400 expected, ±5%
    inserted = rng.integers(0, 2**63, 1000, dtype=np.uint64)
    bloom.add(inserted)
    assert bloom.contains(inserted).all()  # never a false negative


def test_eval_ngrams_membership(tmp_path):
    (tmp_path / "e.txt").write_text("one two three four five six seven eight nine", encoding="utf-8")
    ev = EvalNgrams.from_files([tmp_path / "e.txt"], n=8)
    assert len(ev) == 2
    assert ev.matches("x y ONE two three four five six seven eight z") == 1
    assert ev.matches("one two three four five six seven nine") == 0


def test_no_eval_files(tmp_path):
    (tmp_path / "t.txt").write_text("a b c", encoding="utf-8")
    with pytest.raises(DataError, match="no such file"):
        overlap([tmp_path / "t.txt"], [tmp_path / "missing.txt"])


def test_skipped_inputs_are_reported_not_silent(tmp_path, capsys):
    from gpt2.cli.main import main

    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "one two three four five six seven eight nine"}\nnot json\n', encoding="utf-8")
    evals = tmp_path / "eval.jsonl"
    evals.write_text('{"text": "one two three four five six seven eight"}\n{"other": 1}\n', encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    report = overlap([train], [evals, empty])
    assert report.evals[0].percent == 100.0
    assert report.input_problems["train"]["skipped_lines"] == {"not valid JSON": 1}
    assert sum(report.input_problems["eval"]["skipped_lines"].values()) == 1
    assert report.input_problems["eval"]["empty_files"] == 1
    assert main(["overlap", str(train), "--eval", str(evals)]) == 0
    out = capsys.readouterr().out
    assert "note: train inputs: 1 line(s) skipped" in out and "note: eval inputs: 1 line(s) skipped" in out


# Every word changes between NFC and NFD (accents, Hangul syllables vs. jamo), so raw hashing
# would find no shared 8-gram at all.
_UNICODE_WORDS = ("café naïve résumé crème brûlée façade déjà élève señor über größe 한국어 문장은 "
                  "여기에서 끝나지 않는다 정말로 많은 단어들 éclair").split()


def _unicode_passage(seed: int) -> str:
    import random

    rng = random.Random(seed)
    return " ".join(rng.choice(_UNICODE_WORDS) for _ in range(60))


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_nfd_eval_file_matches_its_nfc_and_nfd_copies(tmp_path):
    passage = _unicode_passage(0)
    assert _nfd(passage) != _nfc(passage)
    (tmp_path / "eval.txt").write_text(_nfd(passage), encoding="utf-8")
    (tmp_path / "train_nfc.txt").write_text("Some preface words. " + _nfc(passage), encoding="utf-8")
    (tmp_path / "train_nfd.txt").write_text(_nfd(passage) + " and an ending", encoding="utf-8")
    for train in ("train_nfc.txt", "train_nfd.txt"):
        report = overlap([tmp_path / train], [tmp_path / "eval.txt"])
        assert report.evals[0].percent == 100.0, train
    # A prepared dataset holds the cleaned (NFC) text: its decoded documents match too.
    from gpt2.data import CleanConfig, PrepareConfig, prepare

    config = PrepareConfig(clean=CleanConfig(quality=None), near_dedup=None, val_fraction=0.0)
    prepare([tmp_path / "train_nfd.txt"], tmp_path / "ds", config=config, workers=0)
    assert overlap([tmp_path / "ds"], [tmp_path / "eval.txt"]).evals[0].percent == 100.0
    assert EvalNgrams.from_files([tmp_path / "eval.txt"]).matches(_nfc(passage)) > 0


@pytest.mark.parametrize("form", ["NFC", "NFKC", "NFD", "NFKD", None])
def test_decontamination_drops_copies_whatever_the_normalization(tmp_path, prose, form):
    import json

    from gpt2.data import CleanConfig, DecontamConfig, PrepareConfig, prepare

    passage = _unicode_passage(1)
    (tmp_path / "eval.txt").write_text(_nfd(passage), encoding="utf-8")
    docs = [prose(0), prose(1) + "\n" + _nfc(passage), prose(2) + "\n" + _nfd(passage), prose(3)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    config = PrepareConfig(clean=CleanConfig(normalize=form, quality=None), near_dedup=None, val_fraction=0.0,
                           decontam=DecontamConfig((str(tmp_path / "eval.txt"),)))
    m = prepare([tmp_path / "train.jsonl"], tmp_path / "out", config=config, workers=0)
    assert m["filters"]["dropped"] == {"contaminated": 2}, form
    assert m["documents"]["kept"] == 2


def test_missing_split_and_empty_training_data_are_errors_not_zero_percent(tmp_path, prose):
    from gpt2.data import CleanConfig, PrepareConfig, prepare

    (tmp_path / "train.txt").write_text(prose(0), encoding="utf-8")
    (tmp_path / "eval.txt").write_text(prose(0), encoding="utf-8")  # 100% contained
    prepare([tmp_path / "train.txt"], tmp_path / "ds", workers=0,
            config=PrepareConfig(clean=CleanConfig(quality=None), near_dedup=None, val_fraction=0.0))
    assert overlap([tmp_path / "ds"], [tmp_path / "eval.txt"]).evals[0].percent == 100.0
    with pytest.raises(DataError, match=r"ds: no 'nope' split \(it has train, val\)"):
        overlap([tmp_path / "ds"], [tmp_path / "eval.txt"], splits=("train", "nope"))
    with pytest.raises(DataError, match=r"ds: no training documents found .*splits.*: val"):
        overlap([tmp_path / "ds"], [tmp_path / "eval.txt"], splits=("val",))  # val_fraction 0: empty
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no training documents found"):
        overlap([tmp_path / "empty"], [tmp_path / "eval.txt"])
    with pytest.raises(DataError, match=r"empty: no text, .jsonl or .parquet files to evaluate"):
        overlap([tmp_path / "train.txt"], [tmp_path / "empty"])
