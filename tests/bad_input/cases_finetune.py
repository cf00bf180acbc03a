"""Bad inputs to `gpt2 finetune RECIPE.toml [section.key=value ...]`.

{ftrecipe} is a working 1-step recipe (run_dir "run", under the case's {tmp}) fine-tuning {ckpt}
on {tasks}; each row breaks one thing. Task files a row needs are written into {tmp}.
"""

from __future__ import annotations

import json
from functools import partial

from .harness import Case, write_file

R = "{ftrecipe}"
_write = partial(write_file, fill=True)


def _recipe(task_lines: str, extra: str = "", model: str = "") -> str:
    """A recipe on {ckpt} with the given [[tasks]] table(s) (paths under {tmp} are relative)."""
    return ('run_dir = "run"\n[model]\ninit_from = "{ckpt}"\n' + model + '[train]\nmax_steps = 1\n'
            'batch_size = 4\nmicro_batch_size = 4\ndevice = "cpu"\n' + extra + task_lines)


def _task(kind: str = "classification", train: str = "t.jsonl", more: str = "") -> str:
    return f'[[tasks]]\nname = "t"\ntype = "{kind}"\ntrain = "{train}"\n{more}'


def _jsonl(*records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


GOOD = _jsonl(*({"text": f"x {i}", "label": "ab"[i % 2]} for i in range(8)))


def _files(recipe: str, *files: tuple[str, str]):
    """Write {tmp}/r.toml and the task files."""
    def setup(tmp, assets) -> None:
        _write("r.toml", recipe)(tmp, assets)
        for name, content in files:
            write_file(name, content)(tmp, assets)
    return setup


def _case(id: str, recipe: str, match: str, *files: tuple[str, str]) -> Case:
    return Case(id, ("finetune", "{tmp}/r.toml"), setup=_files(recipe, *files), match=match)


CASES = [
    # the recipe file
    Case("finetune-recipe-missing", ("finetune", "{tmp}/nope.toml"), match=r"nope\.toml: no such config file"),
    Case("finetune-recipe-is-a-directory", ("finetune", "{tmp}"), match=r"cannot read"),
    Case("finetune-recipe-bad-toml", ("finetune", "{tmp}/bad.toml"), setup=_write("bad.toml", "[model\n"),
         match=r"bad\.toml: invalid TOML"),
    Case("finetune-recipe-not-utf8", ("finetune", "{tmp}/bin.toml"), setup=_write("bin.toml", b"\xff\xfe["),
         match=r"bin\.toml: cannot read"),
    # overrides and ranges
    Case("finetune-unknown-key", ("finetune", R, "train.epoch=1"), match=r"unknown key 'train\.epoch'"),
    Case("finetune-override-not-key-value", ("finetune", R, "lr"), match=r"must look like section\.key=value"),
    Case("finetune-nan-lr", ("finetune", R, "optim.lr=nan"), match=r"optim\.lr must be in \(0, 10\], got nan"),
    Case("finetune-negative-lm-weight", ("finetune", R, "train.lm_weight=-1"), match=r"train\.lm_weight must be in"),
    Case("finetune-zero-epochs", ("finetune", R, "train.epochs=0"), match=r"train\.epochs must be in \(0, "),
    Case("finetune-inf-epochs", ("finetune", R, "train.epochs=inf"), match=r"train\.epochs must be in"),
    Case("finetune-warmup-over-one", ("finetune", R, "optim.warmup_fraction=2"),
         match=r"optim\.warmup_fraction must be in \[0, 1\]"),
    Case("finetune-head-dropout-one", ("finetune", R, "model.head_dropout=1"), match=r"model\.head_dropout must be in"),
    Case("finetune-sampling-not-a-choice", ("finetune", R, "train.task_sampling=random"),
         match=r"train\.task_sampling must be one of"),
    Case("finetune-sampling-temperature-zero", ("finetune", R, "train.sampling_temperature=0"),
         match=r"train\.sampling_temperature must be in"),
    Case("finetune-batch-not-a-multiple", ("finetune", R, "train.batch_size=6"),
         match=r"train\.batch_size 6 must be a multiple of micro_batch_size"),
    Case("finetune-lora-negative-r", ("finetune", R, "lora.r=-1"), match=r"lora\.r must be in \[0, 4096\]"),
    Case("finetune-lora-nan-alpha", ("finetune", R, "lora.alpha=nan"), match=r"lora\.alpha must be in"),
    Case("finetune-distill-alpha-two", ("finetune", R, "distill.alpha=2"), match=r"distill\.alpha must be in \[0, 1\]"),
    Case("finetune-distill-temperature-zero", ("finetune", R, "distill.temperature=0"),
         match=r"distill\.temperature must be in"),
    Case("finetune-layers-negative", ("finetune", R, "model.layers=[-1]"), match=r"model\.layers must be in \[0, 10000\]"),
    Case("finetune-layers-repeated", ("finetune", R, "model.layers=[0, 0]"), match=r"model\.layers must list distinct"),
    Case("finetune-layers-beyond-the-model", ("finetune", R, "model.layers=[0, 7]"),
         match=r"model\.layers \[0, 7\]: .* has blocks 0 to 2"),
    Case("finetune-device-no-such-gpu", ("finetune", R, "train.device=cuda:99"), match=r"train\.device 'cuda:99'"),
    Case("finetune-run-dir-is-a-file", ("finetune", R, "run_dir={ftrecipe}"), match=r"run_dir .*a file"),
    Case("finetune-init-from-missing", ("finetune", R, "model.init_from={tmp}/nope"),
         match=r"nope: no such checkpoint directory"),
    # the task list
    _case("finetune-no-tasks", _recipe(""), r"no \[\[tasks\]\]"),
    _case("finetune-task-type-unknown", _recipe(_task("sentiment")), r"tasks\[0\]\.type 'sentiment' does not exist"),
    _case("finetune-task-without-name", _recipe('[[tasks]]\ntype = "lm"\ntrain = "t.jsonl"\n'),
          r"tasks\[0\]\.name is required"),
    _case("finetune-task-without-train", _recipe('[[tasks]]\nname = "t"\ntype = "lm"\n'),
          r"tasks\[0\]\.train is required"),
    _case("finetune-task-bad-name", _recipe(_task().replace('name = "t"', 'name = "a.b"')),
          r"tasks\[0\]\.name 'a\.b': use letters, digits and _"),
    _case("finetune-two-tasks-one-name", _recipe(_task() + _task()), r"two tasks are called 't'"),
    _case("finetune-task-unknown-field", _recipe(_task(more='fields = {{sentence = "s"}}\n')),
          r"tasks\[0\]\.fields\.sentence is not a field of a classification task"),
    _case("finetune-regression-not-similarity", _recipe(_task(more="regression = true\n")),
          r"regression applies to similarity tasks only"),
    _case("finetune-task-max-length-tiny", _recipe(_task(more="max_length = 1\n")),
          r"tasks\[0\]\.max_length must be in \[4, "),
    _case("finetune-task-max-length-nan", _recipe(_task(more="max_length = nan\n")), r"tasks\[0\]\.max_length must be"),
    _case("finetune-task-unknown-key", _recipe(_task(more="lables = 1\n")), r"unknown key 'tasks\[0\]\.lables'"),
    # the task files
    _case("finetune-train-file-missing", _recipe(_task()), r"task t: .*t\.jsonl: no such file"),
    _case("finetune-train-file-is-a-directory", _recipe(_task(train=".")), r"is a directory, not a task file"),
    _case("finetune-train-hf-source-malformed", _recipe(_task(train="hf:glue")), r"hf:PATH:SPLIT or hf:PATH:CONFIG:SPLIT"),
    _case("finetune-train-file-empty", _recipe(_task()), r"t\.jsonl: no examples \(the file is empty\)",
          ("t.jsonl", "")),
    _case("finetune-train-not-json", _recipe(_task()), r"t\.jsonl, line 2: not JSON", ("t.jsonl", GOOD.splitlines()[0] + "\n{x\n")),
    _case("finetune-train-not-an-object", _recipe(_task()), r"line 1: expected a JSON object", ("t.jsonl", "[1]\n")),
    _case("finetune-train-not-utf8", _recipe(_task()), r"t\.jsonl: not UTF-8", ("t.jsonl", b"\xff\xfe\n")),
    _case("finetune-missing-field", _recipe(_task()), r"t\.jsonl, line 3: missing field 'text'",
          ("t.jsonl", _jsonl({"text": "a", "label": "x"}, {"text": "b", "label": "y"}, {"label": "x"}))),
    _case("finetune-text-not-a-string", _recipe(_task()), r"line 1: field 'text' must be a string",
          ("t.jsonl", _jsonl({"text": 3, "label": "x"}))),
    _case("finetune-label-a-list", _recipe(_task()), r"line 1: label \[1\] must be a string or an integer",
          ("t.jsonl", _jsonl({"text": "a", "label": [1]}))),
    _case("finetune-one-label-only", _recipe(_task()), r"every example has the label 'x'",
          ("t.jsonl", _jsonl({"text": "a", "label": "x"}, {"text": "b", "label": "x"}))),
    _case("finetune-mixed-label-kinds", _recipe(_task()), r"labels mix strings and integers",
          ("t.jsonl", _jsonl({"text": "a", "label": "x"}, {"text": "b", "label": 1}))),
    _case("finetune-valid-label-unseen", _recipe(_task(more='valid = "v.jsonl"\n')),
          r"v\.jsonl, line 1: label 'c' never appears in the training data", ("t.jsonl", GOOD),
          ("v.jsonl", _jsonl({"text": "z", "label": "c"}))),
    _case("finetune-choice-label-out-of-range", _recipe(_task("multiple_choice")),
          r"line 1: label 5 must be the index of the right choice \(0 to 1\)",
          ("t.jsonl", _jsonl({"context": "c", "choices": ["a", "b"], "label": 5}))),
    _case("finetune-choice-counts-differ", _recipe(_task("multiple_choice")), r"line 2: 3 choices, but the first",
          ("t.jsonl", _jsonl({"context": "c", "choices": ["a", "b"], "label": 0},
                             {"context": "c", "choices": ["a", "b", "d"], "label": 0}))),
    _case("finetune-regression-label-nan", _recipe(_task("similarity", more="regression = true\n")),
          r"label nan must be a finite number",
          ("t.jsonl", '{"text_a": "a", "text_b": "b", "label": NaN}\n')),
    # LoRA and distillation
    _case("finetune-lora-target-matches-nothing", _recipe(_task(), "[lora]\nr = 2\ntargets = [\"q_proj\"]\n"),
          r"q_proj", ("t.jsonl", GOOD)),
    _case("finetune-lora-with-new-tokens", _recipe(_task(), "[lora]\nr = 2\n", model="new_tokens = true\n"),
          r"model\.new_tokens=true adds embedding rows, which a LoRA adapter cannot carry", ("t.jsonl", GOOD)),
    _case("finetune-lora-with-fsdp", _recipe(_task(), "[lora]\nr = 2\n").replace('device = "cpu"', 'device = "cpu"\n'
          'distributed = "fsdp"'), r"lora with train\.distributed=fsdp is not supported", ("t.jsonl", GOOD)),
    _case("finetune-teacher-missing", _recipe(_task(), '[distill]\nteachers = ["nope"]\n'),
          r"cannot download 'nope': no network; pass a local directory", ("t.jsonl", GOOD)),
    _case("finetune-teacher-other-vocabulary", _recipe(_task(), '[distill]\nteachers = ["demo"]\n'),
          r"teacher demo: its vocabulary .* differs from the student's", ("t.jsonl", GOOD)),
    _case("finetune-teachers-and-two-tasks",
          _recipe(_task() + _task().replace('name = "t"', 'name = "u"'), '[distill]\nteachers = ["demo"]\n'),
          r"distill\.teachers works with one task"),
]
