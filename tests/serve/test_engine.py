"""The continuous-batching engine in-process: the same tokens as generate(), whatever else is in the
batch; prompt logprobs equal to the model's log-softmax; slots freed on cancel; bounded queue."""

from __future__ import annotations

import threading

import pytest
import torch

from gpt2 import load
from gpt2.generation import SamplingOptions, generate
from gpt2.serve.engine import Engine, Failed, Finished, Piece, Prompt, QueueFull, SequenceRequest

WAIT = 60  # seconds: a hang fails the test


@pytest.fixture(scope="module")
def demo():
    return load("demo")


class Collector:
    """Events of several sequences, and an event set when all have finished."""

    def __init__(self, n: int) -> None:
        self.text = [""] * n
        self.tokens: list[list[int]] = [[] for _ in range(n)]
        self.prompt: list[list] = [[] for _ in range(n)]
        self.end: list[object] = [None] * n
        self.all_done = threading.Event()
        self.first_piece = threading.Event()

    def deliver(self, i: int):
        def take(event) -> None:
            if isinstance(event, Piece):
                self.text[i] += event.text
                self.tokens[i] += [t.id for t in event.tokens]
                self.first_piece.set()
            elif isinstance(event, Prompt):
                self.prompt[i] = event.tokens
            else:
                self.end[i] = event
                if all(e is not None for e in self.end):
                    self.all_done.set()
        return take

    def run(self, engine: Engine, requests: list[SequenceRequest]) -> Collector:
        engine.submit(requests, [self.deliver(i) for i in range(len(requests))])
        assert self.all_done.wait(WAIT), "the engine did not finish"
        return self


@pytest.fixture
def engine(demo):
    model, tok = demo
    e = Engine(model, tok, max_batch=16, max_queue=8)
    e.start()
    yield e
    e.stop()


PROMPTS = ["ROMEO:", "JULIET:\nO Romeo, Romeo", "KING HENRY:", "First Citizen:\nBefore we proceed any further",
           "To be, or not", "O", "HAMLET: Alas, poor Yorick! I knew him, Horatio", "MACBETH:\nTomorrow"] * 2


def test_greedy_tokens_equal_generate_alone_and_among_15_others(demo, engine):
    model, tok = demo
    greedy = SamplingOptions(temperature=0)
    reference = generate(model, tok, PROMPTS, greedy, max_new_tokens=40)
    requests = [SequenceRequest(tok.encode(p), greedy, 40) for p in PROMPTS]
    together = Collector(16).run(engine, requests)
    for i, sample in enumerate(reference):
        assert together.tokens[i] == sample.tokens, f"prompt {i} among 15 others"
        assert together.text[i] == sample.text
        assert together.end[i] == Finished("length" if sample.finish_reason == "length" else "stop",
                                           len(sample.tokens) + (sample.finish_reason != "length"))
    for i in (0, 6):  # and alone
        alone = Collector(1).run(engine, [requests[i]])
        assert alone.tokens[0] == reference[i].tokens


def test_seeded_samples_equal_generate_samples(demo, engine):
    model, tok = demo
    options = SamplingOptions(temperature=0.9, top_k=40, top_p=0.95, seed=11)
    reference = generate(model, tok, "ROMEO:", options, n_samples=3, max_new_tokens=30)
    # Mixed with greedy rows and other settings: each row keeps its own processors and generator.
    others = [SequenceRequest(tok.encode(p), SamplingOptions(temperature=0), 30) for p in PROMPTS[:5]]
    mine = [SequenceRequest(tok.encode("ROMEO:"), options, 30, sample_index=j) for j in range(3)]
    got = Collector(8).run(engine, others + mine)
    assert [got.tokens[5 + j] for j in range(3)] == [s.tokens for s in reference]


def test_echo_logprobs_are_the_models_log_softmax(demo, engine):
    model, tok = demo
    prompt = tok.encode(" ".join(["Now is the winter of our discontent"] * 40))[:250]  # almost the whole context
    got = Collector(1).run(engine, [SequenceRequest(prompt, SamplingOptions(temperature=0), 0, logprobs=3,
                                                    echo=True)])
    with torch.no_grad():
        logprobs = model(torch.tensor([prompt]))[0].float().log_softmax(-1)
    infos = got.prompt[0]
    assert [t.id for t in infos] == prompt
    assert infos[0].logprob is None
    for j in range(1, len(prompt)):
        assert infos[j].logprob == pytest.approx(logprobs[j - 1, prompt[j]].item(), abs=1e-5)
        top = logprobs[j - 1].topk(3)
        assert [t for t, _ in infos[j].top] == top.indices.tolist()
    assert got.end[0] == Finished("length", 0) and got.tokens[0] == []


def test_long_prompts_are_prefilled_in_chunks(demo, monkeypatch):
    """A prompt longer than a chunk goes in pieces, while other sequences decode; the echoed
    logprobs across the chunk boundaries still equal the model's."""
    from gpt2.serve import engine as engine_module

    monkeypatch.setattr(engine_module, "PREFILL_CHUNK", 16)
    model, tok = demo
    e = Engine(model, tok, max_batch=4)
    e.start()
    try:
        prompt = tok.encode("All the world's a stage, and all the men and women merely players. " * 4)[:100]
        requests = [SequenceRequest(tok.encode("ROMEO:"), SamplingOptions(temperature=0), 30),
                    SequenceRequest(prompt, SamplingOptions(temperature=0), 5, logprobs=0, echo=True)]
        got = Collector(2).run(e, requests)
    finally:
        e.stop()
    with torch.no_grad():
        logprobs = model(torch.tensor([prompt]))[0].float().log_softmax(-1)
    expected = [logprobs[j - 1, prompt[j]].item() for j in range(1, len(prompt))]
    assert [t.logprob for t in got.prompt[1][1:]] == pytest.approx(expected, abs=1e-5)
    assert got.tokens[0] == generate(model, tok, "ROMEO:", temperature=0, max_new_tokens=30)[0].tokens
    assert got.tokens[1] == generate(model, tok, prompt, temperature=0, max_new_tokens=5)[0].tokens


def test_cancel_frees_the_slot_and_the_queue_is_bounded(demo):
    model, tok = demo
    e = Engine(model, tok, max_batch=2, max_queue=1)
    e.start()
    try:
        forever = SamplingOptions(temperature=0, stop_token_ids=())
        long = [SequenceRequest(tok.encode("ROMEO:"), forever, 200) for _ in range(2)]
        running = Collector(2)
        handles = e.submit(long, [running.deliver(i) for i in range(2)])
        assert running.first_piece.wait(WAIT)
        waiting = Collector(1)
        e.submit([SequenceRequest(tok.encode("O"), forever, 3)], [waiting.deliver(0)])
        with pytest.raises(QueueFull):  # 2 running, 1 waiting: full
            e.submit([SequenceRequest(tok.encode("O"), forever, 3)], [Collector(1).deliver(0)])
        for h in handles:
            e.cancel(h)
        assert waiting.all_done.wait(WAIT), "a cancelled sequence kept its slot"
        assert waiting.end[0] == Finished("length", 3)
        assert running.end == [None, None]  # nothing is delivered after a cancel
        assert e.running == 0 and e.waiting == 0
    finally:
        e.stop()


def test_stop_fails_what_is_left(demo):
    model, tok = demo
    e = Engine(model, tok, max_batch=1)
    e.start()
    got = Collector(2)
    e.submit([SequenceRequest(tok.encode("O"), SamplingOptions(temperature=0, stop_token_ids=()), 250)] * 2,
             [got.deliver(0), got.deliver(1)])
    assert got.first_piece.wait(WAIT)
    e.stop()
    assert got.all_done.wait(WAIT)
    assert all(isinstance(end, Failed) for end in got.end)


def test_stop_strings_cut_text_and_tokens(demo, engine):
    model, tok = demo
    options = SamplingOptions(temperature=0, stop=("\n",))
    reference = generate(model, tok, "ROMEO:\nWhat", options, max_new_tokens=40)[0]
    got = Collector(1).run(engine, [SequenceRequest(tok.encode("ROMEO:\nWhat"), options, 40, logprobs=0)])
    assert got.text[0] == reference.text and "\n" not in got.text[0]
    assert got.tokens[0] == reference.tokens
    assert got.end[0].reason == "stop"
