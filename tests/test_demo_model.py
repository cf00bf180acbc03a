"""The demo model shipped in the package: what `gpt2 generate` uses when no --model is given."""

from __future__ import annotations

import json
import math

import torch

from gpt2 import GPT2, Tokenizer
from gpt2.checkpoint import DEMO_MODEL_DIR as DEMO_MODEL
from gpt2.cli.main import main


def test_it_ships_in_the_package_within_30_mb():
    files = {p.name: p.stat().st_size for p in DEMO_MODEL.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.json", "merges.txt"} <= set(files)
    assert sum(files.values()) <= 30 * 2**20


def test_it_learned_the_corpus():
    model = GPT2.from_pretrained(DEMO_MODEL)
    tok = Tokenizer.from_pretrained(DEMO_MODEL)
    assert model.config.vocab_size == tok.vocab_size == 8192
    text = ("And God said, Let there be light: and there was light. And God saw the light, "
            "that it was good: and God divided the light from the darkness.")
    ids = torch.tensor([tok.encode(text)])
    with torch.no_grad():
        _, loss = model(ids[:, :-1], ids[:, 1:])
    assert loss.item() < 0.6 * math.log(8192)  # 4.6 measured; chance is ln(8192) = 9.0 nats


def test_generate_uses_it_when_no_model_is_given(capsys):
    assert main(["generate", "ROMEO:", "--max-new-tokens", "24", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip()) > 20
    # ... and it has a name, "demo", everywhere a model is accepted.
    assert main(["generate", "ROMEO:", "--max-new-tokens", "24", "--seed", "1", "--model", "demo"]) == 0
    assert capsys.readouterr().out == out


def test_it_is_named_demo(capsys):
    import gpt2

    assert main(["info", "demo", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["source"] == "demo" and info["config"]["vocab_size"] == 8192
    assert info["parameters"] == GPT2.from_pretrained("demo").num_parameters() == 6_901_760
    model, tok = gpt2.load("demo")
    assert model.config.n_layer == 6 and tok.vocab_size == 8192
