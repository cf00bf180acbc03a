"""Bad inputs to `gpt2 train CONFIG.toml [section.key=value ...]`.

{recipe} is a working 2-step recipe on {data} with run_dir = "run" (under the case's {tmp}, its
working directory); each row breaks one thing. Rows that need a broken dataset copy {data} into
{tmp} in `setup`, so the shared asset stays intact.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

from .harness import EXIT_INTERRUPTED, Case, write_file

NOT_GPU = "cuda:99"  # a GPU that no machine here has (plain `cuda` is tested in tests/test_train.py)


_write = partial(write_file, fill=True)  # recipes name {data}


def _dataset(change):
    """Copy {data} to {tmp}/ds, then change(ds, manifest_dict) breaks it one way."""
    def setup(tmp: Path, assets: dict) -> None:
        ds = Path(shutil.copytree(assets["data"], tmp / "ds"))
        manifest = json.loads((ds / "manifest.json").read_text())
        change(ds, manifest)
    return setup


def _shard_name(ds: Path, manifest: dict, value: str) -> None:
    manifest["splits"]["train"]["shards"][0]["file"] = value
    (ds / "manifest.json").write_text(json.dumps(manifest))


def _first_train_shard(ds: Path, manifest: dict) -> Path:
    return ds / manifest["splits"]["train"]["shards"][0]["file"]


def _flip_a_byte(ds: Path, manifest: dict) -> None:
    shard = _first_train_shard(ds, manifest)
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0x01  # same size, still a valid token id
    shard.write_bytes(bytes(data))


def _truncate(ds: Path, manifest: dict) -> None:
    shard = _first_train_shard(ds, manifest)
    shard.write_bytes(shard.read_bytes()[:-2])


def _delete_shard(ds: Path, manifest: dict) -> None:
    _first_train_shard(ds, manifest).unlink()


def _damage_manifest(ds: Path, manifest: dict) -> None:
    (ds / "manifest.json").write_text("{", encoding="utf-8")


def _trained_run(tmp: Path, assets: dict) -> None:
    """A finished 2-step run in {tmp}/run (a checkpoint to resume from)."""
    subprocess.run([sys.executable, "-m", "gpt2.cli.main", "train", str(assets["recipe"])], cwd=tmp,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _corrupt_checkpoint(tmp: Path, assets: dict) -> None:
    """A run directory whose only checkpoint is corrupt: training warns on stderr, then starts."""
    (tmp / "run" / "checkpoints" / "step-0000001").mkdir(parents=True)


R = "{recipe}"
LONG = "train.max_steps=100000"  # a run that is still going when the signal comes

CASES = [
    # the recipe file
    Case("train-config-missing", ("train", "{tmp}/nope.toml"), match=r"nope\.toml: no such config file"),
    Case("train-config-is-a-directory", ("train", "{tmp}"), match=r"cannot read"),
    Case("train-config-bad-toml", ("train", "{tmp}/bad.toml"), setup=_write("bad.toml", "[model\n"),
         match=r"bad\.toml: invalid TOML"),
    Case("train-config-not-utf8", ("train", "{tmp}/bin.toml"), setup=_write("bin.toml", b"\xff\xfe\x00[m"),
         match=r"bin\.toml: cannot read"),
    Case("train-config-nan-in-file", ("train", "{tmp}/nan.toml"),
         setup=_write("nan.toml", '[data]\ndir = "{data}"\n[optim]\nbeta1 = nan\n'),
         match=r"optim\.beta1 must be in \[0, 1\), got nan"),
    Case("train-config-section-not-table", ("train", R, "model=3"), match=r"\[model\] must be a table"),
    # overrides
    Case("train-unknown-key", ("train", R, "optim.lrr=1"), match=r"unknown key 'optim\.lrr'"),
    Case("train-unknown-section", ("train", R, "--banana.x=1"), match=r"unknown key 'banana'"),
    Case("train-override-not-key-value", ("train", R, "lr"), match=r"'lr' must look like section\.key=value"),
    Case("train-override-under-a-value", ("train", R, "run_dir.x=1"), match=r"run_dir is not a section"),
    Case("train-int-not-a-number", ("train", R, "train.max_steps=ten"), match=r"train\.max_steps must be int, got 'ten'"),
    Case("train-int-given-float", ("train", R, "train.batch_size=2.5"), match=r"train\.batch_size must be int"),
    Case("train-bool-given-int", ("train", R, "train.compile=1"), match=r"train\.compile must be bool"),
    Case("train-dtype-not-a-choice", ("train", R, "train.dtype=fp8"), match=r"train\.dtype must be one of"),
    Case("train-nan-lr", ("train", R, "optim.lr=nan"), match=r"optim\.lr must be in \(0, 10\], got nan"),
    Case("train-inf-eps", ("train", R, "optim.eps=inf"), match=r"optim\.eps must be in \(0, 1\], got inf"),
    Case("train-minus-inf-clip", ("train", R, "optim.grad_clip=-inf"), match=r"optim\.grad_clip must be in"),
    Case("train-negative-steps", ("train", R, "train.max_steps=-1"), match=r"train\.max_steps must be in \[1, "),
    Case("train-huge-steps", ("train", R, "train.max_steps=100000000000000000000000"),
         match=r"train\.max_steps must be in \[1, 1000000000\]"),
    Case("train-zero-batch", ("train", R, "train.batch_size=0"), match=r"train\.batch_size must be in"),
    Case("train-dropout-one", ("train", R, "model.dropout=1.0"), match=r"model\.dropout must be in \[0, 1\)"),
    Case("train-negative-seed", ("train", R, "train.seed=-1"), match=r"train\.seed must be in \[0, "),
    Case("train-keep-last-zero", ("train", R, "checkpoint.keep_last=0"), match=r"checkpoint\.keep_last must be in"),
    Case("train-log-interval-zero", ("train", R, "log.interval=0"), match=r"log\.interval must be in"),
    Case("train-too-many-samples", ("train", R, "eval.samples=1000"), match=r"eval\.samples must be in \[0, 100\]"),
    Case("train-decay-before-warmup", ("train", R, "optim.warmup_steps=10", "optim.decay_steps=5"),
         match=r"optim\.decay_steps \(5\) must be >= optim\.warmup_steps"),
    Case("train-batch-not-a-multiple", ("train", R, "train.batch_size=3"),
         match=r"train\.batch_size 3 must be a multiple of micro_batch_size"),
    Case("train-seq-len-over-n-ctx", ("train", R, "data.seq_len=1000"), match=r"data\.seq_len 1000 exceeds"),
    Case("train-unknown-preset", ("train", R, "model.preset=banana"), match=r"unknown preset 'banana'"),
    Case("train-impossible-shape", ("train", R, "model.n_head=5"), match=r"divisible by n_head"),
    Case("train-init-from-missing", ("train", R, "model.init_from={tmp}/nope"),
         match=r"nope: no such checkpoint directory"),
    # devices
    Case("train-device-no-such-gpu", ("train", R, f"train.device={NOT_GPU}"),
         match=r"train\.device 'cuda:99'.*devices here: cpu"),
    Case("train-device-banana", ("train", R, "train.device=banana"),
         match=r"train\.device 'banana' is not a device name; devices here: cpu"),
    Case("train-device-mps", ("train", R, "train.device=mps"), match=r"train\.device 'mps'.*devices here"),
    # the dataset
    Case("train-data-missing", ("train", R, "data.dir={tmp}/nope"), match=r"nope: no such directory"),
    Case("train-data-is-a-file", ("train", R, "data.dir={recipe}"), match=r"recipe\.toml: not a directory"),
    Case("train-data-not-prepared", ("train", R, "data.dir={tmp}"), match=r"no manifest\.json"),
    Case("train-manifest-not-json", ("train", R, "data.dir={tmp}/ds"), setup=_dataset(_damage_manifest),
         match=r"manifest\.json: unreadable manifest"),
    Case("train-manifest-parent-path", ("train", R, "data.dir={tmp}/ds"),
         setup=_dataset(lambda ds, m: _shard_name(ds, m, "../outside.bin")),
         match=r"shard name '\.\./outside\.bin' leaves the dataset directory"),
    Case("train-manifest-absolute-path", ("train", R, "data.dir={tmp}/ds"),
         setup=_dataset(lambda ds, m: _shard_name(ds, m, "/etc/passwd")),
         match=r"shard name '/etc/passwd' leaves the dataset directory"),
    Case("train-shard-changed-same-size", ("train", R, "data.dir={tmp}/ds"), setup=_dataset(_flip_a_byte),
         match=r"do not match the sha256 in the manifest"),
    Case("train-shard-truncated", ("train", R, "data.dir={tmp}/ds"), setup=_dataset(_truncate),
         match=r"truncated"),
    Case("train-shard-missing", ("train", R, "data.dir={tmp}/ds"), setup=_dataset(_delete_shard),
         match=r"listed in the manifest is missing"),
    # the run directory
    Case("train-run-dir-is-a-file", ("train", R, "run_dir={tmp}/f"), setup=_write("f", "x"),
         match=r"run_dir .*/f: a file, not a directory"),
    Case("train-run-dir-under-a-file", ("train", R, "run_dir={tmp}/f/run"), setup=_write("f", "x"),
         match=r"/f is a file, so the directory cannot be created"),
    Case("train-resume-changed-lr", ("train", R, "optim.lr=0.01"), setup=_trained_run, timeout=240,
         match=r"changes optim\.lr \(0\.0006 -> 0\.01\).*train\.allow_config_change=true"),
    # streams: training reads no stdin; a closed or full stdout does not hide the error
    Case("train-stdin-closed", ("train", R, "train.max_steps=0"), stdin="closed",
         match=r"train\.max_steps must be in"),
    Case("train-stdout-closed", ("train", R, "optim.lr=nan"), stdout="closed", only_line=False,
         match=r"optim\.lr must be in"),
    Case("train-stdout-full", ("train", R, "optim.lr=nan"), stdout="full", match=r"optim\.lr must be in"),
    # Ctrl-C: the step is finished, a checkpoint saved, then exit 130
    Case("train-interrupt-while-starting", ("train", R, LONG), setup=_corrupt_checkpoint,
         interrupt=r"is corrupt", deadline=15, may_write=True, expect=EXIT_INTERRUPTED),
    Case("train-interrupt-while-training", ("train", R, LONG), interrupt=r"step 1/", deadline=15, may_write=True,
         expect=EXIT_INTERRUPTED),
    Case("train-interrupt-while-validating", ("train", R, LONG, "eval.interval=1", "eval.batches=50",
                                              "eval.samples=1"),
         interrupt=r"validation on the first", deadline=15, may_write=True, expect=EXIT_INTERRUPTED),
]
