"""Training checkpoints: everything a run needs to continue exactly where it stopped.

    RUN_DIR/checkpoints/step-000500/
        config.json, model.safetensors   the model, in the Hugging Face layout (so
                                         `gpt2 generate --model` and transformers load it)
        vocab.json, merges.txt, ...      the tokenizer the data was prepared with
        optimizer.pt                     AdamW state (tensors and numbers only)
        trainer_state.json               step, tokens seen, the config it was trained with
        rank-00000.pt, ...               per rank: RNG states (CPU, CUDA) and the loader state
        checksums.json                   sha256 of every file above; written last

A checkpoint is written into a temporary directory beside the others, fsynced, and renamed
into place, so a crash (even kill -9) never leaves a half-written `step-*` directory. On
resume the newest checkpoint whose checksums verify is used; a corrupt one is reported and
skipped. Only the newest `keep_last` checkpoints are kept; staging directories a crashed save
left behind are deleted at the next save.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import CheckpointError
from ..fsutil import atomic_path, atomic_write_json, fsync_dir, sha256_file

CHECKSUMS = "checksums.json"
STATE = "trainer_state.json"
OPTIMIZER = "optimizer.pt"


def checkpoints_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def step_dir_name(step: int) -> str:
    return f"step-{step:07d}"


def rank_file(rank: int) -> str:
    return f"rank-{rank:05d}.pt"


def staging_dir(run_dir: str | Path, step: int) -> Path:
    """Where a checkpoint is assembled before its rename; the same name on every rank."""
    return checkpoints_dir(run_dir) / f".tmp-{step_dir_name(step)}"


def write_rank_state(staging: Path, rank: int, rank_state: dict[str, Any]) -> None:
    """Each rank writes its own RNG and loader state into the staging directory."""
    with atomic_path(staging / rank_file(rank)) as tmp:
        torch.save(rank_state, tmp)


def finish_checkpoint(
    run_dir: str | Path,
    step: int,
    write_model: Callable[[Path], None],
    optimizer_state: dict[str, Any],
    trainer_state: dict[str, Any],
    keep_last: int,
) -> Path:
    """Rank 0, after every rank wrote its rank file: write the rest (the model and its tokenizer
    through `write_model(directory)`), checksum, rename, prune."""
    staging = staging_dir(run_dir, step)
    write_model(staging)
    with atomic_path(staging / OPTIMIZER) as tmp:
        torch.save(optimizer_state, tmp)
    atomic_write_json(staging / STATE, trainer_state)
    sums = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file()}
    atomic_write_json(staging / CHECKSUMS, sums)
    final = checkpoints_dir(run_dir) / step_dir_name(step)
    if final.exists():  # a step saved before a crash and reached again after resuming
        shutil.rmtree(final)
    os.replace(staging, final)  # a directory rename, not a file write: fsutil's atomic writes do not apply
    fsync_dir(final.parent)
    prune(run_dir, keep_last)
    return final


def prepare_staging(run_dir: str | Path, step: int) -> Path:
    """Rank 0, before the ranks write: a fresh, empty staging directory."""
    staging = staging_dir(run_dir, step)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def prune(run_dir: str | Path, keep_last: int) -> None:
    """Delete all but the newest `keep_last` checkpoints, and stale staging directories.

    Called once the newest checkpoint is renamed into place, while every rank waits at the
    barrier: no save is in flight, so any staging directory left is from a crashed save."""
    root = checkpoints_dir(run_dir)
    complete = sorted(root.glob("step-*"))
    for old in complete[:-keep_last] + sorted(root.glob(".tmp-step-*")):
        shutil.rmtree(old, ignore_errors=True)


def verify(checkpoint: Path) -> str | None:
    """None when every file matches checksums.json, else what is wrong."""
    sums_path = checkpoint / CHECKSUMS
    if not sums_path.is_file():
        return f"{CHECKSUMS} is missing (an interrupted save)"
    try:
        sums = json.loads(sums_path.read_text())
    except ValueError:
        return f"{CHECKSUMS} is not valid JSON"
    for name, digest in sums.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if sha256_file(path) != digest:
            return f"{name} does not match its checksum"
    return None


def latest_valid(run_dir: str | Path, log=lambda msg: print(f"warning: {msg}", file=sys.stderr)) -> Path | None:
    """The newest checkpoint that verifies; corrupt ones are reported (to `log`, which adds its
    own "warning:" prefix) and passed over."""
    for candidate in sorted(checkpoints_dir(run_dir).glob("step-*"), reverse=True):
        problem = verify(candidate)
        if problem is None:
            return candidate
        log(f"checkpoint {candidate} is corrupt ({problem}); trying the previous one")
    return None


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / STATE).read_text(encoding="utf-8"))


def read_optimizer_state(checkpoint: Path) -> dict[str, Any]:
    return _load(checkpoint / OPTIMIZER)


def read_rank_state(checkpoint: Path, rank: int) -> dict[str, Any]:
    path = checkpoint / rank_file(rank)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no state for rank {rank}; resume with the number of processes the run used"
        )
    return _load(path)


def _load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: cannot read ({str(e).splitlines()[0]})") from None

