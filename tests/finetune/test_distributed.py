"""`gpt2 finetune` under torchrun: 2 gloo processes (DDP with several tasks' heads, FSDP2) follow
the 1-process run's losses and validation metrics, and write the same final model."""

from __future__ import annotations

import json
import os
import sys

import pytest

from gpt2.finetune.checkpoint import load_task_model


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, tiny_ckpt):
    root = tmp_path_factory.mktemp("ft-dist")

    def jsonl(name, records):
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in records))
        return str(root / name)

    cls = jsonl("cls.jsonl", [{"text": f"word {i} " * (1 + i % 5), "label": "ab"[i % 2]} for i in range(32)])
    mc = jsonl("mc.jsonl", [{"context": f"c {i}", "choices": [f"x {i}", f"y {i} y"], "label": i % 2}
                            for i in range(32)])
    path = root / "recipe.toml"
    path.write_text(f'''
[model]
init_from = "{tiny_ckpt}"
dropout = 0.0
head_dropout = 0.0
[train]
batch_size = 8
micro_batch_size = 2
max_steps = 4
device = "cpu"
[optim]
lr = 1e-3
[eval]
interval = 2
[log]
interval = 1
[[tasks]]
name = "cls"
type = "classification"
train = "{cls}"
valid = "{cls}"
[[tasks]]
name = "mc"
type = "multiple_choice"
train = "{mc}"
valid = "{mc}"
''')
    return path


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def one_process(recipe, tmp_path_factory, run_bounded):
    run_dir = tmp_path_factory.mktemp("one")
    result = run_bounded([sys.executable, "-m", "gpt2.cli.main", "finetune", str(recipe), f"run_dir={run_dir}"],
                      timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_equal_one_process(recipe, one_process, tmp_path, strategy, run_bounded):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = run_bounded([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                       "-m", "gpt2.cli.main", "finetune", str(recipe), f"run_dir={tmp_path}",
                       f"train.distributed={strategy}"], timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = _records(one_process), _records(tmp_path)
    steps1 = [(r["step"], r["task"], r["loss"]) for r in one if "loss" in r]
    steps2 = [(r["step"], r["task"], r["loss"]) for r in two if "loss" in r]
    assert [s[:2] for s in steps1] == [s[:2] for s in steps2] and len(steps1) == 4
    assert max(abs(a[2] - b[2]) for a, b in zip(steps1, steps2)) <= 1e-5, (steps1, steps2)
    vals1 = [(r["step"], r["task"], r["val_loss"]) for r in one if "val_loss" in r]
    vals2 = [(r["step"], r["task"], r["val_loss"]) for r in two if "val_loss" in r]
    assert [v[:2] for v in vals1] == [v[:2] for v in vals2] == [(2, "cls"), (2, "mc"), (4, "cls"), (4, "mc")]
    assert max(abs(a[2] - b[2]) for a, b in zip(vals1, vals2)) <= 1e-5
    a, b = load_task_model(one_process / "final").state_dict(), load_task_model(tmp_path / "final").state_dict()
    assert a.keys() == b.keys()
    # Adam divides by sqrt(v): gradients equal to ~1e-7 can move a weight by a few 1e-5 per step
    # of lr 1e-3; far below the 4e-3 that four steps move a weight.
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-3
