"""Serving: `gpt2 serve`, an OpenAI-compatible HTTP API over a continuous-batching engine.

    engine.py      the batching loop: slots, chunked prefill, one decode step for every sequence
    protocol.py    the request bodies (OpenAI's fields, strictly typed) and APIError
    responses.py   events to OpenAI's response objects and stream chunks
    metrics.py     Prometheus metrics
    app.py         the FastAPI app: routes, errors, the API key, the body limit
    playground.html  the page at GET /

    >>> from gpt2.serve import ServeSettings, create_app   # an ASGI app for uvicorn
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import ServeSettings, create_app


def __getattr__(name: str):
    if name in ("ServeSettings", "create_app"):  # FastAPI loads on first use
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ServeSettings", "create_app"]
