"""Serving: `gpt2 serve` under load (continuous batching) against the same requests one at a
time, and its HTTP overhead at batch 1 against in-process generation; optionally llama.cpp's
server (llama-cpp-python) on the same weights as the peer.

Load test: `--concurrency` streaming clients send `--requests` completions (Shakespeare-ish
prompts, `--max-tokens` each with ignore_eos, temperature 0.8, top_k 40, seed = request index),
and the same requests one at a time on the same server, the two alternating in `--rounds` so
that the machine's slow spells fall on both. Reported: errors (must be 0), generated tokens/s,
time to first token and inter-token latency p50/p99 as the client sees them (a network read
that brings k tokens after a gap g counts k gaps of g/k, as sglang's bench_serving does; tokens
per chunk from logprobs=0), the longest gap between two reads, and the server's RSS.
HTTP overhead: one request streamed at temperature 0, `--overhead-tokens` tokens, against
gpt2.generation.generate in this process on the same weights; they run alternately (never
together: they share the cores), medians of `--repeats`.
Issue targets (demo model, 2-core CPU): concurrent >= 3x one-at-a-time; served >= 0.9x in-process.

    python benchmarks/bench_serve.py                          # the demo model, 64 requests x 64 tokens
    python benchmarks/bench_serve.py --quick                  # a smoke test (< 60 s)
    python benchmarks/bench_serve.py --model gpt2 --repeats 3 # random 124M weights (gpt2 preset), 16 requests
    python benchmarks/bench_serve.py --peer llama-cpp --llama-python /tmp/llamacpp/venv/bin/python \\
        --converter /tmp/llamacpp/src/llama_cpp_python-0.3.36/vendor/llama.cpp/convert_hf_to_gguf.py

--model takes "demo", a preset name (gpt2, gpt2-mini, ...: random weights written to a temporary
checkpoint with GPT-2's bundled vocabulary, seed 0) or a checkpoint directory. Every server is
bound to 127.0.0.1 and stopped on exit, error or Ctrl-C. Exits 1 if any request failed.

The peer needs llama-cpp-python[server] (PyPI has only its sdist: a 15-20 minute CMake build on
2 cores), best in a venv of its own so that its FastAPI pins stay out of this environment:
    python -m venv --system-site-packages /tmp/llamacpp/venv
    /tmp/llamacpp/venv/bin/pip install "llama-cpp-python[server]"
and its converter, vendored in the sdist (vendor/llama.cpp/convert_hf_to_gguf.py with its
conversion/ and gguf-py/ folders beside it; it runs on torch and transformers). The checkpoint is
converted to GGUF f32 once (cached by content under --gguf-cache).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, machine, median  # noqa: E402

PROMPTS = [
    "ROMEO: But soft, what light through yonder window breaks?",
    "First Citizen: Before we proceed any further, hear me speak.",
    "KING RICHARD: Now is the winter of our discontent",
    "HAMLET: To be, or not to be, that is the question:",
    "MACBETH: Is this a dagger which I see before me,",
    "JULIET: O Romeo, Romeo! wherefore art thou Romeo?",
    "PROSPERO: We are such stuff as dreams are made on,",
    "PORTIA: The quality of mercy is not strain'd;",
    "KING LEAR: Blow, winds, and crack your cheeks! rage! blow!",
    "OTHELLO: Keep up your bright swords, for the dew will rust them.",
    "VIOLA: If music be the food of love, play on;",
    "BRUTUS: There is a tide in the affairs of men,",
]
OVERHEAD_PROMPT = "MENENIUS: I tell you, friends, most charitable care"
START_TIMEOUT = 120  # seconds for a server to load its model and answer
REQUEST_TIMEOUT = 600  # seconds for one request (a 124M model at batch 16 is slow here)


# ------------------------------------------------------------------ servers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server subprocess in its own process group, bound to 127.0.0.1; `stop()` (SIGTERM,
    then SIGKILL of the group) is safe to call twice."""

    def __init__(self, name: str, argv: list[str], port: int, ready_path: str, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.url, self.log = name, f"http://127.0.0.1:{port}", log
        with open(log, "w") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                            env={**os.environ, **(env or {})})
        try:
            self._wait_ready(ready_path)
        except BaseException:  # not handed to the caller yet: nobody else would stop it
            self.stop(5)
            raise

    def _wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + path, timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {START_TIMEOUT} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def rss_mib(self) -> tuple[float, float]:
        """(resident memory now, its peak so far) in MiB, from /proc (VmRSS, VmHWM)."""
        values = {}
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_ours(model_dir: str, max_batch: int, threads: int | None, log_dir: Path) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "gpt2.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--model", model_dir, "--max-batch", str(max_batch)]
    env = {"OMP_NUM_THREADS": str(threads)} if threads else None  # torch's intra-op threads
    return Server("gpt2 serve", argv, port, "/health", log_dir / "gpt2-serve.log", env)


def start_llama_cpp(python: str, gguf: Path, n_ctx: int, threads: int | None, log_dir: Path) -> Server:
    port = free_port()
    threads = str(threads or os.cpu_count() or 1)  # its default is half the cores: as many as torch has
    # It serves one request at a time; by default a waiting request cuts the streaming one off
    # after its next chunk (interrupt_requests): off, so that they queue and every one completes.
    argv = [python, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", str(n_ctx), "--n_threads", threads, "--n_threads_batch", threads,
            "--interrupt_requests", "False"]
    return Server("llama-cpp-python server", argv, port, "/v1/models", log_dir / "llama-cpp.log")


# ------------------------------------------------------------------ the model under test

def model_directory(name: str, work: Path) -> str:
    """A checkpoint directory for `name`: demo's bundled one, a fresh random-weight preset
    (seed 0, GPT-2's vocabulary beside it), or `name` itself."""
    from gpt2.checkpoint import resolve_checkpoint
    from gpt2.config import preset_names

    if name in preset_names():
        import torch

        from gpt2 import GPT2, GPT2Config
        from gpt2.tokenizer import Tokenizer

        directory = work / f"random-{name}"
        torch.manual_seed(0)
        GPT2(GPT2Config.preset(name)).save_pretrained(directory)
        Tokenizer.from_pretrained("gpt2").save_pretrained(directory)
        return str(directory)
    return str(resolve_checkpoint(name))


def to_gguf(model_dir: str, python: str, converter: str, cache: Path) -> Path:
    """The checkpoint as GGUF f32, cached by the content of its files (a random preset is written
    afresh each run, the same bytes). The demo model has its own 8,192-token vocabulary, whose
    token-hash llama.cpp's converter does not know; its pre-tokenizer is GPT-2's regex, so an
    unknown hash is taken as "gpt-2"."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "vocab.json", "merges.txt"):
        path = Path(model_dir) / name
        if path.is_file():
            with open(path, "rb") as f:
                while block := f.read(1 << 24):
                    digest.update(block)
    key = digest.hexdigest()[:16]
    out = cache / f"{key}-f32.gguf"
    if out.is_file():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    shim = (
        "import runpy, sys\n"
        f"sys.path.insert(0, {str(Path(converter).parent)!r})\n"
        f"sys.path.insert(1, {str(Path(converter).parent / 'gguf-py')!r})\n"
        "from conversion import base\n"
        "known = base.TextModel.get_vocab_base_pre\n"
        "def pre(self, tokenizer):\n"
        "    try:\n"
        "        return known(self, tokenizer)\n"
        "    except NotImplementedError:\n"
        "        return 'gpt-2'\n"
        "base.TextModel.get_vocab_base_pre = pre\n"
        f"sys.argv = [{converter!r}, {model_dir!r}, '--outtype', 'f32', '--outfile', {str(out) + '.tmp'!r}]\n"
        f"runpy.run_path({converter!r}, run_name='__main__')\n"
    )
    done = subprocess.run([python, "-c", shim], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"GGUF conversion failed:\n{(done.stdout + done.stderr)[-3000:]}")
    os.replace(str(out) + ".tmp", out)
    return out


# ------------------------------------------------------------------ one streamed request

@dataclass
class Outcome:
    """One request as the client saw it: when it was sent, when each read that brought tokens
    arrived and how many it brought; or the error."""

    sent: float
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    error: str | None = None
    usage: int | None = None  # completion_tokens of the closing usage chunk, when the server sent one
    finish: str | None = None  # the finish_reason
    generated: int = 0  # the tokens the request produced, once checked

    @property
    def tokens(self) -> int:
        return sum(n for _, n in self.arrivals)

    @property
    def ttft(self) -> float:
        return self.arrivals[0][0] - self.sent

    def token_gaps(self) -> list[float]:
        """Per token after the first: its read's gap since the previous read, shared among the
        tokens the read brought."""
        gaps = []
        for (before, _), (now, n) in zip(self.arrivals, self.arrivals[1:]):
            gaps += [(now - before) / n] * n
        first_n = self.arrivals[0][1]
        return [0.0] * (first_n - 1) + gaps  # tokens that came with the first one waited for none

    def read_gaps(self) -> list[float]:
        return [b[0] - a[0] for a, b in zip(self.arrivals, self.arrivals[1:])]


def count_tokens(event: dict, per_chunk: bool) -> int:
    """Tokens one SSE event carries: its logprobs' token list (ours, logprobs=0), or one per
    chunk that is not the closing one (llama-cpp-python: about a token per chunk, see check();
    its logprobs would cost it a Python sort of the vocabulary per token)."""
    choices = event.get("choices") or []
    if not choices:
        return 0
    choice = choices[0]
    if per_chunk:
        return 0 if choice.get("finish_reason") else 1
    logprobs = choice.get("logprobs") or {}
    return len(logprobs.get("tokens") or [])


def parse_events(buffer: bytes) -> tuple[list[str], bytes]:
    """Complete SSE `data:` payloads in buffer, and what is left of it. Lines may end in CRLF
    (sse-starlette's, in llama-cpp-python's server)."""
    payloads = []
    buffer = buffer.replace(b"\r\n", b"\n")
    while b"\n\n" in buffer:
        event, buffer = buffer.split(b"\n\n", 1)
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                payloads.append(line[5:].strip().decode())
    return payloads, buffer


def take_read(outcome: Outcome, payloads: list[str], now: float, per_chunk: bool) -> bool:
    """Book one network read's events; True once [DONE] came."""
    n = 0
    for data in payloads:
        if data == "[DONE]":
            if n:
                outcome.arrivals.append((now, n))
            return True
        event = json.loads(data)
        if "error" in event:
            outcome.error = str(event["error"])[:200]
            return True
        if event.get("usage"):
            outcome.usage = event["usage"].get("completion_tokens")
        for choice in event.get("choices") or []:
            outcome.finish = choice.get("finish_reason") or outcome.finish
        n += count_tokens(event, per_chunk)
    if n:
        outcome.arrivals.append((now, n))
    return False


async def stream_async(client: httpx.AsyncClient, url: str, payload: dict, per_chunk: bool) -> Outcome:
    outcome = Outcome(time.perf_counter())
    try:
        async with client.stream("POST", url + "/v1/completions", json=payload) as r:
            if r.status_code != 200:
                outcome.error = f"HTTP {r.status_code}: {(await r.aread())[:200]!r}"
                return outcome
            buffer, done = b"", False
            async for chunk in r.aiter_bytes():
                payloads, buffer = parse_events(buffer + chunk)
                if take_read(outcome, payloads, time.perf_counter(), per_chunk):
                    done = True
                    break
            if not done and outcome.error is None:
                outcome.error = "the stream ended without [DONE]"
    except httpx.HTTPError as e:
        outcome.error = f"{type(e).__name__}: {e}"
    if outcome.error is None:
        check(outcome, payload["max_tokens"], per_chunk)
    return outcome


def check(outcome: Outcome, max_tokens: int, per_chunk: bool) -> None:
    """Set outcome.generated, or outcome.error when the request did not produce max_tokens.
    Counted per chunk, a chunk may hold several tokens (llama-cpp-python holds back tokens that
    end inside a UTF-8 character) or none: there finish_reason "length" is the proof (it is
    given at max_tokens only, and end-of-text was banned), not the count."""
    if per_chunk:
        if outcome.finish != "length":
            outcome.error = f"finish_reason {outcome.finish!r}, expected 'length'"
        else:
            outcome.generated = max_tokens
        return
    counted = outcome.tokens if outcome.arrivals else outcome.usage  # no logprobs asked: usage alone
    if counted != max_tokens:
        outcome.error = f"{counted} tokens, expected {max_tokens}"
    elif outcome.usage not in (None, counted):
        outcome.error = f"usage says {outcome.usage} tokens, the chunks carried {counted}"
    else:
        outcome.generated = counted


def stream_sync(client: httpx.Client, url: str, payload: dict, per_chunk: bool) -> Outcome:
    outcome = Outcome(time.perf_counter())
    with client.stream("POST", url + "/v1/completions", json=payload) as r:
        r.raise_for_status()
        buffer = b""
        for chunk in r.iter_bytes():
            payloads, buffer = parse_events(buffer + chunk)
            if take_read(outcome, payloads, time.perf_counter(), per_chunk):
                break
    if outcome.error is None:
        check(outcome, payload["max_tokens"], per_chunk)
    if outcome.error:
        raise RuntimeError(f"batch-1 request failed: {outcome.error}")
    return outcome


# ------------------------------------------------------------------ the load test

@dataclass
class Flavour:
    """How to talk to one server: its name, URL, the request fields it takes, how to count tokens."""

    name: str
    url: str
    model: str
    per_chunk: bool  # count one token per chunk (no logprobs)
    extra: dict


def ours_flavour(server: Server, model: str) -> Flavour:
    # logprobs=0: each chunk lists its tokens; include_usage: the server's own count at the end
    return Flavour("gpt2 serve", server.url, model, False,
                   {"ignore_eos": True, "logprobs": 0, "stream_options": {"include_usage": True}})


def llama_flavour(server: Server, eot: int) -> Flavour:
    # no ignore_eos there: end-of-text is banned by its logit instead
    return Flavour("llama.cpp server", server.url, "model", True, {"logit_bias": {str(eot): -100.0}})


def payloads(flavour: Flavour, requests: int, max_tokens: int) -> list[dict]:
    return [{"model": flavour.model, "prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": max_tokens,
             "temperature": 0.8, "top_k": 40, "seed": i, "stream": True, **flavour.extra}
            for i in range(requests)]


async def run_load(flavour: Flavour, bodies: list[dict], concurrency: int,
                   deadline: float) -> tuple[list[Outcome], float]:
    """`concurrency` clients working through the bodies; (outcomes, wall seconds)."""
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, limits=limits, trust_env=False) as client:
        outcomes: list[Outcome | None] = [None] * len(bodies)
        next_index = iter(range(len(bodies)))

        async def worker() -> None:
            for i in next_index:  # shared iterator: each body is taken once
                outcomes[i] = await stream_async(client, flavour.url, bodies[i], flavour.per_chunk)

        start = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))),
                               timeout=max(1.0, deadline - time.monotonic()))
        return [o for o in outcomes if o is not None], time.perf_counter() - start


@dataclass
class LoadFigures:
    label: str
    requests: int
    errors: int
    tokens: int
    seconds: float
    ttft: list[float]
    itl: list[float]
    read_gaps: list[float]
    first_error: str | None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def figures(label: str, outcomes: list[Outcome], seconds: float) -> LoadFigures:
    good = [o for o in outcomes if o.error is None and o.arrivals]
    bad = [o for o in outcomes if not (o.error is None and o.arrivals)]
    return LoadFigures(label, len(outcomes), len(bad), sum(o.generated for o in good), seconds,
                       [o.ttft for o in good], [g for o in good for g in o.token_gaps()],
                       [g for o in good for g in o.read_gaps()], bad[0].error if bad else None)


def pct(xs: list[float], q: float) -> float:
    """The q-th percentile (nearest rank on the sorted values); nan when empty."""
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))]


def warm_up(flavour: Flavour, concurrency: int, deadline: float) -> None:
    """A short concurrent round first: the first requests pay for allocations and lazy imports."""
    bodies = payloads(flavour, concurrency, 4)
    outcomes, _ = asyncio.run(run_load(flavour, bodies, concurrency, deadline))
    failed = [o.error for o in outcomes if o.error]
    if failed:
        raise RuntimeError(f"{flavour.name}: the warm-up failed: {failed[0]}")


def load_test(flavour: Flavour, args: argparse.Namespace, deadline: float) -> list[LoadFigures]:
    """The requests in rounds of at least `concurrency`, each round concurrently and then one at
    a time, so that the machine's slow spells fall on both modes alike; times add up."""
    bodies = payloads(flavour, args.requests, args.max_tokens)
    size = max(args.concurrency, -(-len(bodies) // args.rounds))
    outcomes: dict[int, list[Outcome]] = {args.concurrency: [], 1: []}
    seconds = {args.concurrency: 0.0, 1: 0.0}
    for start in range(0, len(bodies), size):
        for clients in outcomes:
            done, took = asyncio.run(run_load(flavour, bodies[start:start + size], clients, deadline))
            outcomes[clients] += done
            seconds[clients] += took
    return [figures(f"{args.concurrency} concurrent", outcomes[args.concurrency], seconds[args.concurrency]),
            figures("one at a time", outcomes[1], seconds[1])]


# ------------------------------------------------------------------ main

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="demo", help="demo, a preset name (random weights) or a checkpoint directory")
    p.add_argument("--requests", type=int, default=None, help="requests in the load test (default 64; 16 for a preset)")
    p.add_argument("--concurrency", type=int, default=16, help="streaming clients at once (default 16)")
    p.add_argument("--max-batch", type=int, default=16, help="the server's --max-batch (default 16)")
    p.add_argument("--max-tokens", type=int, default=64, help="tokens per request (default 64)")
    p.add_argument("--overhead-tokens", type=int, default=200, help="tokens of the batch-1 request (default 200)")
    p.add_argument("--repeats", type=int, default=5, help="alternating batch-1 runs, medians (default 5)")
    p.add_argument("--rounds", type=int, default=4,
                   help="the load test alternates concurrent and one-at-a-time in this many rounds (default 4)")
    p.add_argument("--threads", type=int, default=None,
                   help="compute threads of every server and of in-process generation (default: all cores)")
    p.add_argument("--timeout", type=float, default=900, help="the load test's time limit in seconds (default 900)")
    p.add_argument("--quick", action="store_true", help="a smoke test: 16 requests x 16 tokens, 2 repeats of 32")
    p.add_argument("--peer", choices=["none", "llama-cpp"], default="none",
                   help="also run the load test against llama-cpp-python's server on the same weights (GGUF f32)")
    p.add_argument("--llama-python", default=sys.executable, help="a Python with llama-cpp-python[server] installed")
    p.add_argument("--converter", default=os.environ.get("LLAMA_CPP_CONVERT"),
                   help="llama.cpp's convert_hf_to_gguf.py (the llama-cpp-python sdist vendors it)")
    p.add_argument("--gguf-cache", type=Path, default=Path(tempfile.gettempdir()) / "bench_serve_gguf")
    args = p.parse_args()
    from gpt2.config import preset_names

    if args.quick:
        args.requests, args.max_tokens, args.overhead_tokens, args.repeats = args.requests or 16, 16, 32, 2
        args.rounds = 1
    args.requests = args.requests or (16 if args.model in preset_names() else 64)
    if args.concurrency < 2 or args.requests < 1 or args.rounds < 1:
        p.error("--concurrency must be at least 2, --requests and --rounds at least 1")
    if args.peer == "llama-cpp" and not args.converter:
        p.error("--peer llama-cpp needs --converter (llama.cpp's convert_hf_to_gguf.py)")
    # SIGTERM as an exception, so that the finally below stops the servers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    servers: list[Server] = []
    work = tempfile.TemporaryDirectory(prefix="bench_serve_")
    try:
        return run(args, Path(work.name), servers)
    finally:
        for server in servers:
            server.stop()
        work.cleanup()


def run(args: argparse.Namespace, work: Path, servers: list[Server]) -> int:
    import torch

    from gpt2 import load
    from gpt2.generation import generate

    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = model_directory(args.model, work)
    model, tok = load(model_dir)
    n_ctx = model.config.n_ctx
    longest = max(len(tok.encode(p)) for p in [*PROMPTS, OVERHEAD_PROMPT])
    if longest + max(args.max_tokens, args.overhead_tokens) > n_ctx:
        raise SystemExit(f"prompt ({longest}) + tokens exceed the model's context of {n_ctx}: lower --max-tokens "
                         "or --overhead-tokens")
    params = sum(t.numel() for t in model.parameters())
    load1 = os.getloadavg()[0]
    print(f"# serving, model {args.model} ({params / 1e6:,.1f}M parameters, n_ctx {n_ctx}), float32, "
          f"--max-batch {args.max_batch}; compute threads: {args.threads or 'all cores'} (servers and in-process)")
    print(f"# machine: {machine()}; load average before: {load1:.2f}")
    print(f"# load test: {args.requests} requests x {args.max_tokens} tokens (ignore_eos), temperature 0.8, "
          f"top_k 40, seed = request index; {args.concurrency} concurrent clients, then the same one at a time, "
          f"alternating in {args.rounds} round(s)")

    deadline = time.monotonic() + args.timeout
    ours = start_ours(model_dir, args.max_batch, args.threads, work)
    servers.append(ours)
    flavours = [ours_flavour(ours, model_dir)]
    if args.peer == "llama-cpp":
        gguf = to_gguf(model_dir, args.llama_python, args.converter, args.gguf_cache)
        peer = start_llama_cpp(args.llama_python, gguf, n_ctx, args.threads, work)
        servers.append(peer)
        flavours.append(llama_flavour(peer, tok.eot_token))

    rss_start = ours.rss_mib()[0]
    for flavour in flavours:
        warm_up(flavour, args.concurrency, deadline)
    rss_warm = ours.rss_mib()[0]
    results: dict[str, list[LoadFigures]] = {}
    for flavour in flavours:  # one server at a time: they share the cores
        results[flavour.name] = load_test(flavour, args, deadline)
    rss_end, rss_peak = ours.rss_mib()

    print("\n| server | clients | requests | errors | tokens/s | TTFT p50 | TTFT p99 | ITL p50 | ITL p99 "
          "| longest gap |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    errors = 0
    for name, rows in results.items():
        for f in rows:
            errors += f.errors
            print(f"| {name} | {f.label} | {f.requests} | {f.errors} | {f.tokens_per_s:,.1f} | "
                  f"{pct(f.ttft, 50) * 1e3:,.0f} ms | {pct(f.ttft, 99) * 1e3:,.0f} ms | "
                  f"{pct(f.itl, 50) * 1e3:,.1f} ms | {pct(f.itl, 99) * 1e3:,.1f} ms | "
                  f"{max(f.read_gaps, default=float('nan')) * 1e3:,.0f} ms |")
            if f.first_error:
                print(f"#   first error ({name}, {f.label}): {f.first_error}")
    ratio = results["gpt2 serve"][0].tokens_per_s / results["gpt2 serve"][1].tokens_per_s
    print(f"\nconcurrent / one at a time (gpt2 serve): {ratio:.2f}x (target >= 3x)")
    if "llama.cpp server" in results:
        theirs, mine = results["llama.cpp server"], results["gpt2 serve"]
        print(f"llama.cpp server concurrent / one at a time: {theirs[0].tokens_per_s / theirs[1].tokens_per_s:.2f}x; "
              f"gpt2 serve / llama.cpp server, concurrent: {mine[0].tokens_per_s / theirs[0].tokens_per_s:.2f}x, "
              f"one at a time: {mine[1].tokens_per_s / theirs[1].tokens_per_s:.2f}x")
    print(f"gpt2 serve RSS: {rss_start:,.0f} MiB ready, {rss_warm:,.0f} MiB after the warm-up, "
          f"{rss_end:,.0f} MiB at the end (peak {rss_peak:,.0f} MiB); change after the warm-up "
          f"{rss_end - rss_warm:+,.1f} MiB")

    # ---- batch 1: HTTP overhead against in-process generation, run alternately
    n = args.overhead_tokens
    body = {"model": model_dir, "prompt": OVERHEAD_PROMPT, "max_tokens": n, "temperature": 0, "stream": True,
            "ignore_eos": True, "stream_options": {"include_usage": True}}
    fns: dict[str, Callable[[], object]] = {}
    with httpx.Client(timeout=REQUEST_TIMEOUT, trust_env=False) as client:
        fns["gpt2 serve, one streamed request"] = lambda: stream_sync(client, ours.url, body, False)
        fns["gpt2.generation.generate, in-process"] = lambda: generate(
            model, tok, OVERHEAD_PROMPT, temperature=0, max_new_tokens=n, stop_token_ids=())
        if args.peer == "llama-cpp":
            peer_body = {**body, "model": "model", "logit_bias": {str(tok.eot_token): -100.0}}
            for key in ("ignore_eos", "stream_options"):
                peer_body.pop(key)
            fns["llama.cpp server, one streamed request"] = lambda: stream_sync(client, peer.url, peer_body, True)
        with torch.inference_mode():
            times = interleaved(fns, repeats=args.repeats)
    print(f"\n# batch 1: one request, {n} tokens, temperature 0, {args.repeats} alternating runs, medians "
          f"(spread min-max)")
    print("| | tokens/s | ms / token | spread tokens/s |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {n / median(ts):,.1f} | {median(ts) / n * 1e3:,.2f} | "
              f"{n / max(ts):,.1f}-{n / min(ts):,.1f} |")
    served = median(times["gpt2 serve, one streamed request"])
    inproc = median(times["gpt2.generation.generate, in-process"])
    print(f"\nserved / in-process tokens/s: {inproc / served:.2f}x (target >= 0.9x)")
    if args.peer == "llama-cpp":
        peer_t = median(times["llama.cpp server, one streamed request"])
        print(f"gpt2 serve / llama.cpp server at batch 1: {peer_t / served:.2f}x")
    print(f"# load average after: {os.getloadavg()[0]:.2f}; per-run times (s): "
          + "; ".join(f"{k}: {', '.join(f'{t:.2f}' for t in v)}" for k, v in times.items()))
    if errors:
        print(f"\nFAILED: {errors} request(s) errored", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
