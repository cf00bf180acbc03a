"""Task files: JSONL, GLUE's TSV and Hugging Face datasets read into the same records."""

from __future__ import annotations

import json

import pytest

from gpt2.errors import FinetuneError
from gpt2.finetune.data import read_records


def test_jsonl_tsv_and_a_hugging_face_dataset_give_the_same_records(tmp_path):
    rows = [{"sentence": f"text {i}", "label": i % 2} for i in range(5)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "t.tsv").write_text("sentence\tlabel\n" + "".join(f"{r['sentence']}\t{r['label']}\n" for r in rows))
    ds = tmp_path / "ds"  # a dataset directory `datasets.load_dataset` reads offline
    ds.mkdir()
    (ds / "train.jsonl").write_text((tmp_path / "t.jsonl").read_text())
    from_jsonl = [r for _, r in read_records(tmp_path / "t.jsonl")]
    from_tsv = [r for _, r in read_records(tmp_path / "t.tsv")]
    from_hf = [r for _, r in read_records(f"hf:{ds}:train")]
    assert from_jsonl == from_hf == rows
    assert from_tsv == [{"sentence": r["sentence"], "label": str(r["label"])} for r in rows]  # TSV cells are text


@pytest.mark.parametrize("source, match", [
    ("hf:only-a-name", r"hf:PATH:SPLIT or hf:PATH:CONFIG:SPLIT"),
    ("hf:a:b:c:d", r"hf:PATH:SPLIT"),
    ("hf:no-such-user/no-such-dataset:train", r"cannot load it"),
])
def test_bad_hugging_face_sources_are_one_line(source, match, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(FinetuneError, match=match) as e:
        list(read_records(source))
    assert "\n" not in str(e.value)
