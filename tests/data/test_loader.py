"""Loaders: shapes, sampling without replacement, determinism, exact resume, disjoint ranks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gpt2.data import DataError, PrepareConfig, prepare
from gpt2.data.clean import CleanConfig
from gpt2.data.loader import ShardLoader, ValLoader
from gpt2.data.shards import Dataset


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    import random

    root = tmp_path_factory.mktemp("loader")
    rng = random.Random(0)
    words = "the of and river stone garden window letter morning silver harbor market winter".split()
    with open(root / "docs.jsonl", "w") as f:
        for i in range(300):
            f.write(json.dumps({"text": f"doc {i}: " + " ".join(rng.choice(words) for _ in range(60))}) + "\n")
    config = PrepareConfig(clean=CleanConfig(quality=None), near_dedup=None, val_fraction=0.2, shard_tokens=3000)
    prepare([root / "docs.jsonl"], root / "ds", config=config, workers=0)
    return root / "ds"


def all_windows(data_dir, n_ctx):
    shards = Dataset(data_dir).open_split("train")
    return {bytes(np.asarray(s[i * n_ctx:i * n_ctx + n_ctx + 1], dtype=np.int64))
            for s in shards for i in range((s.size - 1) // n_ctx)}


def test_batches_are_shifted_windows_of_the_shards(data_dir):
    loader = ShardLoader(data_dir, batch_size=4, n_ctx=32, seed=0)
    x, y = loader.next_batch()
    assert x.shape == y.shape == (4, 32) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    windows = all_windows(data_dir, 32)
    for row in range(4):
        assert bytes(torch.cat([x[row], y[row, -1:]]).numpy()) in windows


def test_one_epoch_sees_every_window_once(data_dir):
    loader = ShardLoader(data_dir, batch_size=1, n_ctx=32, seed=3)
    seen = [bytes(torch.cat([x[0], y[0, -1:]]).numpy()) for x, y in
            (loader.next_batch() for _ in range(loader.batches_per_epoch))]
    assert len(seen) == loader.windows.total and set(seen) == all_windows(data_dir, 32)
    assert loader.state_dict()["epoch"] == 0
    loader.next_batch()
    assert loader.state_dict()["epoch"] == 1 and loader.state_dict()["batch"] == 1


def test_deterministic_for_a_seed(data_dir):
    a, b, c = (ShardLoader(data_dir, batch_size=4, n_ctx=32, seed=s) for s in (7, 7, 8))
    for _ in range(5):
        xa, xb, xc = a.next_batch()[0], b.next_batch()[0], c.next_batch()[0]
        assert torch.equal(xa, xb)
    assert not torch.equal(xa, xc)


def test_resume_sees_exactly_the_uninterrupted_batches(data_dir):
    straight = ShardLoader(data_dir, batch_size=4, n_ctx=32, seed=1)
    expected = [straight.next_batch() for _ in range(2 * straight.batches_per_epoch + 3)]
    first = ShardLoader(data_dir, batch_size=4, n_ctx=32, seed=1)
    cut = straight.batches_per_epoch + 2  # inside the second epoch
    for _ in range(cut):
        first.next_batch()
    state = json.loads(json.dumps(first.state_dict()))  # survives a JSON round trip
    resumed = ShardLoader(data_dir, batch_size=4, n_ctx=32, seed=1)
    resumed.load_state_dict(state)
    for x, y in expected[cut:]:
        rx, ry = resumed.next_batch()
        assert torch.equal(rx, x) and torch.equal(ry, y)


def test_state_from_other_settings_is_refused(data_dir):
    state = ShardLoader(data_dir, batch_size=4, n_ctx=32, seed=1).state_dict()
    with pytest.raises(DataError, match="batch_size=4"):
        ShardLoader(data_dir, batch_size=8, n_ctx=32, seed=1).load_state_dict(state)


def test_ranks_read_disjoint_windows(data_dir):
    seen = []
    for rank in range(3):
        loader = ShardLoader(data_dir, batch_size=2, n_ctx=16, seed=5, rank=rank, world_size=3)
        windows = set()
        for _ in range(loader.batches_per_epoch):
            x, y = loader.next_batch()
            windows |= {bytes(torch.cat([r, t[-1:]]).numpy()) for r, t in zip(x, y)}
        seen.append(windows)
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert all(len(s) == len(seen[0]) for s in seen)


def test_validation_loader_fixed_order(data_dir):
    val = ValLoader(data_dir, batch_size=3, n_ctx=16)
    first = [x for x, _ in val]
    second = [x for x, _ in val]
    assert len(first) == len(val) and all(torch.equal(a, b) for a, b in zip(first, second))
    shards = Dataset(data_dir).open_split("val")
    assert torch.equal(first[0][0], torch.from_numpy(np.asarray(shards[0][:16], dtype=np.int64)))


def test_too_little_data_is_a_clear_error(data_dir):
    with pytest.raises(DataError, match="fewer than one batch"):
        ShardLoader(data_dir, batch_size=10_000, n_ctx=64)


def _windows_of(loader) -> list[bytes]:
    """The real (not padding) windows a validation loader yields."""
    return [bytes(torch.cat([r, t[-1:]]).numpy()) for x, y in loader for r, t in zip(x, y)
            if (t != ValLoader.IGNORE_INDEX).all()]


@pytest.mark.parametrize("world_size", [2, 4, 7])
def test_validation_windows_do_not_depend_on_the_number_of_ranks(data_dir, world_size):
    one = ValLoader(data_dir, batch_size=4, n_ctx=16)
    total = one.windows.total
    assert total % world_size  # a remainder, or the test shows nothing
    ranks = [ValLoader(data_dir, batch_size=4, n_ctx=16, rank=r, world_size=world_size) for r in range(world_size)]
    assert len({len(v) for v in ranks}) == 1  # the same number of batches: no rank skips a collective
    assert len({tuple(x.shape for x, _ in v) for v in ranks}) == 1  # and the same shapes
    everything = [w for v in ranks for w in _windows_of(v)]
    assert sorted(everything) == sorted(_windows_of(one))  # each window once, none dropped


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_validation_limit_is_the_first_windows_whatever_the_ranks(data_dir, world_size):
    """eval.batches x micro_batch_size windows: the same ones for 1 process or many (a per-rank
    count averaged world_size times as many windows)."""
    first = _windows_of(ValLoader(data_dir, batch_size=2, n_ctx=16, max_windows=5))
    assert len(first) == 5
    assert first == _windows_of(ValLoader(data_dir, batch_size=5, n_ctx=16))[:5]
    ranks = [ValLoader(data_dir, batch_size=2, n_ctx=16, rank=r, world_size=world_size, max_windows=5)
             for r in range(world_size)]
    assert sorted(w for v in ranks for w in _windows_of(v)) == sorted(first)


def test_validation_padding_rows_are_ignored_targets(data_dir):
    ranks = [ValLoader(data_dir, batch_size=2, n_ctx=16, rank=r, world_size=2, max_windows=3) for r in range(2)]
    (_, y0), = list(ranks[0])
    (_, y1), = list(ranks[1])
    assert (y0 != ValLoader.IGNORE_INDEX).all()
    assert (y1[0] != ValLoader.IGNORE_INDEX).all() and (y1[1] == ValLoader.IGNORE_INDEX).all()


def test_validation_fewer_windows_than_ranks_and_none(data_dir):
    total = ValLoader(data_dir, batch_size=1, n_ctx=16).windows.total
    ranks = [ValLoader(data_dir, batch_size=2, n_ctx=16, rank=r, world_size=total + 3) for r in range(total + 3)]
    assert all(len(v) == 1 for v in ranks)  # nobody skips the collective
    assert sum(len(_windows_of(v)) for v in ranks) == total  # the extra ranks hold only padding
    with pytest.raises(DataError, match="'val' split has no window of 100001 tokens"):
        ValLoader(data_dir, batch_size=2, n_ctx=100_000)
    with pytest.raises(DataError, match="rank 2 is outside world_size 2"):
        ValLoader(data_dir, batch_size=2, n_ctx=16, rank=2, world_size=2)


# --------------------------------------------------------------------- opening a dataset safely


def _copy(data_dir, tmp_path):
    import shutil

    return Path(shutil.copytree(data_dir, tmp_path / "ds"))


@pytest.mark.parametrize("name", ["../secret.bin", "/etc/passwd", "sub/x.bin", "..", ""])
def test_manifest_shard_names_cannot_leave_the_directory(data_dir, tmp_path, name):
    ds = _copy(data_dir, tmp_path)
    (tmp_path / "secret.bin").write_bytes((ds / Dataset(ds).splits["train"][0]["file"]).read_bytes())
    manifest = json.loads((ds / "manifest.json").read_text())
    manifest["splits"]["train"]["shards"][0]["file"] = name
    (ds / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="leaves the dataset directory"):
        Dataset(ds)


def test_a_changed_shard_of_the_same_size_is_refused(data_dir, tmp_path):
    ds = _copy(data_dir, tmp_path)
    ShardLoader(ds, batch_size=2, n_ctx=16)  # verifies, and remembers the verified file
    shard = ds / Dataset(ds).splits["train"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0x01  # still a valid token, same size
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match="do not match the sha256 in the manifest"):
        ShardLoader(ds, batch_size=2, n_ctx=16)


def test_verification_is_remembered(data_dir, tmp_path, monkeypatch):
    from gpt2.data import shards

    ds = _copy(data_dir, tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(shards, "_VERIFIED", {})
    calls = []
    real = shards.sha256_file
    monkeypatch.setattr(shards, "sha256_file", lambda p: calls.append(p) or real(p))
    Dataset(ds).open_split("train")
    n = len(calls)
    assert n == len(Dataset(ds).splits["train"])
    Dataset(ds).open_split("train")
    assert len(calls) == n  # the same process: not hashed again
    monkeypatch.setattr(shards, "_VERIFIED", {})
    Dataset(ds).open_split("train")
    assert len(calls) == n  # another process: the cache file remembers


def test_a_missing_dataset_directory_is_named(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        Dataset(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match="not a directory"):
        Dataset(tmp_path / "f")
    with pytest.raises(DataError, match="no manifest.json"):
        Dataset(tmp_path)


def test_a_damaged_manifest_is_one_error(data_dir, tmp_path):
    ds = _copy(data_dir, tmp_path)
    manifest = json.loads((ds / "manifest.json").read_text())
    del manifest["tokenizer"]
    (ds / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="damaged manifest"):
        Dataset(ds)
