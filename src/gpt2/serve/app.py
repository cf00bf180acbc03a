"""The HTTP API: OpenAI's completions and chat completions, the tokenizer endpoints lm-evaluation-
harness's `local-completions` uses, health, metrics and the playground page.

    GET  /                     the playground (one self-contained page)
    GET  /health               503 while the model loads, 200 when ready
    GET  /metrics              Prometheus text
    GET  /v1/models            the one model served
    POST /v1/completions       prompt(s) -> text; stream, logprobs, echo, n, stop, seed
    POST /v1/chat/completions  messages through the model's chat template -> an answer
    POST /tokenize             {"prompt"} or {"messages"} -> {"tokens", "count", "max_model_len"}
    POST /detokenize           {"tokens"} -> {"prompt"}
    GET  /tokenizer_info       the special tokens, chat template and context length

Every error is OpenAI's {"error": {"message", "type", "param", "code"}} with its status (400 bad
parameter, 401 key, 404, 405, 413 body or prompt too large, 429 queue full, 503 loading or
stopping); a failure inside is logged here and answered 500 with no traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .engine import Engine, EngineStopped, Failed, Finished, Piece, Prompt, QueueFull, SequenceRequest, deliver_all
from .metrics import CONTENT_TYPE, Metrics
from .protocol import (
    APIError,
    ChatRequest,
    CompletionRequest,
    Limits,
    chat_prompt,
    chat_sequences,
    check_ids,
    completion_sequences,
    validation_error,
)
from .responses import Choice, Renderer, new_id, now

log = logging.getLogger("gpt2.serve")

MAX_BODY_BYTES = 8 * 1024 * 1024
# Paths anyone may read without the API key: the page (it asks for the key), health, metrics.
OPEN_PATHS = frozenset({"/", "/health", "/metrics"})


@dataclass
class ServeSettings:
    """What `gpt2 serve` serves and how: the model (as gpt2.load takes it), the name clients see,
    the API key (None: none needed) and the engine's bounds."""

    model: str = "demo"
    adapter: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    quantize: str | None = None  # "int8" / "int4": gpt2.load's
    model_name: str | None = None  # default: model
    api_key: str | None = None
    max_batch: int = 16
    max_queue: int = 256

    @property
    def served_name(self) -> str:
        return self.model_name or self.model


class _Server:
    """What the routes share: the engine once the model is loaded, the tokenizer, the metrics."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.engine: Engine | None = None
        self.tokenizer = None
        self.limits: Limits | None = None
        self.renderer: Renderer | None = None
        self.load_error: BaseException | None = None
        self.stopping = False

    def load(self, loader: Callable[[], tuple[Any, Any]] | None, loop: asyncio.AbstractEventLoop) -> None:
        if loader is None:
            from ..loading import load

            s = self.settings
            model, tokenizer = load(s.model, adapter=s.adapter, device=s.device, dtype=s.dtype,
                                    quantize=s.quantize)
        else:
            model, tokenizer = loader()

        def flush(batch: list) -> None:  # one wake-up of the event loop per engine step
            try:
                loop.call_soon_threadsafe(deliver_all, batch)
            except RuntimeError:  # the event loop has closed: nobody is listening
                pass

        engine = Engine(model, tokenizer, max_batch=self.settings.max_batch, max_queue=self.settings.max_queue,
                        observer=self.metrics, flush=flush)
        self.metrics.attach(engine)
        self.tokenizer = tokenizer
        self.limits = Limits(model.config.n_ctx, model.config.vocab_size)
        self.renderer = Renderer(tokenizer, self.settings.served_name)
        engine.start()
        self.engine = engine
        log.info("ready: %s (KV cache %.0f MiB for %d sequences)", self.settings.served_name,
                 engine.cache.nbytes / 2**20, self.settings.max_batch)

    def ready(self) -> Engine:
        if self.stopping:
            raise APIError(503, "the server is shutting down")
        if self.engine is None:
            raise APIError(503, "the model is still loading; retry when GET /health answers 200")
        return self.engine

    def check_model(self, name: str | None) -> None:
        if name is not None and name != self.settings.served_name:
            raise APIError(404, f"the model {name!r} does not exist; this server serves "
                           f"{self.settings.served_name!r}", "model", "model_not_found")


def create_app(settings: ServeSettings | None = None, *, loader: Callable[[], tuple[Any, Any]] | None = None,
               on_load_failure: Callable[[BaseException], None] | None = None) -> FastAPI:
    """The app for `settings`. The model loads on a thread when the app starts (GET /health
    answers 503 until then): gpt2.load(settings.model, ...), or `loader()` when given (a function
    returning (model, tokenizer), e.g. `lambda: (model, tok)` for a model already in memory).
    `on_load_failure(error)` is called if loading fails (the CLI stops the server)."""
    settings = settings or ServeSettings()
    server = _Server(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def load() -> None:
            try:
                server.load(loader, loop)
            except BaseException as e:  # noqa: BLE001 - reported, and the CLI exits
                server.load_error = e
                log.error("loading %s failed: %s", settings.model, e)
                if on_load_failure is not None:
                    on_load_failure(e)

        loading = threading.Thread(target=load, name="gpt2-load", daemon=True)
        loading.start()
        yield
        server.stopping = True
        loading.join()  # a thread killed mid-load at exit aborts the interpreter
        if server.engine is not None:
            server.engine.stop()

    app = FastAPI(title="gpt2", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server
    _add_error_handlers(app)
    app.add_middleware(_Guard, server=server)

    page = resources.files("gpt2.serve").joinpath("playground.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def playground() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health")
    async def health() -> JSONResponse:
        if server.load_error is not None:
            return JSONResponse({"status": "failed", "error": str(server.load_error)}, status_code=503)
        if server.engine is None or server.stopping:
            return JSONResponse({"status": "loading" if server.engine is None else "stopping"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(server.metrics.text(), media_type=CONTENT_TYPE)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": settings.served_name, "object": "model", "created": 0,
                                            "owned_by": "gpt2", "max_model_len": server.limits and server.limits.n_ctx}]}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        engine = server.ready()
        server.check_model(body.model)
        texts, prompts, sequences = completion_sequences(body, server.tokenizer, server.limits)
        choices = [Choice(i, prompt_text=texts[i // body.n], echo=body.echo) for i in range(len(sequences))]
        prompt_tokens = sum(len(p) for p in prompts)
        server.metrics.prompt_tokens.inc(prompt_tokens * body.n)
        events = _run(engine, sequences, server.metrics, "/v1/completions")
        rid, created = new_id("cmpl"), now()
        if body.stream:
            return _sse(_completion_chunks(server.renderer, rid, created, choices, events, body, prompt_tokens))
        await _collect(request, events, choices)
        return JSONResponse(server.renderer.completion(rid, created, choices, prompt_tokens, body.logprobs is not None))

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request) -> Response:
        engine = server.ready()
        server.check_model(body.model)
        prompt, sequences = chat_sequences(body, server.tokenizer, server.limits)
        choices = [Choice(i) for i in range(len(sequences))]
        server.metrics.prompt_tokens.inc(len(prompt) * body.n)
        events = _run(engine, sequences, server.metrics, "/v1/chat/completions")
        rid, created = new_id("chatcmpl"), now()
        if body.stream:
            return _sse(_chat_chunks(server.renderer, rid, created, choices, events, body, len(prompt)))
        await _collect(request, events, choices)
        return JSONResponse(server.renderer.chat(rid, created, choices, len(prompt), body.logprobs))

    @app.post("/tokenize")
    async def tokenize(request: Request) -> dict[str, Any]:
        server.ready()
        body = await _json_object(request)
        if "messages" in body:
            tokens = chat_prompt(body["messages"], server.tokenizer)
        else:
            prompt = body.get("prompt")
            if not isinstance(prompt, str):
                raise APIError(400, "prompt must be a string (or give messages)", "prompt")
            tokens = server.tokenizer.encode(prompt, allowed_special="all") if prompt else []
        return {"count": len(tokens), "max_model_len": server.limits.n_ctx, "tokens": tokens, "token_strs": None}

    @app.post("/detokenize")
    async def detokenize(request: Request) -> dict[str, Any]:
        server.ready()
        body = await _json_object(request)
        tokens = body.get("tokens")
        if not isinstance(tokens, list) or not all(type(t) is int for t in tokens):
            raise APIError(400, "tokens must be a list of token ids", "tokens")
        check_ids(tokens, server.limits.vocab_size, "tokens")
        return {"prompt": server.tokenizer.decode(tokens)}

    @app.get("/tokenizer_info")
    async def tokenizer_info() -> dict[str, Any]:
        server.ready()
        from ..finetune.instruct import PLAIN_TEMPLATE
        from ..tokenizer import EOT

        tok = server.tokenizer
        return {"tokenizer_class": "GPT2TokenizerFast", "eos_token": EOT, "bos_token": EOT, "unk_token": EOT,
                "pad_token": None, "chat_template": tok.chat_template or PLAIN_TEMPLATE,
                "model_max_length": server.limits.n_ctx, "vocab_size": len(tok),
                "special_tokens": tok.special_tokens}

    return app


# ------------------------------------------------------------------ running sequences

async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise APIError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    return body


async def _run(engine: Engine, sequences: list[SequenceRequest], metrics: Metrics,
               endpoint: str) -> AsyncIterator[list[tuple[int, Any]]]:
    """Submit the sequences; yield their events as they come, in batches (all that are ready).
    Leaving early (the client went away) cancels what is still running."""
    started = time.monotonic()
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()

    def deliver_to(index: int) -> Callable[[Any], None]:  # called on the event loop (flush)
        return lambda event: queue.put_nowait((index, event))

    try:
        handles = engine.submit(sequences, [deliver_to(i) for i in range(len(sequences))])
    except QueueFull as e:
        raise APIError(429, str(e), None, "queue_full") from None
    except EngineStopped as e:
        raise APIError(503, str(e)) from None
    remaining = len(sequences)
    try:
        while remaining:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            for _, event in batch:
                if isinstance(event, Finished):
                    metrics.generation_tokens.inc(event.generated)
                    remaining -= 1
                elif isinstance(event, Failed):
                    remaining -= 1
            if not remaining:
                metrics.latency.labels(endpoint).observe(time.monotonic() - started)
            yield batch
    finally:
        for handle in handles:
            engine.cancel(handle)


async def _collect(request: Request, events: AsyncIterator[list[tuple[int, Any]]], choices: list[Choice]) -> None:
    """Every event into its choice; a client that disconnects first cancels the work."""
    async def consume() -> None:
        async for batch in events:
            for index, event in batch:
                choices[index].take(event)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    work, watch = asyncio.ensure_future(consume()), asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            await events.aclose()
    work.result()  # a consumer error surfaces here
    failed = next((c.error for c in choices if c.error), None)
    if failed:
        raise APIError(503 if "shut down" in failed else 500, failed)


def _sse(chunks: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(chunks, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _data(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False, allow_nan=False)}\n\n"


async def _completion_chunks(renderer: Renderer, rid: str, created: int, choices: list[Choice],
                             events: AsyncIterator[list[tuple[int, Any]]], body: CompletionRequest,
                             prompt_tokens: int) -> AsyncIterator[str]:
    """SSE chunks: per choice the echoed prompt (when asked), the text as it comes (tokens that
    arrived together in one chunk), a last chunk with its finish_reason; then usage when asked,
    and [DONE]."""
    want = body.logprobs is not None
    offsets = [0] * len(choices)
    try:
        if body.echo:
            for c in choices:
                if not want:
                    offsets[c.index] = len(c.prompt_text)
                    yield _data(renderer.completion_chunk(rid, created, c.index, c.prompt_text, None, 0, None))
        async for batch in events:
            out = []
            for index, event in batch:
                c = choices[index]
                c.take(event)
                if isinstance(event, Prompt) and body.echo:
                    out.append(renderer.completion_chunk(rid, created, index, c.prompt_text, event.tokens, 0, None))
                    offsets[index] = sum(len(renderer.token(t.id)) for t in event.tokens)
                elif isinstance(event, Piece):
                    out.append(renderer.completion_chunk(rid, created, index, event.text,
                                                         event.tokens if want else None, offsets[index], None))
                    if want:
                        offsets[index] += sum(len(renderer.token(t.id)) for t in event.tokens)
                elif isinstance(event, Finished):
                    out.append(renderer.completion_chunk(rid, created, index, "", [] if want else None,
                                                         offsets[index], event.reason))
                elif isinstance(event, Failed):
                    yield _data(APIError(500, event.message).body())
                    return
            yield "".join(_data(o) for o in out)
        if body.include_usage:
            from .responses import usage

            yield _data({"id": rid, "object": "text_completion", "created": created, "model": renderer.model_name,
                         "choices": [], "usage": usage(prompt_tokens, choices)})
        yield "data: [DONE]\n\n"
    finally:
        await events.aclose()


async def _chat_chunks(renderer: Renderer, rid: str, created: int, choices: list[Choice],
                       events: AsyncIterator[list[tuple[int, Any]]], body: ChatRequest,
                       prompt_tokens: int) -> AsyncIterator[str]:
    """SSE chunks: per choice a first delta with the role, then the content as it comes, a last
    one with finish_reason; usage when asked; [DONE]."""
    try:
        for c in choices:
            yield _data(renderer.chat_chunk(rid, created, c.index, {"role": "assistant", "content": ""}, None, None))
        async for batch in events:
            out = []
            for index, event in batch:
                choices[index].take(event)
                if isinstance(event, Piece):
                    out.append(renderer.chat_chunk(rid, created, index, {"content": event.text},
                                                   event.tokens if body.logprobs else None, None))
                elif isinstance(event, Finished):
                    out.append(renderer.chat_chunk(rid, created, index, {}, None, event.reason))
                elif isinstance(event, Failed):
                    yield _data(APIError(500, event.message).body())
                    return
            yield "".join(_data(o) for o in out)
        if body.include_usage:
            from .responses import usage

            yield _data({"id": rid, "object": "chat.completion.chunk", "created": created,
                         "model": renderer.model_name, "choices": [], "usage": usage(prompt_tokens, choices)})
        yield "data: [DONE]\n\n"
    finally:
        await events.aclose()


# ------------------------------------------------------------------ errors, key, body size

def _error(e: APIError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
    return JSONResponse(e.body(), status_code=e.status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, e: APIError) -> JSONResponse:
        return _error(e)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        return _error(validation_error(list(e.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        if e.status_code == 404:
            return _error(APIError(404, f"no such endpoint: {request.method} {request.url.path}"))
        if e.status_code == 405:
            return _error(APIError(405, f"{request.method} is not allowed on {request.url.path}"))
        return _error(APIError(e.status_code, str(e.detail)))

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception) -> JSONResponse:
        # uvicorn logs the traceback (Starlette re-raises after this answer); the client gets none
        return _error(APIError(500, f"internal error ({type(e).__name__}); the server log has the details"))


class _Guard:
    """ASGI middleware in front of every route: the API key (when set), the body-size limit
    (413: by Content-Length before the body is read, or as a chunked body is read) and the
    request counter of /metrics."""

    def __init__(self, app: Any, server: _Server) -> None:
        self.app, self.server = app, server
        key = server.settings.api_key
        self.expected = f"Bearer {key}".encode() if key else None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        status = {"code": 500}

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if self.expected is not None and path not in OPEN_PATHS:
                given = dict(scope["headers"]).get(b"authorization", b"")
                if not secrets.compare_digest(given, self.expected):
                    return await self._reply(counting_send, APIError(
                        401, "a valid API key is needed: send the header 'Authorization: Bearer KEY'",
                        None, "invalid_api_key"))
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                return await self._reply(counting_send, _too_large())
            if length is None:  # a chunked body: read it here, up to the limit, then hand it on
                receive = await _buffered(receive)
                if receive is None:
                    return await self._reply(counting_send, _too_large())
            await self.app(scope, receive, counting_send)
        finally:
            endpoint = path if path in _ENDPOINTS else "other"
            self.server.metrics.requests.labels(endpoint, str(status["code"])).inc()

    @staticmethod
    async def _reply(send: Callable, e: APIError) -> None:
        await _error(e)({"type": "http"}, None, send)


_ENDPOINTS = frozenset({"/", "/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions",
                        "/tokenize", "/detokenize", "/tokenizer_info"})


def _too_large() -> APIError:
    return APIError(413, f"the request body is larger than {MAX_BODY_BYTES // 2**20} MiB")


async def _buffered(receive: Callable) -> Callable | None:
    """The whole body read from `receive` (None past MAX_BODY_BYTES), as a receive that gives it
    in one message and then goes on with the original (which reports a disconnect)."""
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > MAX_BODY_BYTES:
            return None
    first = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> dict:
        return first.pop() if first else await receive()

    return replay
