"""The training config: recipes load, overrides apply, bad keys and values are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpt2 import ConfigError
from gpt2.settings import parse_override
from gpt2.train.config import load_recipe
from gpt2.train.optim import learning_rate

# configs/finetune-*.toml are `gpt2 finetune` recipes (tests/finetune/test_recipes.py).
CONFIGS = sorted(p for p in (Path(__file__).parent.parent / "configs").glob("*.toml")
                 if not p.name.startswith("finetune-"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_recipe_loads(path):
    config = load_recipe(path)
    assert config.train.batch_size % config.train.micro_batch_size == 0


def test_recipe_values_are_the_paper_and_nanogpt_recipe():
    c = load_recipe(Path(__file__).parent.parent / "configs" / "gpt2-124m.toml")
    assert (c.model.preset, c.data.seq_len, c.optim.lr) == ("gpt2", 1024, 6e-4)
    assert (c.optim.beta1, c.optim.beta2, c.optim.weight_decay, c.optim.grad_clip) == (0.9, 0.95, 0.1, 1.0)
    assert c.train.batch_size * c.data.seq_len == 524_288  # ~0.5M tokens per step
    assert c.optim.min_lr_ratio == 0.1


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_overrides(tmp_path):
    path = write(tmp_path, '[data]\ndir = "d"\n')
    c = load_recipe(path, ["optim.lr=3e-4", "--train.max_steps=7", "run_dir=runs/x", "eval.sample_prompt='ROMEO:'"])
    assert (c.optim.lr, c.train.max_steps, c.run_dir, c.eval.sample_prompt) == (3e-4, 7, "runs/x", "ROMEO:")
    assert isinstance(load_recipe(path, ["optim.lr=1"]).optim.lr, float)


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ('[data]\ndir = "d"\n[optim]\nlrr = 1\n', [], "unknown key 'optim.lrr'"),
        ('[data]\ndir = "d"\n', ["train.max_stepz=3"], "unknown key 'train.max_stepz'"),
        ('[data]\ndir = "d"\n', ["train.max_steps=ten"], "train.max_steps must be int, got 'ten'"),
        ('[data]\ndir = "d"\n', ["train.max_steps=1.5"], "train.max_steps must be int"),
        ('[data]\ndir = "d"\n', ["optim.lr=-1"], r"optim.lr must be in \(0, 10\], got -1"),
        ('[data]\ndir = "d"\n', ["train.dtype='fp8'"], "train.dtype must be one of"),
        ('[data]\ndir = "d"\n', ["train.compile=1"], "train.compile must be bool"),
        ('[data]\ndir = "d"\n', ["checkpoint.keep_last=0"], r"checkpoint.keep_last must be in \[1, 1000000\], got 0"),
        ('[data]\ndir = "d"\n', ["lr"], "must look like section.key=value"),
        ("[train]\nmax_steps = 3\n", [], "data.dir is required"),
        ("[data\n", [], "invalid TOML"),
        ('data = "x"\n', [], r"\[data\] must be a table"),
    ],
)
def test_bad_config_is_named(tmp_path, text, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe(write(tmp_path, text), overrides)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_recipe(tmp_path / "nope.toml")


def test_parse_override_values():
    assert parse_override("a.b=true") == ("a.b", True)
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("run_dir=runs/x") == ("run_dir", "runs/x")


def test_learning_rate_schedule():
    c = load_recipe(None, ["data.dir=d", "optim.lr=1.0", "optim.warmup_steps=10", "optim.min_lr_ratio=0.1"]).optim
    assert learning_rate(0, c, 110) == pytest.approx(0.1)  # warmup is linear from lr/warmup
    assert learning_rate(9, c, 110) == pytest.approx(1.0)
    assert learning_rate(10, c, 110) == pytest.approx(1.0)  # cosine starts at the peak
    assert learning_rate(60, c, 110) == pytest.approx(0.55)  # halfway: the mean of peak and floor
    assert learning_rate(110, c, 110) == pytest.approx(0.1)
    assert learning_rate(500, c, 110) == pytest.approx(0.1)  # flat after the decay


def test_cli_takes_overrides_with_or_without_dashes_in_any_order():
    from gpt2.cli.main import build_parser

    argv = ["train", "c.toml", "a.b=1", "--train.max_steps=5", "c.d=2", "--e.f=3"]
    assert build_parser().parse_args(argv).overrides == ["a.b=1", "--train.max_steps=5", "c.d=2", "--e.f=3"]


def test_cli_dashed_override_reaches_the_config(tmp_path, capsys):
    from gpt2.cli.main import main

    path = write(tmp_path, '[data]\ndir = "d"\n')
    # The value is checked before any data is read: a bad dashed override is named.
    assert main(["train", str(path), "optim.lr=1e-3", "--train.max_steps=ten"]) == 2
    assert "train.max_steps must be int, got 'ten'" in capsys.readouterr().err
    # A later override of the same key wins, whichever form each takes.
    assert main(["train", str(path), "--train.max_steps=ten", "train.max_steps=zz"]) == 2
    assert "got 'zz'" in capsys.readouterr().err
    assert main(["train", str(path), "not-an-override"]) == 2
    assert "must look like section.key=value" in capsys.readouterr().err


def test_every_numeric_setting_has_a_documented_range():
    from gpt2.train.config import numeric_ranges

    ranges = numeric_ranges()
    assert "optim.lr" in ranges and "train.seed" in ranges and "model.n_ctx" in ranges
    assert not [key for key, r in ranges.items() if r is None]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+inf", "1e400", "-1", "1e30"])
def test_no_numeric_setting_takes_nan_infinity_or_out_of_range(tmp_path, value):
    from gpt2.train.config import numeric_ranges

    path = write(tmp_path, '[data]\ndir = "d"\n')
    for key in numeric_ranges():
        with pytest.raises(ConfigError, match=rf"{key} must be (in|int)"):
            load_recipe(path, [f"{key}={value}"])


def test_nan_in_a_recipe_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"optim.eps must be in \(0, 1\], got nan"):
        load_recipe(write(tmp_path, '[data]\ndir = "d"\n[optim]\neps = nan\n'))


def test_decay_must_not_end_before_warmup(tmp_path):
    with pytest.raises(ConfigError, match="optim.decay_steps .* must be >= optim.warmup_steps"):
        load_recipe(write(tmp_path, '[data]\ndir = "d"\n'), ["optim.warmup_steps=10", "optim.decay_steps=5"])
