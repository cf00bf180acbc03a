"""Bad inputs to `gpt2 serve`: numbers out of range, empty keys and names, hosts that are not
addresses, a port already taken, models and adapters that cannot be loaded, devices and dtypes
that do not exist: every such row fails before a server starts (nothing listens, nothing is
written). And Ctrl-C on a running server."""

from __future__ import annotations

import socket

from .harness import Case

M = ("--model", "{ckpt}")


def bad(option: str, value: str, match: str, id_: str) -> Case:
    return Case(f"serve-{id_}", ("serve", option, value, *M), match=rf"argument {option}: .*{match}")


def _taken_port() -> int:
    """A port this process listens on for the whole session: `gpt2 serve` must refuse it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    _HELD.append(s)
    return s.getsockname()[1]


_HELD: list[socket.socket] = []

CASES = [
    bad("--port", "65536", r"out of range", "port-too-big"),
    bad("--port", "-1", r"out of range", "port-negative"),
    bad("--port", "http", r"'http' is not an integer", "port-word"),
    Case("serve-port-taken", ("serve", "--port", str(_taken_port()), *M), match=r"--port \d+: cannot listen"),
    bad("--max-batch", "0", r"out of range", "max-batch-zero"),
    bad("--max-batch", "1e9", r"is not an integer", "max-batch-float"),
    bad("--max-batch", "100000", r"out of range", "max-batch-huge"),
    bad("--max-queue", "-1", r"out of range", "max-queue-negative"),
    bad("--max-queue", "nan", r"is not an integer", "max-queue-nan"),
    Case("serve-api-key-empty", ("serve", "--api-key", "", *M), match=r"--api-key is empty"),
    Case("serve-model-name-empty", ("serve", "--model-name", " ", *M), match=r"--model-name is empty"),
    Case("serve-host-bad", ("serve", "--host", "http://x/", *M), match=r"--host 'http://x/' is not an IP address"),
    Case("serve-host-unresolvable", ("serve", "--host", "no-such-host.invalid", *M), match=r"cannot resolve"),
    Case("serve-model-missing", ("serve", "--model", "{tmp}/nope"), match=r"nope: no such checkpoint directory"),
    Case("serve-model-is-a-file", ("serve", "--model", "{text}"), match=r"not a directory"),
    Case("serve-adapter-missing", ("serve", *M, "--adapter", "{tmp}/nope"), match=r"nope"),
    Case("serve-adapter-not-an-adapter", ("serve", *M, "--adapter", "{ckpt}"), match=r"adapter_config\.json"),
    Case("serve-device-cuda", ("serve", "--device", "cuda", *M), match=r"--device 'cuda': CUDA is not available"),
    Case("serve-device-banana", ("serve", "--device", "banana", *M), match=r"--device 'banana' is not a device"),
    Case("serve-dtype-banana", ("serve", "--dtype", "banana", *M), match=r"argument --dtype: invalid choice"),
    Case("serve-quantize-int3", ("serve", "--quantize", "int3", *M), match=r"argument --quantize: invalid choice"),
    Case("serve-quantize-already-quantized", ("serve", "--quantize", "int8", "--model", "{qckpt}"),
         match=r"--quantize int8: .*qckpt already holds quantized weights; leave --quantize out"),
    Case("serve-quantize-int4-narrow-model", ("serve", "--quantize", "int4", "--port", "0", *M),
         match=r"int4 with groups of 32 needs n_embd to be a multiple of 32"),
    Case("serve-stdout-closed", ("serve", "--port", "65536", *M), stdout="closed", match=r"out of range"),
    # Ctrl-C once it serves: a graceful stop, exit 130 (SIGTERM's exit 0: tests/serve/test_api.py).
    Case("serve-ctrl-c-while-serving", ("serve", "--port", "0", *M), interrupt=r"Uvicorn running", expect=130),
]
