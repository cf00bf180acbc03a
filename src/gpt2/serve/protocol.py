"""The request bodies of OpenAI's API as this server takes them, and their errors.

Fields follow OpenAI's legacy completions and chat completions (and vLLM's extensions `top_k`,
`repetition_penalty`, `ignore_eos`, `stop_token_ids`); unknown fields are ignored, as OpenAI's clients send
some. Types are strict (JSON `true` is not a number, "16" is not an integer). Fields this
server cannot honour (`presence_penalty`, `frequency_penalty`, `logit_bias`, `suffix`,
`best_of` above `n`) are refused with a 400 naming them rather than silently ignored.

Everything the client got wrong is an APIError: HTTP status, one-line message, `param`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import GPT2Error
from ..generation.options import MAX_SEED, SamplingOptions
from ..validate import is_int
from .engine import MAX_LOGPROBS, SequenceRequest

MAX_CHOICES = 64  # n: choices per prompt
MAX_PROMPTS = 256  # prompts in one completions request
MAX_STOPS = 16
DEFAULT_MAX_TOKENS = 16  # OpenAI's default for completions


class APIError(Exception):
    """An error for the client, in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
             405: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
             500: "internal_error", 503: "service_unavailable"}

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.TYPES.get(self.status, "invalid_request_error"),
                          "param": self.param, "code": self.code}}


class _Request(BaseModel):
    """What completions and chat share: sampling, stops, seeds, streaming."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)

    model: str | None = None
    n: int = Field(1, ge=1, le=MAX_CHOICES)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=-1)  # -1 or 0: off (vLLM's -1)
    repetition_penalty: float | None = Field(None, gt=0)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, Any] | None = None
    stop: str | list[str] | None = Field(None, validate_default=True)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    ignore_eos: bool = False
    stop_token_ids: list[int] | None = None  # vLLM's: ids that end a choice, besides <|endoftext|>
    user: str | None = None  # ignored

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> list[str]:
        stops = [] if value is None else [value] if isinstance(value, str) else value
        if len(stops) > MAX_STOPS:
            raise ValueError(f"at most {MAX_STOPS} stop strings")
        if any(s == "" for s in stops):
            raise ValueError("a stop string is empty")
        return stops

    def _stop_ids(self, tokenizer, default: tuple[int, ...] | None) -> tuple[int, ...] | None:
        extra = tuple(self.stop_token_ids or ())
        check_ids(list(extra), len(tokenizer), "stop_token_ids")
        if self.ignore_eos:
            return extra
        if not extra:
            return default
        return (default or (tokenizer.eot_token,)) + extra

    def check_unsupported(self) -> None:
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name) not in (None, 0):
                raise APIError(400, f"{name} is not supported by this server (use repetition_penalty)", name)
        if self.logit_bias:
            raise APIError(400, "logit_bias is not supported by this server", "logit_bias")
        if not self.stream and self.stream_options is not None:
            raise APIError(400, "stream_options needs stream: true", "stream_options")
        unknown = sorted(set(self.stream_options or {}) - {"include_usage"})
        if unknown:
            raise APIError(400, f"stream_options: unknown key(s) {unknown}; only include_usage", "stream_options")

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))

    def sampling_options(self, tokenizer, stop: tuple[str, ...] = (),
                         stop_token_ids: tuple[int, ...] | None = None) -> SamplingOptions:
        """The request's settings; `stop` strings and `stop_token_ids` (default: <|endoftext|>)
        are what the caller ends choices at besides the request's own."""
        fields = {"temperature": self.temperature, "top_p": self.top_p,
                  "top_k": None if self.top_k is None else max(0, self.top_k),
                  "repetition_penalty": self.repetition_penalty, "seed": self.seed}
        given = {k: v for k, v in fields.items() if v is not None}
        try:
            return SamplingOptions(**given, stop=tuple(self.stop) + tuple(stop),
                                   stop_token_ids=self._stop_ids(tokenizer, stop_token_ids))
        except GPT2Error as e:  # "temperature must be ...": the field is the first word
            raise APIError(400, str(e), str(e).split()[0]) from None


class CompletionRequest(_Request):
    prompt: Any
    max_tokens: int | None = Field(DEFAULT_MAX_TOKENS, ge=0)
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1)

    def check_unsupported(self) -> None:
        super().check_unsupported()
        if self.suffix:
            raise APIError(400, "suffix (insertion) is not supported by this server", "suffix")
        if self.best_of is not None and self.best_of != self.n:
            raise APIError(400, "best_of other than n is not supported by this server", "best_of")


class ChatRequest(_Request):
    messages: list[Any]
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)


# ------------------------------------------------------------------ prompts to token ids

@dataclass(frozen=True)
class Limits:
    """What the model takes: the context length and the vocabulary size."""

    n_ctx: int
    vocab_size: int


def prompt_list(prompt: Any) -> list[str | list[int]]:
    """OpenAI's four prompt forms as a list of prompts: a string, strings, token ids, lists of ids."""
    where = "prompt must be a string, a list of strings, a list of token ids or a list of lists of token ids"
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt:
        if all(is_int(t) for t in prompt):
            return [prompt]
        if all(isinstance(p, str) for p in prompt) or all(
                isinstance(p, list) and all(is_int(t) for t in p) for p in prompt):
            if len(prompt) > MAX_PROMPTS:
                raise APIError(400, f"at most {MAX_PROMPTS} prompts in one request", "prompt")
            return list(prompt)
    if isinstance(prompt, list) and not prompt:
        raise APIError(400, "prompt is an empty list", "prompt")
    raise APIError(400, where, "prompt")


def check_ids(ids: list[int], vocab_size: int, param: str) -> None:
    bad = next((t for t in ids if not 0 <= t < vocab_size), None)
    if bad is not None:
        raise APIError(400, f"{param}: token id {bad} is out of range: the vocabulary has {vocab_size} ids "
                       f"(0 to {vocab_size - 1})", param)


def encode_prompts(prompts: list[str | list[int]], tokenizer, limits: Limits) -> list[list[int]]:
    """Each prompt's ids, checked against the vocabulary and the context (413 when longer)."""
    out = []
    for p in prompts:
        ids = tokenizer.encode(p, allowed_special="all") if isinstance(p, str) else list(p)
        if not ids:
            raise APIError(400, "prompt is empty", "prompt")
        check_ids(ids, limits.vocab_size, "prompt")
        if len(ids) > limits.n_ctx:
            raise APIError(413, f"the prompt is {len(ids)} tokens, more than the model's context of "
                           f"{limits.n_ctx}; shorten it", "prompt", "context_length_exceeded")
        out.append(ids)
    return out


def check_total(prompt: list[int], max_tokens: int, limits: Limits, param: str = "max_tokens") -> None:
    if len(prompt) + max_tokens > limits.n_ctx:
        raise APIError(400, f"the model's context is {limits.n_ctx} tokens, but the prompt ({len(prompt)}) "
                       f"and {param} ({max_tokens}) need {len(prompt) + max_tokens}; lower {param}",
                       param, "context_length_exceeded")


def completion_sequences(req: CompletionRequest, tokenizer,
                         limits: Limits) -> tuple[list[str], list[list[int]], list[SequenceRequest]]:
    """(the prompts' texts (token ids decoded), their ids, one SequenceRequest per choice: prompt by
    prompt, n each)."""
    req.check_unsupported()
    if req.max_tokens == 0 and not req.echo:
        raise APIError(400, "max_tokens 0 returns nothing without echo: true", "max_tokens")
    given = prompt_list(req.prompt)
    prompts = encode_prompts(given, tokenizer, limits)
    options = req.sampling_options(tokenizer)
    for ids in prompts:
        check_total(ids, req.max_tokens, limits)
    texts = [p if isinstance(p, str) else tokenizer.decode(ids) for p, ids in zip(given, prompts)]
    return texts, prompts, [SequenceRequest(ids, options, req.max_tokens, sample_index=j, logprobs=req.logprobs,
                                            echo=req.echo)
                            for ids in prompts for j in range(req.n)]


def chat_prompt(messages: Any, tokenizer) -> list[int]:
    """The ids of OpenAI's messages under the tokenizer's chat template, with the generation prompt."""
    from ..errors import TokenizerError
    from ..finetune.instruct import encode_prompt

    try:
        return encode_prompt(tokenizer, chat_messages(messages))
    except TokenizerError as e:  # the template refused the conversation
        raise APIError(400, str(e), "messages") from None


def chat_messages(messages: Any) -> list[dict[str, str]]:
    """OpenAI's messages as {"role", "content"} strings: content may be a string or a list of
    {"type": "text", "text": ...} parts (joined); roles are system, user and assistant
    (developer: OpenAI's newer name for system)."""
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "messages must be a non-empty list of {role, content} objects", "messages")
    out = []
    for i, m in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(m, dict):
            raise APIError(400, f"{param} must be an object with role and content", param)
        role, content = m.get("role"), m.get("content")
        if role not in ("system", "user", "assistant", "developer"):
            raise APIError(400, f"{param}.role must be system, user or assistant, got {role!r}", f"{param}.role")
        if isinstance(content, list):
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise APIError(400, f"{param}.content: only text parts ({{\"type\": \"text\", \"text\": ...}}) "
                               "are supported", f"{param}.content")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise APIError(400, f"{param}.content must be a string", f"{param}.content")
        out.append({"role": "system" if role == "developer" else role, "content": content})
    return out


def chat_sequences(req: ChatRequest, tokenizer, limits: Limits) -> tuple[list[int], list[SequenceRequest]]:
    """(the rendered prompt's ids, one SequenceRequest per choice)."""
    from ..finetune.instruct import chat_stops

    req.check_unsupported()
    if req.top_logprobs is not None and not req.logprobs:
        raise APIError(400, "top_logprobs needs logprobs: true", "top_logprobs")
    ids = chat_prompt(req.messages, tokenizer)
    encode_prompts([ids], tokenizer, limits)
    param = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
    max_tokens = req.max_completion_tokens or req.max_tokens
    if max_tokens is None:
        max_tokens = limits.n_ctx - len(ids)  # as vLLM: the rest of the context
        if max_tokens < 1:
            raise APIError(400, f"the conversation fills the model's context of {limits.n_ctx} tokens", "messages",
                           "context_length_exceeded")
    check_total(ids, max_tokens, limits, param)
    stops = chat_stops(tokenizer)
    options = req.sampling_options(tokenizer, stops["stop"], stops.get("stop_token_ids"))
    logprobs = (req.top_logprobs or 0) if req.logprobs else None
    return ids, [SequenceRequest(ids, options, max_tokens, sample_index=j, logprobs=logprobs)
                 for j in range(req.n)]


def validation_error(errors: list[dict[str, Any]]) -> APIError:
    """pydantic's first complaint as one APIError naming the field."""
    e = errors[0]
    loc = [str(x) for x in e.get("loc", ()) if x != "body"]
    if e.get("type") == "json_invalid":
        return APIError(400, "the request body is not valid JSON", None)
    if not loc:
        return APIError(400, f"the request body must be a JSON object ({e.get('msg', 'invalid')})", None)
    param = loc[0] + "".join(f"[{x}]" if x.isdigit() else f".{x}" for x in loc[1:])
    message = e.get("msg", "invalid value").removeprefix("Value error, ")
    if e.get("type") == "missing":
        message = "is required"
    return APIError(400, f"{param}: {message}", loc[0])


__all__ = ["APIError", "CompletionRequest", "ChatRequest", "Limits", "completion_sequences", "chat_sequences",
           "validation_error"]
