"""The shipped fine-tuning recipes load, name bundled task files that exist, and keep GPT-1's
defaults where they do not say otherwise; the recipe dialect's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpt2.errors import ConfigError
from gpt2.finetune.config import FinetuneConfig, load_finetune_recipe, numeric_ranges

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("finetune-*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_recipe_loads(path):
    config = load_finetune_recipe(path)
    assert config.train.batch_size % config.train.micro_batch_size == 0
    for task in config.tasks:
        assert Path(task.train).is_file(), task.train
        assert task.valid is None or Path(task.valid).is_file(), task.valid


def test_the_recipes_cover_every_task_type_lora_distillation_and_several_tasks():
    configs = [load_finetune_recipe(p) for p in CONFIGS]
    types = {t.type for c in configs for t in c.tasks}
    assert types == {"classification", "entailment", "similarity", "multiple_choice", "instruct"} | (types & {"lm"})
    assert any(c.lora.r for c in configs) and any(c.distill.teachers for c in configs)
    assert any(len(c.tasks) > 1 for c in configs)


def test_gpt1_defaults():
    c = FinetuneConfig()
    assert (c.optim.lr, c.optim.warmup_fraction, c.train.batch_size, c.train.epochs) == (6.25e-5, 0.002, 32, 3.0)
    assert (c.train.lm_weight, c.model.head_dropout) == (0.5, 0.1)


def test_every_numeric_setting_has_a_range():
    assert all(r is not None for r in numeric_ranges().values()), numeric_ranges()


def test_paths_are_relative_to_the_recipe_and_demo_names_the_bundled_tasks(tmp_path):
    (tmp_path / "sub").mkdir()
    recipe = tmp_path / "sub" / "r.toml"
    recipe.write_text('[[tasks]]\nname = "a"\ntype = "lm"\ntrain = "x.jsonl"\nvalid = "demo:chat.valid.jsonl"\n')
    (task,) = load_finetune_recipe(recipe).tasks
    assert task.train == str(tmp_path / "sub" / "x.jsonl")
    assert task.valid.endswith("assets/tasks/chat.valid.jsonl") and Path(task.valid).is_file()


def test_lora_defaults_to_the_bases_vocabulary(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[lora]\nr = 4\n[[tasks]]\nname = "a"\ntype = "classification"\ntrain = "x.jsonl"\n')
    assert load_finetune_recipe(recipe).model.new_tokens is False
    assert load_finetune_recipe(recipe, ["lora.r=0"]).model.new_tokens is True
    with pytest.raises(ConfigError, match="new_tokens=true adds embedding rows"):
        load_finetune_recipe(recipe, ["model.new_tokens=true"])
