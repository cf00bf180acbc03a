"""The engine's events as OpenAI's response objects: whole responses and streamed chunks.

A request's choices are numbered prompt by prompt (choice i*n + j is sample j of prompt i), as
OpenAI and vLLM number them. Logprobs are the model's own (log-softmax of the logits, before
temperature and the filters); each token's `top_logprobs` lists the most likely tokens and, as
vLLM does, the token itself when it is not among them. With echo, the first prompt token has
no logprob (null), as in OpenAI's API. `text_offset` is each token's offset in the choice's text.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .engine import Failed, Finished, Piece, Prompt, TokenInfo


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@dataclass
class Choice:
    """One choice as its events arrive."""

    index: int
    prompt_text: str = ""  # the echoed prompt
    echo: bool = False
    text: str = ""
    prompt_tokens: list[TokenInfo] = field(default_factory=list)
    tokens: list[TokenInfo] = field(default_factory=list)
    finish_reason: str | None = None
    generated: int = 0
    error: str | None = None

    def take(self, event: Any) -> None:
        if isinstance(event, Piece):
            self.text += event.text
            self.tokens += event.tokens
        elif isinstance(event, Prompt):
            self.prompt_tokens = event.tokens
        elif isinstance(event, Finished):
            self.finish_reason, self.generated = event.reason, event.generated
        elif isinstance(event, Failed):
            self.error = event.message

    @property
    def done(self) -> bool:
        return self.finish_reason is not None or self.error is not None


class Renderer:
    """Token ids to the strings and objects of responses, for one tokenizer."""

    def __init__(self, tokenizer, model_name: str) -> None:
        self.tokenizer, self.model_name = tokenizer, model_name

    def token(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    # ---------------------------------------------------------------- completions

    def completion_logprobs(self, infos: list[TokenInfo], offset: int = 0) -> dict[str, Any]:
        """OpenAI's legacy logprobs object for these tokens, offsets counted from `offset`."""
        tokens, offsets = [], []
        for info in infos:
            tokens.append(self.token(info.id))
            offsets.append(offset)
            offset += len(tokens[-1])
        return {"tokens": tokens, "token_logprobs": [i.logprob for i in infos],
                "top_logprobs": [None if i.logprob is None else self._top(i) for i in infos],
                "text_offset": offsets}

    def _top(self, info: TokenInfo) -> dict[str, float]:
        top: dict[str, float] = {}
        for token_id, logprob in (*info.top, (info.id, info.logprob)):
            key = self.token(token_id)
            top[key] = max(top.get(key, float("-inf")), logprob)
        return top

    def completion(self, request_id: str, created: int, choices: list[Choice], prompt_tokens: int,
                   logprobs: bool) -> dict[str, Any]:
        out = []
        for c in choices:
            infos = (c.prompt_tokens if c.echo else []) + c.tokens
            out.append({"index": c.index, "text": (c.prompt_text if c.echo else "") + c.text,
                        "logprobs": self.completion_logprobs(infos) if logprobs else None,
                        "finish_reason": c.finish_reason})
        return {"id": request_id, "object": "text_completion", "created": created, "model": self.model_name,
                "choices": out, "usage": usage(prompt_tokens, choices)}

    def completion_chunk(self, request_id: str, created: int, index: int, text: str,
                         infos: list[TokenInfo] | None, offset: int, finish_reason: str | None) -> dict[str, Any]:
        return {"id": request_id, "object": "text_completion", "created": created, "model": self.model_name,
                "choices": [{"index": index, "text": text,
                             "logprobs": None if infos is None else self.completion_logprobs(infos, offset),
                             "finish_reason": finish_reason}]}

    # ---------------------------------------------------------------- chat

    def chat_logprobs(self, infos: list[TokenInfo]) -> dict[str, Any]:
        def entry(token_id: int, logprob: float) -> dict[str, Any]:
            return {"token": self.token(token_id), "logprob": logprob,
                    "bytes": list(self.tokenizer.token_bytes(token_id))}

        # Chat shows the answer's tokens only: the end-of-turn token is not part of it.
        return {"content": [{**entry(i.id, i.logprob), "top_logprobs": [entry(t, lp) for t, lp in i.top]}
                            for i in infos if not i.stop]}

    def chat(self, request_id: str, created: int, choices: list[Choice], prompt_tokens: int,
             logprobs: bool) -> dict[str, Any]:
        out = [{"index": c.index, "message": {"role": "assistant", "content": c.text},
                "logprobs": self.chat_logprobs(c.tokens) if logprobs else None,
                "finish_reason": c.finish_reason} for c in choices]
        return {"id": request_id, "object": "chat.completion", "created": created, "model": self.model_name,
                "choices": out, "usage": usage(prompt_tokens, choices)}

    def chat_chunk(self, request_id: str, created: int, index: int, delta: dict[str, str],
                   infos: list[TokenInfo] | None, finish_reason: str | None) -> dict[str, Any]:
        return {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": self.model_name,
                "choices": [{"index": index, "delta": delta,
                             "logprobs": None if infos is None else self.chat_logprobs(infos),
                             "finish_reason": finish_reason}]}


def usage(prompt_tokens: int, choices: list[Choice]) -> dict[str, int]:
    completion = sum(c.generated for c in choices)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion}


def now() -> int:
    return int(time.time())
