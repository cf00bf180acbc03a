"""Agreement with lm-evaluation-harness: the same checkpoint (HF layout) and the same local
data, scored by `lm_eval --model hf` through task YAMLs that mirror its lambada_openai,
wikitext and hellaswag (tests/evaluate/lm_eval_tasks/), and by `gpt2.evaluate`: every metric
within 1e-4 relative. lm-eval runs offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gpt2.evaluate import evaluate

TASKS_DIR = Path(__file__).parent / "lm_eval_tasks"
FIXTURES = Path(__file__).parent / "fixtures"
COMPARED = {
    "lambada_openai": ("lambada.jsonl", ["acc", "perplexity"]),
    "wikitext": ("wikitext.jsonl", ["word_perplexity", "byte_perplexity", "bits_per_byte"]),
    "hellaswag": ("hellaswag.jsonl", ["acc", "acc_norm"]),
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    pytest.importorskip("lm_eval")
    from transformers import GPT2Config, GPT2LMHeadModel

    from gpt2.tokenizer import Tokenizer

    root = tmp_path_factory.mktemp("agreement")
    ckpt, data, tasks = root / "ckpt", root / "data", root / "tasks"
    for d in (ckpt, data, tasks):
        d.mkdir()
    # A random GPT-2 with a 64-token context (so wikitext pages take several windows), its
    # weights scaled up so that its predictions are far from uniform.
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=64, vocab_size=50257,
                                    initializer_range=0.1)).eval()
    hf.save_pretrained(ckpt)
    tok = Tokenizer.from_pretrained("gpt2")
    tok.save_pretrained(ckpt)

    # LAMBADA: the fixture passages, plus copies whose last word is the model's own greedy
    # word, so that accuracy is not trivially 0.
    lines = (FIXTURES / "lambada.jsonl").read_text().splitlines()
    extra = []
    for line in lines:
        context = " ".join(json.loads(line)["text"].split(" ")[:-1])
        with torch.no_grad():
            nxt = int(hf(torch.tensor([tok.encode(context)])).logits[0, -1].argmax())
        word = tok.decode([nxt])
        if re.fullmatch(r" [A-Za-z]+", word):
            extra.append(json.dumps({"text": context + word}))
    assert len(extra) >= 3
    (data / "lambada.jsonl").write_text("\n".join(lines + extra) + "\n")
    for name in ("wikitext.jsonl", "hellaswag.jsonl"):
        shutil.copy(FIXTURES / name, data / name)
    for f in TASKS_DIR.iterdir():
        if f.suffix in (".yaml", ".py"):
            (tasks / f.name).write_text(f.read_text().replace("@FIXTURES@", str(data)))

    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_DATASETS_CACHE=str(root / "hf-cache"), TOKENIZERS_PARALLELISM="false")
    out = root / "out"
    cmd = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={ckpt}",
           "--tasks", ",".join(f"fixture_{t}" for t in COMPARED), "--include_path", str(tasks),
           "--device", "cpu", "--batch_size", "4", "--output_path", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(Path(sorted(glob.glob(f"{out}/**/results*.json", recursive=True))[-1]).read_text())
    return ckpt, data, results["results"]


@pytest.mark.parametrize("task", list(COMPARED))
def test_same_numbers_as_lm_eval(setup, task):
    ckpt, data, reference = setup
    file, metrics = COMPARED[task]
    ours = evaluate(str(ckpt), task, data / file, batch_size=5)
    theirs = reference[f"fixture_{task}"]
    for metric in metrics:
        assert ours[metric] == pytest.approx(theirs[f"{metric},none"], rel=1e-4, abs=1e-12), metric
    if task == "lambada_openai":
        assert ours["acc"] > 0  # the greedy copies are recognised by both
    if task == "hellaswag":
        # lm-eval's closed-form standard error of a mean is ours too.
        assert ours.metrics[0].stderr == pytest.approx(theirs["acc_stderr,none"], rel=1e-6)
