"""Tiny random GPT-2s saved by transformers itself: the references for the heads."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory):
    """A random transformers GPT2LMHeadModel (vocabulary 300, 2 layers) in a directory."""
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=300, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(config)
    path = tmp_path_factory.mktemp("tiny-hf")
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """A tiny random GPT2 (2 layers, width 32) with the demo model's 8,192-token tokenizer."""
    from gpt2 import GPT2, GPT2Config
    from gpt2.loading import load_tokenizer

    torch.manual_seed(0)
    model = GPT2(GPT2Config(vocab_size=8192, n_ctx=64, n_embd=32, n_layer=2, n_head=4))
    path = tmp_path_factory.mktemp("tiny-ckpt")
    model.save_pretrained(path)
    load_tokenizer("demo").save_pretrained(path, model_max_length=64)
    return path


def write_jsonl(path, records) -> str:
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


@pytest.fixture
def jsonl():
    """write_jsonl(path, records) -> str(path)."""
    return write_jsonl


@pytest.fixture
def sentiment_files(tmp_path):
    """A separable two-class task: the label says which of two word lists a text is drawn from."""
    import random

    rng = random.Random(0)
    happy, sad = ["good", "great", "joy", "love", "sun"], ["bad", "awful", "grief", "hate", "rain"]

    def records(n):
        out = []
        for i in range(n):
            label = "pos" if i % 2 else "neg"
            words = happy if label == "pos" else sad
            out.append({"text": " ".join(rng.choice(words) for _ in range(rng.randint(3, 8))), "label": label})
        return out

    return write_jsonl(tmp_path / "train.jsonl", records(64)), write_jsonl(tmp_path / "valid.jsonl", records(16))
