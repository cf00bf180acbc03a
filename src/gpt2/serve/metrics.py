"""The server's Prometheus metrics (GET /metrics, the text format), with prometheus_client.

Each server has its own registry, so several apps in one process (tests) never share counts.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

from .engine import Engine, Observer

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics(Observer):
    """Requests, tokens in and out, queue length, batch size and latency histograms."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("gpt2_requests", "HTTP requests answered, by endpoint and status",
                                ["endpoint", "status"], registry=r)
        self.prompt_tokens = Counter("gpt2_prompt_tokens", "prompt tokens taken in", registry=r)
        self.generation_tokens = Counter("gpt2_generation_tokens", "tokens generated", registry=r)
        self.queue_length = Gauge("gpt2_queue_length", "sequences waiting for a batch slot", registry=r)
        self.batch_size = Gauge("gpt2_batch_size", "sequences in flight (prefilling or decoding)", registry=r)
        self.step_batch = Histogram("gpt2_decode_batch_size", "sequences decoded together per step",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.ttft = Histogram("gpt2_time_to_first_token_seconds", "time from arrival to a sequence's first token",
                              buckets=LATENCY_BUCKETS, registry=r)
        self.itl = Histogram("gpt2_inter_token_latency_seconds", "time between two tokens of a sequence",
                             buckets=TOKEN_BUCKETS, registry=r)
        self.latency = Histogram("gpt2_request_latency_seconds", "time from arrival to the end of a request",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)

    def attach(self, engine: Engine) -> None:
        """The gauges read the engine when scraped."""
        self.queue_length.set_function(lambda: engine.waiting)
        self.batch_size.set_function(lambda: engine.running)

    # Observer: called on the engine's thread.
    def step(self, batch_size: int, waiting: int) -> None:
        if batch_size:
            self.step_batch.observe(batch_size)

    def first_token(self, seconds: float) -> None:
        self.ttft.observe(seconds)

    def inter_token(self, seconds: float) -> None:
        self.itl.observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
