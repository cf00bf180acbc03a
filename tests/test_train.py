"""The trainer: exact resume (after a checkpoint, SIGTERM, kill -9, a corrupt checkpoint),
fault handling, continued training, and 2-process DDP equal to 1 process."""

from __future__ import annotations

import json
import lzma
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gpt2 import GPT2, Tokenizer
from gpt2.data.prepare import PrepareConfig, prepare
from gpt2.train.config import load_recipe
from gpt2.errors import TrainingError
from gpt2.train.trainer import Trainer, checkpoint_activations, train

CORPUS = Path(__file__).parent.parent / "src" / "gpt2" / "assets" / "corpus" / "demo.jsonl.xz"

# A tiny model on a 300 kB slice of the demo corpus: each step takes milliseconds.
TINY = ["model.preset=gpt2-nano", "model.n_layer=2", "model.n_embd=32", "model.n_head=2", "model.n_ctx=32",
        "data.seq_len=32", "train.batch_size=8", "train.micro_batch_size=4", "optim.lr=3e-3",
        "optim.warmup_steps=2", "optim.decay_steps=40", "eval.interval=0", "eval.samples=0",
        "checkpoint.interval=0", "log.interval=1", "train.seed=7"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train-data")
    with lzma.open(CORPUS, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    paragraphs = [p for t in texts[:6] for p in t.split("\n\n") if len(p) > 200][:600]
    with open(root / "docs.jsonl", "w", encoding="utf-8") as f:
        for p in paragraphs:
            f.write(json.dumps({"text": p}) + "\n")
    # A 512-token vocabulary trained on the same text keeps the output layer (and each step) small.
    (root / "docs.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    tokenizer = root / "tokenizer"
    Tokenizer.train([root / "docs.txt"], vocab_size=512).save_pretrained(tokenizer)
    out = root / "prepared"
    prepare([root / "docs.jsonl"], out, tokenizer=str(tokenizer),
            config=PrepareConfig(near_dedup=None, val_fraction=0.1), workers=0)
    return out


def config(dataset: Path, run_dir: Path, *overrides: str):
    return load_recipe(None, [*TINY, f"data.dir={json.dumps(str(dataset))}",
                              f"run_dir={json.dumps(str(run_dir))}", *overrides])


def losses(run_dir: Path) -> dict[int, float]:
    """Training loss by step; a step logged twice (before a crash and after resuming) keeps the last."""
    out = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        if "loss" in r:
            out[r["step"]] = r["loss"]
    return out


def cli(*args: str, **kw) -> subprocess.Popen:
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "gpt2.cli.main", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def cli_overrides(dataset: Path, run_dir: Path, *extra: str) -> list[str]:
    return [*TINY, f"data.dir={json.dumps(str(dataset))}", f"run_dir={json.dumps(str(run_dir))}", *extra]


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> dict[int, float]:
    """An uninterrupted 12-step run, in a subprocess like the interrupted ones."""
    run_dir = tmp_path_factory.mktemp("reference")
    p = cli("train", "/dev/null", *cli_overrides(dataset, run_dir, "train.max_steps=12"))
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    result = losses(run_dir)
    assert sorted(result) == list(range(1, 13))
    return result


def test_training_reduces_the_loss(dataset, reference):
    assert reference[12] < reference[1] - 0.5


def test_resume_from_a_checkpoint_is_bitwise_exact(dataset, reference, tmp_path):
    assert train(config(dataset, tmp_path, "train.max_steps=5")).step == 5
    assert (tmp_path / "checkpoints" / "step-0000005" / "checksums.json").is_file()
    result = train(config(dataset, tmp_path, "train.max_steps=12"))
    assert result.step == 12
    resumed = losses(tmp_path)
    assert all(resumed[s] == reference[s] for s in range(1, 13)), (resumed, reference)


def test_sigterm_writes_a_checkpoint_and_resume_is_exact(dataset, reference, tmp_path):
    p = cli("train", "/dev/null", *cli_overrides(dataset, tmp_path, "train.max_steps=12", "optim.lr=3e-3"))
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.005)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert "SIGTERM" in err and "run the same command to resume" in out
    assert "run the same command to resume" in (tmp_path / "train.log").read_text()  # the log is kept
    stopped = max(losses(tmp_path))
    assert 2 <= stopped < 12, "the run ended before the signal arrived"
    assert (tmp_path / "checkpoints" / f"step-{stopped:07d}").is_dir()
    p = cli("train", "/dev/null", *cli_overrides(dataset, tmp_path, "train.max_steps=12"))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert "resuming from" in out and f"(step {stopped})" in out
    assert losses(tmp_path) == reference


def test_kill_9_loses_only_the_steps_since_the_last_checkpoint(dataset, reference, tmp_path):
    p = cli("train", "/dev/null", *cli_overrides(dataset, tmp_path, "train.max_steps=12", "checkpoint.interval=3"))
    checkpoint = tmp_path / "checkpoints" / "step-0000006"
    deadline = time.time() + 120
    while time.time() < deadline and not checkpoint.exists():
        time.sleep(0.005)
    p.kill()
    p.communicate(timeout=60)
    saved = sorted(d.name for d in (tmp_path / "checkpoints").glob("step-*"))
    assert "step-0000006" in saved and "step-0000012" not in saved
    p = cli("train", "/dev/null", *cli_overrides(dataset, tmp_path, "train.max_steps=12", "checkpoint.interval=3"))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert losses(tmp_path) == reference
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))  # stale staging directories are cleaned
    assert len(list((tmp_path / "checkpoints").glob("step-*"))) == 3  # keep_last


def test_corrupt_checkpoint_falls_back_to_the_previous_one(dataset, reference, tmp_path, capfd):
    train(config(dataset, tmp_path, "train.max_steps=8", "checkpoint.interval=4"))
    weights = tmp_path / "checkpoints" / "step-0000008" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte
    weights.write_bytes(bytes(data))
    capfd.readouterr()
    train(config(dataset, tmp_path, "train.max_steps=12", "checkpoint.interval=4"))
    out, err = capfd.readouterr()
    assert "step-0000008 is corrupt (model.safetensors does not match its checksum)" in err
    assert "warning: warning:" not in err and err.startswith("warning: checkpoint ")
    assert "(step 4)" in out
    assert losses(tmp_path) == reference


def test_checkpoint_is_a_hugging_face_model(dataset, tmp_path):
    from transformers import GPT2LMHeadModel

    result = train(config(dataset, tmp_path, "train.max_steps=2"))
    model = GPT2.from_pretrained(result.checkpoint)
    hf = GPT2LMHeadModel.from_pretrained(result.checkpoint).eval()
    x = torch.randint(0, model.config.vocab_size, (1, 16))
    with torch.no_grad():
        assert (model(x) - hf(x).logits).abs().max() < 1e-5
    assert (result.checkpoint / "vocab.json").is_file()  # the tokenizer travels with the model


def test_the_run_config_is_written_whole(dataset, tmp_path):
    """RUN_DIR/config.json: the run's settings, indented, non-ASCII escaped, written atomically
    (no temporary file left beside it)."""
    from gpt2.fsutil import is_temp_name

    c = config(dataset, tmp_path, "train.max_steps=1", 'eval.sample_prompt="Thé"')
    train(c)
    assert (tmp_path / "config.json").read_bytes() == (json.dumps(c.to_dict(), indent=2) + "\n").encode()
    assert not [p.name for p in tmp_path.iterdir() if is_temp_name(p.name)]


def test_prune_keeps_the_newest_and_deletes_stale_staging(tmp_path):
    """A save that crashed (kill -9) leaves its staging directory; the next save deletes it,
    also when that step is never saved again."""
    from gpt2.train import checkpointing as ckpt

    for step in (3, 6, 9, 12):
        (ckpt.checkpoints_dir(tmp_path) / ckpt.step_dir_name(step)).mkdir(parents=True)
    ckpt.staging_dir(tmp_path, 7).mkdir()
    (ckpt.staging_dir(tmp_path, 7) / ckpt.rank_file(0)).write_bytes(b"half a save")
    ckpt.prune(tmp_path, keep_last=2)
    assert sorted(p.name for p in ckpt.checkpoints_dir(tmp_path).iterdir()) == ["step-0000009", "step-0000012"]


def due_steps(due, *overrides: str) -> list[int]:
    """The steps of a 10-step run at which `due(trainer)` holds."""
    trainer = Trainer(load_recipe(None, ['data.dir="data"', 'run_dir="run"', "train.max_steps=10", *overrides]))
    trainer.step, found = 0, []
    while not trainer._finished():
        trainer.step += 1
        if due(trainer):
            found.append(trainer.step)
    return found


def test_when_the_loop_logs_evaluates_and_checkpoints():
    assert due_steps(Trainer._due_for_log, "log.interval=4") == [4, 8, 10]
    assert due_steps(Trainer._due_for_eval, "eval.interval=4") == [4, 8, 10]
    assert due_steps(Trainer._due_for_eval, "eval.interval=4", "eval.at_end=false") == [4, 8]
    assert due_steps(Trainer._due_for_eval, "eval.interval=0") == []
    assert due_steps(lambda t: t._due_for_checkpoint(stop=False), "checkpoint.interval=3") == [3, 6, 9, 10]
    assert due_steps(lambda t: t._due_for_checkpoint(stop=False), "checkpoint.interval=0") == [10]
    assert due_steps(lambda t: t._due_for_checkpoint(stop=True), "checkpoint.interval=0") == list(range(1, 11))


class FaultyTrainer(Trainer):
    """Non-finite losses at chosen steps (the fault the handler is for)."""

    nan_steps: set[int] = set()

    def compute_loss(self, x, y):
        loss = super().compute_loss(x, y)
        return loss * float("nan") if self.step + 1 in self.nan_steps else loss


def test_non_finite_loss_skips_the_update(dataset, reference, tmp_path, capfd):
    FaultyTrainer.nan_steps = {3}
    trainer = FaultyTrainer(config(dataset, tmp_path, "train.max_steps=5"))
    trainer.run()
    assert "step 3: non-finite loss nan" in capfd.readouterr().err
    records = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("skipped")] == [3]
    got = losses(tmp_path)
    assert got[1] == reference[1] and got[2] == reference[2]
    assert got[4] != reference[4]  # step 3's batch was skipped, not applied


def test_too_many_non_finite_losses_abort(dataset, tmp_path):
    FaultyTrainer.nan_steps = {2, 3, 4}
    with pytest.raises(TrainingError, match="3 non-finite losses in a row"):
        FaultyTrainer(config(dataset, tmp_path, "train.max_steps=10", "train.max_nonfinite_steps=3")).run()


class OutOfMemoryTrainer(Trainer):
    def compute_loss(self, x, y):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_names_the_remedies(dataset, tmp_path):
    with pytest.raises(TrainingError, match="micro_batch_size=4.*activation_checkpointing"):
        OutOfMemoryTrainer(config(dataset, tmp_path, "train.max_steps=2")).run()


def test_activation_checkpointing_gives_the_same_gradients():
    from gpt2 import GPT2Config

    torch.manual_seed(0)
    a = GPT2(GPT2Config(n_layer=2, n_embd=32, n_head=2, n_ctx=16, vocab_size=100))
    b = GPT2(a.config)
    b.load_state_dict(a.state_dict())
    checkpoint_activations(b)
    x = torch.randint(0, 100, (2, 16))
    for m in (a, b):
        m(x, x)[1].backward()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-7), name


def test_continued_training_starts_from_the_given_weights(dataset, tmp_path, hf_model_factory):
    hf = hf_model_factory(n_positions=32)
    hf.save_pretrained(tmp_path / "base")
    trainer = Trainer(config(dataset, tmp_path / "run", f"model.init_from={json.dumps(str(tmp_path / 'base'))}",
                             "train.max_steps=1", "model.dropout=0.0"))
    trainer.setup()
    x, y = trainer.data.train_loader(4, 32, 7, 0, 1).next_batch()
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(hf(x).logits.flatten(0, 1), y.flatten())
        assert trainer.compute_loss(x, y).item() == pytest.approx(expected.item(), rel=1e-5)


def test_dataset_errors_are_one_line(tmp_path):
    from gpt2 import GPT2Error

    def run(data_dir):
        train(load_recipe(None, ["data.dir=" + json.dumps(str(data_dir)), f"run_dir={json.dumps(str(tmp_path / 'r'))}"]))

    with pytest.raises(GPT2Error, match="no manifest.json"):
        run(tmp_path)
    with pytest.raises(GPT2Error, match="nope: no such directory"):  # not "no manifest.json"
        run(tmp_path / "nope")
    assert not (tmp_path / "r").exists()


def test_batch_size_must_split_into_micro_batches(dataset, tmp_path):
    with pytest.raises(TrainingError, match="batch_size 10 must be a multiple of micro_batch_size x processes = 4"):
        train(config(dataset, tmp_path, "train.batch_size=10"))


# Evaluation with samples on: under FSDP every rank must take part in the sampling's forward
# passes (they all-gather the sharded weights); rank 0 alone used to hang both ranks.
WITH_EVAL = ("train.max_steps=6", "eval.interval=3", "eval.batches=2", "eval.samples=1", "eval.sample_tokens=4")


def val_losses(run_dir: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["val_loss"] for r in records if "val_loss" in r}


@pytest.fixture(scope="module")
def one_process(dataset, tmp_path_factory, run_bounded) -> Path:
    run_dir = tmp_path_factory.mktemp("one-process")
    result = run_bounded([sys.executable, "-m", "gpt2.cli.main", "train", "/dev/null",
                          *cli_overrides(dataset, run_dir, *WITH_EVAL)], timeout=300)
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_equal_one_process(dataset, one_process, tmp_path, strategy, run_bounded):
    """2 gloo processes (DDP, or FSDP2's fully_shard) with the same global batch follow the
    1-process loss curve, evaluate the same validation windows (eval.batches is not per rank)
    and draw samples without hanging."""
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = run_bounded(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "gpt2.cli.main", "train", "/dev/null",
         *cli_overrides(dataset, tmp_path, *WITH_EVAL, f"train.distributed={strategy}")],
        timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es)" in result.stdout
    one, two = losses(one_process), losses(tmp_path)
    assert sorted(one) == sorted(two) == list(range(1, 7))
    assert max(abs(one[s] - two[s]) for s in two) <= 1e-5, (one, two)
    one_val, two_val = val_losses(one_process), val_losses(tmp_path)
    assert sorted(one_val) == sorted(two_val) == [3, 6]
    assert max(abs(one_val[s] - two_val[s]) for s in two_val) <= 1e-5, (one_val, two_val)
    samples = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert [r["step"] for r in samples] == [3, 6]  # written once, by rank 0
    assert (tmp_path / "checkpoints" / "step-0000006" / "model.safetensors").is_file()


def test_plot_draws_the_loss_curves(dataset, tmp_path):
    from gpt2.cli.main import main

    train(config(dataset, tmp_path, "train.max_steps=4", "eval.interval=2", "eval.batches=2"))
    assert main(["plot", str(tmp_path)]) == 0
    png = (tmp_path / "loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_plot_of_a_directory_without_metrics_is_one_line(tmp_path, capsys):
    from gpt2.cli.main import main

    assert main(["plot", str(tmp_path)]) == 2
    assert "metrics.jsonl: no such file" in capsys.readouterr().err


def test_validation_is_skipped_when_no_window_fits_in_a_shard(dataset, tmp_path):
    """A window never spans two shards: a validation split of shards shorter than a window has
    more tokens than the window, yet no window; training goes on without validation."""
    from gpt2.data.shards import Dataset
    from gpt2.train.data import TrainingData

    small = tmp_path / "small-shards"
    prepare([dataset.parent / "docs.jsonl"], small, tokenizer=str(dataset.parent / "tokenizer"),
            config=PrepareConfig(near_dedup=None, val_fraction=0.1, shard_tokens=40), workers=0)
    shards = Dataset(small).splits["val"]
    longest = max(s["tokens"] for s in shards)
    assert len(shards) > 1 and sum(s["tokens"] for s in shards) > longest
    data = TrainingData(small)
    assert data.val_loader(2, longest, rank=0, world_size=1) is None  # the old check built a loader that failed
    assert data.val_loader(2, longest - 1, rank=0, world_size=1) is not None


# ----------------------------------------------------------------------------- inputs checked first


@pytest.mark.parametrize("device, message", [
    ("cuda", r"train.device 'cuda': CUDA is not available on this machine; devices here: cpu"),
    ("banana", r"train.device 'banana' is not a device name; devices here: cpu"),
])
def test_a_device_that_does_not_exist_is_named(dataset, tmp_path, device, message):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from gpt2 import UsageError

    with pytest.raises(UsageError, match=message):
        train(config(dataset, tmp_path / "run", f"train.device={device}"))
    assert not (tmp_path / "run").exists()


def test_a_run_dir_that_is_a_file_or_under_one_is_named(dataset, tmp_path):
    from gpt2 import UsageError

    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="a file, not a directory"):
        train(config(dataset, tmp_path / "file"))
    with pytest.raises(UsageError, match="file is a file, so the directory cannot be created"):
        train(config(dataset, tmp_path / "file" / "run"))
    assert (tmp_path / "file").read_text() == "x"


# ----------------------------------------------------------------------------- output


def test_training_survives_its_stdout_going_away(dataset, tmp_path):
    """`gpt2 train ... | head -1`: the reader takes one line and leaves; training goes on to the
    last step and its checkpoint, and the whole log is in the run directory."""
    p = cli("train", "/dev/null", *cli_overrides(dataset, tmp_path, "train.max_steps=30"))
    first = p.stdout.readline()
    p.stdout.close()  # what head does after its line
    _, err = p.communicate(timeout=300)
    assert first.startswith("starting:")
    assert p.returncode == 0, err
    assert "stdout was closed by its reader; going on without it" in err
    assert (tmp_path / "checkpoints" / "step-0000030" / "model.safetensors").is_file()
    assert "step 30/30" in (tmp_path / "train.log").read_text()


def test_sigint_saves_and_exits_130(dataset, tmp_path):
    p = cli("train", "/dev/null", *cli_overrides(dataset, tmp_path, "train.max_steps=100000"))
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.005)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1] == "gpt2 train: interrupted"
    assert "run the same command to resume" in out
    stopped = max(losses(tmp_path))
    assert (tmp_path / "checkpoints" / f"step-{stopped:07d}" / "checksums.json").is_file()


def test_the_eta_is_measured_from_the_first_step(capsys):
    from gpt2.train.metrics import Progress

    progress = Progress(1000, start_step=0, log_interval=10)
    progress.start -= 2.0  # the first step took 2 s
    progress.update({"step": 1, "loss": 5.0, "lr": 1e-3, "tokens_per_s": 100.0})
    line = capsys.readouterr().out
    assert "ETA 33m1" in line, line  # 999 steps x 2 s, not the 0m00s of a rate from one instant


def test_without_a_terminal_only_every_log_interval_steps_is_printed(capsys):
    from gpt2.train.metrics import Progress

    progress = Progress(12, start_step=0, log_interval=5)
    for step in range(1, 13):
        progress.update({"step": step, "loss": 5.0, "lr": 1e-3, "tokens_per_s": 100.0})
    printed = [line.split(" |")[0] for line in capsys.readouterr().out.splitlines()]
    assert printed == ["step 1/12", "step 5/12", "step 10/12", "step 12/12"]


def test_validation_shows_progress(one_process):
    log = (one_process / "train.log").read_text()
    assert "step 3: validation on the first 8 windows ..." in log
    assert "step 3: validation loss" in log


def test_resuming_with_changed_settings(dataset, tmp_path, capsys):
    train(config(dataset, tmp_path, "train.max_steps=2"))
    saved = (tmp_path / "config.json").read_text()
    with pytest.raises(TrainingError, match=r"changes optim.lr \(0.003 -> 0.001\), train.batch_size \(8 -> 16\).*"
                                            r"train.allow_config_change=true"):
        train(config(dataset, tmp_path, "train.max_steps=3", "optim.lr=1e-3", "train.batch_size=16"))
    assert (tmp_path / "config.json").read_text() == saved  # a refused resume changes nothing
    capsys.readouterr()
    train(config(dataset, tmp_path, "train.max_steps=3", "log.interval=2"))  # harmless: noted only
    assert "resuming with changed settings: train.max_steps 2 -> 3, log.interval 1 -> 2" in capsys.readouterr().out
    train(config(dataset, tmp_path, "train.max_steps=4", "optim.lr=1e-3", "train.allow_config_change=true"))
    assert "optim.lr 0.003 -> 0.001" in capsys.readouterr().out
    assert max(losses(tmp_path)) == 4
