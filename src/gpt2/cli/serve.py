"""`gpt2 serve`: an OpenAI-compatible HTTP server with continuous batching, and a playground page.

    gpt2 serve                                   # the demo model on http://127.0.0.1:8000
    gpt2 serve --model gpt2 --port 8080          # OpenAI's 124M
    gpt2 serve --model runs/chat/final           # an instruction-tuned checkpoint: its chat template
    gpt2 serve --model demo --adapter runs/lora/final-adapter
    gpt2 serve --host 0.0.0.0 --api-key "$KEY"   # reachable from other machines: set a key

Then open http://127.0.0.1:8000/ for the playground, or point any OpenAI client at
http://127.0.0.1:8000/v1 (curl, the `openai` package, lm-evaluation-harness's local-completions).
GET /health answers 503 while the model loads and 200 once it is ready. SIGTERM stops taking
requests, lets those in flight finish (cancelled after 30 s) and exits 0; Ctrl-C does the same and
exits 130, as every gpt2 command does when interrupted.
Needs the [serve] extra: pip install "gpt2[serve]".
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys

from ..errors import UsageError
from .generate import DTYPES, QUANTIZE, QUANTIZE_HELP
from .numbers import int_in

MAX_BATCH = 1024
MAX_QUEUE = 1_000_000
GRACE_SECONDS = 30  # in-flight requests get this long to finish after SIGTERM
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="an OpenAI-compatible HTTP server (continuous batching) with a playground page",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    p.add_argument("--model", metavar="NAME_OR_DIR", default="demo",
                   help="demo (the bundled demo model, the default), a preset or hub name such as gpt2, "
                        "a checkpoint directory, or a LoRA adapter directory")
    p.add_argument("--adapter", metavar="DIR", help="a LoRA adapter (PEFT's format) put on --model")
    p.add_argument("--model-name", metavar="NAME",
                   help="the model id clients see and send (default: the --model argument)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int_in(0, 65535), default=8000, metavar="PORT",
                   help="the port, 0 to 65535 (default 8000; 0 = any free port)")
    p.add_argument("--api-key", metavar="KEY",
                   help="require 'Authorization: Bearer KEY' on the API (default: no key)")
    p.add_argument("--max-batch", type=int_in(1, MAX_BATCH), default=16, metavar="N",
                   help=f"sequences decoded together, 1 to {MAX_BATCH} (default 16; each holds a "
                        "context's worth of KV cache)")
    p.add_argument("--max-queue", type=int_in(0, MAX_QUEUE), default=256, metavar="N",
                   help="sequences waiting for a slot before requests are refused with 429 (default 256)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps ... (default cpu)")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="float32, bfloat16 or float16 (default float32)")
    p.add_argument("--quantize", choices=QUANTIZE, help=QUANTIZE_HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.api_key is not None and not args.api_key.strip():
        raise UsageError("--api-key is empty; give a key, or leave the option out")
    if args.model_name is not None and not args.model_name.strip():
        raise UsageError("--model-name is empty; give a name, or leave the option out")
    _check_host(args.host)
    _check_port(args.host, args.port)
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as e:
        raise UsageError(f"gpt2 serve needs the [serve] extra ({e.name} is missing): "
                         "pip install \"gpt2[serve]\"") from None
    from ..checkpoint import resolve_checkpoint
    from ..devices import parse_device
    from ..loading import _base_and_adapter
    from ..serve.app import ServeSettings, create_app

    device = parse_device(args.device, "--device")
    base, adapter = _base_and_adapter(args.model, args.adapter)  # a bad adapter fails here, not later
    directory = resolve_checkpoint(base)  # a missing model fails before the server starts
    if args.quantize is not None:
        from ..checkpoint import quantization_config, read_config
        from ..quantize import check_fits, check_kernel

        # What would fail once the model loads fails now, before the server starts.
        check_kernel(args.quantize, device)
        if quantization_config(directory) is not None:
            raise UsageError(f"--quantize {args.quantize}: {base} already holds quantized weights; "
                             f"leave --quantize out")
        check_fits(read_config(directory), args.quantize)
    if args.host not in LOOPBACK and args.api_key is None:
        print(f"gpt2 serve: warning: listening on {args.host} without --api-key: anyone who can reach "
              "this address can use the model", file=sys.stderr)
    settings = ServeSettings(model=args.model, adapter=args.adapter, device=str(device), dtype=args.dtype,
                             quantize=args.quantize,
                             model_name=args.model_name, api_key=args.api_key, max_batch=args.max_batch,
                             max_queue=args.max_queue)
    failure: list[BaseException] = []
    server: uvicorn.Server | None = None

    def stop_on_failure(error: BaseException) -> None:
        failure.append(error)
        if server is not None:
            server.should_exit = True

    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
    app = create_app(settings, on_load_failure=stop_on_failure)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="info", access_log=False,
                            timeout_graceful_shutdown=GRACE_SECONDS, lifespan="on")
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGTERM and then raises the signal again for the handler
    # it found: with Python's default the process would die of it; this one lets run() return 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run()
    except SystemExit:  # uvicorn exits this way when it cannot bind; it has logged why
        pass
    if failure:
        error = failure[0]
        from ..errors import GPT2Error

        if isinstance(error, GPT2Error):
            raise error
        raise UsageError(f"loading {args.model} failed: {type(error).__name__}: {error}")
    if not server.started:  # e.g. the port is taken: uvicorn has said why
        raise UsageError(f"the server could not start on {args.host}:{args.port} (is the port taken? "
                         "the log above says why); choose another --port")
    return 0


def _check_host(host: str) -> None:
    if host in LOOPBACK:
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not host or any(c in host for c in "/ :@") or len(host) > 253:
            raise UsageError(f"--host {host!r} is not an IP address or host name") from None


def _check_port(host: str, port: int) -> None:
    """Bind the address once before anything loads: a taken port is one line, not a log."""
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise UsageError(f"--host {host!r}: cannot resolve it ({e.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind(address)
        except OSError as e:
            raise UsageError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror}); "
                             "choose another port") from None
