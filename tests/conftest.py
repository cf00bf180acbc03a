"""Shared fixtures: small randomly initialised transformers GPT-2 checkpoints.

Real GPT-2 weights cannot be downloaded here; a random `transformers` model written with
`save_pretrained` exercises the same loading code that a downloaded checkpoint takes.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import torch

# Tests never reach for the network: a hub name must fail fast, and no telemetry.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make_hf_model(seed: int = 0, **config):
    """A randomly initialised transformers GPT2LMHeadModel in eval mode (float32)."""
    from transformers import GPT2Config as HFConfig
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    defaults = dict(n_layer=2, n_embd=64, n_head=4, n_positions=128, vocab_size=50257)
    hf_config = HFConfig(**(defaults | config))
    # Random biases and LayerNorm affine parameters too, so that every tensor is checked.
    model = GPT2LMHeadModel(hf_config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.fixture()
def demo_adapter(tmp_path) -> Path:
    """A LoRA adapter (r 4 on c_attn) on the demo model, saved in PEFT's format with base "demo".
    PEFT starts B at zero (no change); here B is random, so the adapter really changes the outputs."""
    directory = tmp_path / "demo-adapter"
    from gpt2 import load
    from gpt2.finetune.lora import LoRAConfig, apply_lora, save_adapter

    model, _ = load("demo")
    apply_lora(model, LoRAConfig(r=4, alpha=8.0))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    save_adapter(model, directory, base_model_name_or_path="demo")
    return directory


@pytest.fixture(scope="session")
def hf_model_factory():
    """make_hf_model, for tests that need transformers models of their own shapes."""
    return make_hf_model


@pytest.fixture(scope="session")
def hf_checkpoint(tmp_path_factory) -> Path:
    """Directory of a tiny random GPT-2 written by transformers' save_pretrained."""
    directory = tmp_path_factory.mktemp("hf-gpt2-tiny")
    make_hf_model().save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for the module's tests, then as it was."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run_bounded(argv: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    """Run a command in its own process group; a hang fails the test (killing the whole group:
    torchrun's workers hold the pipes) instead of blocking the suite."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError(f"still running after {timeout} s (a hang); stderr: {err[-2000:]}") from None
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


@pytest.fixture(scope="session")
def run_bounded():
    """run_bounded(argv, timeout, **popen_kw) -> CompletedProcess; a hang fails the test."""
    return _run_bounded
