"""Shared assets for the bad-input table: small, real inputs that the rows break in one way each.

Built once per session with the package's own commands, so a row differs from a working call
only in the one thing it gets wrong.
"""

from __future__ import annotations

import json
import lzma
import subprocess
import sys
from pathlib import Path

import pytest


def _gpt2(*argv: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "gpt2.cli.main", *argv], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> dict[str, Path]:
    """Paths a row may name as {ckpt}, {text}, {textdir}, {jsonl}, {data}, {recipe}, {run}, {tokdir},
    {tasks} (a task file), {ftrecipe} (a fine-tuning recipe), {ftmodel} (its fine-tuned model) and
    {qckpt} ({ckpt} quantized to int8)."""
    from gpt2.config import GPT2Config
    from gpt2.data.corpus import corpus_path
    from gpt2.model import GPT2
    from gpt2.tokenizer import Tokenizer

    root = tmp_path_factory.mktemp("bad-input-assets")
    import torch

    torch.manual_seed(0)
    ckpt = root / "ckpt"  # a tiny GPT-2 with GPT-2's vocabulary, tokenizer files beside it
    GPT2(GPT2Config.preset("gpt2-nano").replace(n_ctx=64)).save_pretrained(ckpt)
    Tokenizer.from_pretrained("gpt2").save_pretrained(ckpt)

    textdir = root / "textdir"  # 40 short documents from the bundled corpus
    textdir.mkdir()
    jsonl = root / "docs.jsonl"
    with lzma.open(corpus_path("demo"), "rt", encoding="utf-8") as f, open(jsonl, "w") as out:
        for i, line in enumerate(f):
            if i == 40:
                break
            text = json.loads(line)["text"][:3000]
            (textdir / f"doc{i:02d}.txt").write_text(text, encoding="utf-8")
            out.write(json.dumps({"text": text}) + "\n")
    text = root / "text.txt"
    text.write_text((textdir / "doc00.txt").read_text(encoding="utf-8"), encoding="utf-8")

    data = root / "data"
    _gpt2("prepare", str(textdir), "-o", str(data), "--val-fraction", "0.2", "--workers", "0",
          "--no-quality", "-q", cwd=root)

    run = root / "run"  # a finished run directory's metrics, for `gpt2 plot`
    run.mkdir()
    with open(run / "metrics.jsonl", "w") as f:
        for step in range(1, 6):
            f.write(json.dumps({"step": step, "loss": 5.0 - step * 0.1, "lr": 1e-3}) + "\n")

    recipe = root / "recipe.toml"  # a 2-step run on {data}; rows override run_dir under {tmp}
    recipe.write_text(
        'run_dir = "run"\n'
        '[model]\npreset = "gpt2-nano"\nn_ctx = 64\n'
        f'[data]\ndir = "{data}"\nseq_len = 32\n'
        '[train]\nmax_steps = 2\nbatch_size = 2\nmicro_batch_size = 2\n'
        '[eval]\ninterval = 0\nsamples = 0\n'
        '[checkpoint]\ninterval = 0\n'
    )
    tasks = root / "tasks.jsonl"  # a two-class task file for `gpt2 finetune` / `gpt2 predict`
    tasks.write_text("".join(json.dumps({"text": f"text number {i}", "label": "ab"[i % 2]}) + "\n"
                             for i in range(8)))
    ftrecipe = root / "finetune.toml"  # a 1-step fine-tuning run of {ckpt} on {tasks}
    ftrecipe.write_text(
        'run_dir = "run"\n'
        f'[model]\ninit_from = "{ckpt}"\n'
        '[train]\nmax_steps = 1\nbatch_size = 4\nmicro_batch_size = 4\ndevice = "cpu"\n'
        f'[[tasks]]\nname = "ab"\ntype = "classification"\ntrain = "{tasks}"\n'
    )
    _gpt2("finetune", str(ftrecipe), f"run_dir={root / 'ftrun'}", cwd=root)
    ftmodel = root / "ftrun" / "final"
    qckpt = root / "qckpt"  # {ckpt} with int8 weights
    _gpt2("quantize", str(ckpt), "-o", str(qckpt), cwd=root)
    return {"qckpt": qckpt, "root": root, "ckpt": ckpt, "text": text, "textdir": textdir, "jsonl": jsonl,
            "data": data, "run": run, "recipe": recipe, "tasks": tasks, "ftrecipe": ftrecipe,
            "ftmodel": ftmodel}
