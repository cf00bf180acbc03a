"""Instruction tuning's data side: chat templates, and the response-only loss mask.

A task line is a chat, `{"messages": [{"role", "content"}, ...]}`, or an Alpaca record,
`{"instruction", "input", "output"}` (turned into a two-message chat by `alpaca_to_messages`).
The chat is rendered with the tokenizer's Jinja chat template exactly as transformers'
`apply_chat_template` renders it (same sandbox, settings and variables), so the ids we train on
are the ids transformers, `gpt2 generate` and the server produce from the saved
`chat_template`.

Templates (a tokenizer carries one as its `chat_template`; save_pretrained writes it into
`tokenizer_config.json`):

    DEFAULT_CHAT_TEMPLATE   ChatML with two new special tokens (CHAT_TOKENS), for fine-tuned models:
                                <|im_start|>system\\nYou are terse.<|im_end|>\\n      (optional, first)
                                <|im_start|>user\\nHi<|im_end|>\\n
                                <|im_start|>assistant\\nHello.<|im_end|>\\n
                            add_generation_prompt appends "<|im_start|>assistant\\n"; the model
                            ends its turn with <|im_end|> (a generation stops there). No
                            default system prompt and no <|endoftext|>: GPT-2 needs neither.
    PLAIN_TEMPLATE          a plain transcript for base models, no special tokens:
                                You are terse.\\n\\n                                   (system)
                                User: Hi\\n
                                Assistant: Hello.\\n
                            add_generation_prompt appends "Assistant:" (no space: GPT-2's
                            words carry their leading space, " Hello"); stop at PLAIN_STOP.

The loss mask (`encode_chat`): True exactly on the tokens of each assistant message's content
plus the one token after it, the token that ends the turn (<|im_end|>), so the model learns to
stop. Everything else (system, user, the template's own text) is context only. It equals
transformers' `return_assistant_tokens_mask` for a template that wraps content + <|im_end|> in
`{% generation %}` (tested).

How the ids and the mask stay exact:
- Each message's content is rendered once more between private-use marker characters; the
  markers give the content's character spans, and the text without them must equal the plain
  rendering (a template that alters contents, e.g. `| trim`, is refused: spans would lie).
- Special tokens are recognised only in the template's own text, never in message contents:
  "<|im_end|>" or "<|endoftext|>" typed by a user stays ordinary text.
- The text between two special tokens is encoded as a whole, as transformers encodes it, so BPE
  may merge across a content boundary (PLAIN_TEMPLATE's "Assistant: " + "Hello" gives " Hello").
  Token spans come from cumulative token byte lengths; a token is masked when any of its bytes
  lie in an assistant content (so a token straddling the boundary is a target: it spells the
  content's start).
- Content containing special-token text is encoded as `tokenizer.encode(content)` would: one
  ordinary piece. (transformers' `sanitize_control_tokens=True` splits the text around the
  token instead, which can differ where a space precedes it: " <|" vs " " + "<|".)

Truncation to max_length: whole exchanges (a user message and the assistant's answer) are
dropped from the start, the system message kept, until the conversation fits; if the system
message with the last exchange alone does not fit, the line is refused (FinetuneError) rather
than cut mid-message, since a cut answer would teach the model to stop early.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import jinja2
import jinja2.ext
import jinja2.sandbox

from ..errors import FinetuneError, TokenizerError
from ..tokenizer import EOT
from .data import read_records
from .tasks import DEFAULT_FIELDS, Example

if TYPE_CHECKING:
    from ..tokenizer import Tokenizer

Message = dict[str, str]

ROLES = ("system", "user", "assistant")
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
CHAT_TOKENS = (IM_START, IM_END)

# '\\n' here is Jinja's escape inside a string literal: the template file reads '\n', as the
# ChatML templates on the Hub do.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('chat roles are system, user and assistant, not ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

PLAIN_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + '\\n' }}"
    "{% else %}{{ raise_exception('chat roles are system, user and assistant, not ' + message['role']) }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
# Where a base model's answer under PLAIN_TEMPLATE ends: it goes on to write the user's next line.
PLAIN_STOP = ("\nUser:",)


# ---------------------------------------------------------------- rendering (transformers' way)

class _Generation(jinja2.ext.Extension):
    """transformers' `{% generation %}...{% endgeneration %}` tag (it marks assistant text for
    `return_assistant_tokens_mask`): here it renders its body, as transformers does."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller: Any) -> str:
        return caller()


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    # transformers' filter: Jinja's own escapes HTML characters
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


class _TemplateDict:
    """`dict(...)` without the class itself (no attribute access to type machinery)."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict:
        return dict.fromkeys(*args, **kwargs)


class _TemplateNamespace(jinja2.utils.Namespace):
    """A namespace that refuses underscore names (no reach into CPython internals)."""

    def __init__(*args: Any, **kwargs: Any) -> None:  # Jinja's signature trick: `self` may be a key
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check_name(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(f"chat templates cannot store underscore-prefixed "
                                                  f"attributes on a namespace, but got {name!r}")


@functools.lru_cache(maxsize=16)
def _compile(template: str) -> jinja2.Template:
    # transformers' environment (utils/chat_template_utils.py): templates come from files users
    # download, so they run sandboxed; the same settings give byte-identical text.
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    env.globals["dict"] = _TemplateDict()
    env.globals["namespace"] = _TemplateNamespace
    return env.from_string(template)


def render_chat(template: str, messages: Sequence[Message], *, add_generation_prompt: bool = False,
                **extra: Any) -> str:
    """The text of `messages` under a Jinja chat template, byte for byte what transformers'
    `apply_chat_template(messages, tokenize=False, ...)` gives. `extra` are further template
    variables (transformers passes the tokenizer's `bos_token`, `eos_token`, `unk_token`: see
    `template_variables`). A template that fails (a syntax error, `raise_exception`, a type
    error) raises TokenizerError with its message."""
    variables = {"tools": None, "documents": None, **extra}
    try:
        return _compile(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                         **variables)
    except (jinja2.TemplateError, TypeError) as e:
        raise TokenizerError(f"the chat template failed: {e}") from None


def template_variables(tokenizer: Tokenizer) -> dict[str, str]:
    """The variables transformers gives a template: the special tokens of the saved
    tokenizer_config.json, where <|endoftext|> is bos, eos and unk (tokenizer/files.hf_files)."""
    return {"bos_token": EOT, "eos_token": EOT, "unk_token": EOT}


def chat_tokenizer(tokenizer: Tokenizer) -> Tokenizer:
    """The tokenizer instruction tuning renders with: unchanged when it has a chat template (a
    model instruction-tuned before), else with CHAT_TOKENS and DEFAULT_CHAT_TEMPLATE (the model's
    embedding must then grow to len(tokenizer))."""
    if tokenizer.chat_template is not None:
        return tokenizer
    return tokenizer.add_special_tokens(CHAT_TOKENS).with_chat_template(DEFAULT_CHAT_TEMPLATE)


# ---------------------------------------------------------------- encoding with the loss mask

def _markers(texts: Sequence[str], where: str) -> tuple[str, str, str]:
    """Three private-use characters that occur in none of `texts` (open, index end, close)."""
    used = set().union(*map(set, texts))
    free = (c for c in map(chr, range(0xE000, 0xF900)) if c not in used)
    try:
        return next(free), next(free), next(free)
    except StopIteration:
        raise FinetuneError(f"{where}: the conversation uses every private-use character; "
                            "cannot mark its messages") from None


def _spans(template: str, messages: Sequence[Message], variables: dict[str, Any],
           where: str) -> tuple[str, list[tuple[int, int, int]]]:
    """(rendered text, [(start, end, message index)]): where each message's content lies in it."""
    plain = render_chat(template, messages, **variables)
    start, sep, end = _markers([template, *(m["content"] for m in messages)], where)
    marked = render_chat(template, [{**m, "content": f"{start}{i}{sep}{m['content']}{end}"}
                                    for i, m in enumerate(messages)], **variables)
    pattern = re.compile(f"{start}([0-9]+){sep}([^{end}]*){end}")
    pieces, spans, pos, length = [], [], 0, 0
    for m in pattern.finditer(marked):
        pieces.append(marked[pos : m.start()])
        length += m.start() - pos
        i = int(m.group(1))
        spans.append((length, length + len(m.group(2)), i))
        pieces.append(m.group(2))
        length += len(m.group(2))
        pos = m.end()
    pieces.append(marked[pos:])
    text = "".join(pieces)
    if text != plain or any(c in text for c in (start, sep, end)) or \
            any(messages[i]["content"] != text[a:b] for a, b, i in spans):
        raise FinetuneError(f"{where}: the chat template changes the message contents (e.g. trims "
                            "them), so the response tokens cannot be found; use a template that "
                            "writes each content as it is")
    return text, spans


def _encode(tokenizer: Tokenizer, text: str, spans: list[tuple[int, int, int]]) -> list[int]:
    """Special tokens where the template wrote them (outside the content spans), ordinary BPE on
    the text between two of them, as a whole (as transformers encodes it)."""
    specials = tokenizer.special_tokens
    special_re = re.compile("|".join(map(re.escape, sorted(specials, key=len, reverse=True))))
    cuts: list[tuple[int, int]] = []  # (start, end) of each special token the template wrote
    pos = 0
    for a, b, _ in sorted(spans) + [(len(text), len(text), -1)]:
        cuts += [m.span() for m in special_re.finditer(text, pos, a)]
        pos = max(pos, b)
    ids, pos = [], 0
    for a, b in cuts:
        ids += tokenizer.encode(text[pos:a]) + [specials[text[a:b]]]
        pos = b
    return ids + tokenizer.encode(text[pos:])


def _mask(tokenizer: Tokenizer, ids: list[int], text: str, spans: list[tuple[int, int]]) -> list[bool]:
    """True on each token with a byte inside one of `spans` (character spans of `text`), and on
    the token after each span's last one (the end of the turn). transformers'
    `return_assistant_tokens_mask` marks the same tokens for a template that wraps content +
    <|im_end|> in `{% generation %}`."""
    ends, pos = [], 0
    for i in ids:
        pos += len(tokenizer.token_bytes(i))
        ends.append(pos)
    assert pos == len(text.encode("utf-8")), "tokens do not spell the rendered text"
    mask = [False] * len(ids)
    t = 0
    for a, b in sorted(spans):
        a, b = len(text[:a].encode("utf-8")), len(text[:b].encode("utf-8"))  # to byte offsets
        while t < len(ids) and ends[t] <= a:
            t += 1
        while t < len(ids) and ends[t] - len(tokenizer.token_bytes(ids[t])) < b:
            mask[t] = True
            t += 1
        # The turn's end (<|im_end|>) is a target too, so the model learns to stop; unless the
        # content's last token runs past the content already (BPE merged the end into it).
        if t < len(ids) and ends[t - 1] <= b:
            mask[t] = True
    return mask


def check_messages(messages: Any, where: str) -> list[Message]:
    """The messages as plain {"role", "content"} dicts, or a FinetuneError naming what is wrong:
    roles system/user/assistant, a system message only first, then user and assistant taking
    turns from the user, ending with the assistant; every content a non-empty string."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise FinetuneError(f"{where}: messages must be a non-empty list of {{\"role\", \"content\"}} objects")
    out: list[Message] = []
    first_turn = 2 if isinstance(messages[0], dict) and messages[0].get("role") == "system" else 1
    for n, message in enumerate(messages, 1):
        if not isinstance(message, dict):
            raise FinetuneError(f"{where}: message {n} must be an object with \"role\" and \"content\", "
                                f"got {type(message).__name__}")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise FinetuneError(f"{where}: message {n} has role {role!r}; roles are {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise FinetuneError(f"{where}: message {n} ({role}) needs a string \"content\", "
                                f"got {type(content).__name__}")
        if not content.strip():
            raise FinetuneError(f"{where}: message {n} ({role}) is empty")
        if role == "system" and n > 1:
            raise FinetuneError(f"{where}: message {n} is a system message; only the first may be")
        if role != "system" and role != ("user" if (n - first_turn) % 2 == 0 else "assistant"):
            raise FinetuneError(f"{where}: message {n} is the {role}'s, but user and assistant must take "
                                "turns, the user first")
        out.append({"role": role, "content": content})
    if out[-1]["role"] != "assistant":
        raise FinetuneError(f"{where}: the last message must be the assistant's (no response to learn "
                            "from after it)")
    return out


def encode_chat(tokenizer: Tokenizer, messages: Sequence[Message], max_length: int, *,
                where: str = "the conversation") -> tuple[list[int], list[bool]]:
    """(token ids, loss mask) of a conversation under the tokenizer's chat template, at most
    `max_length` tokens: earliest exchanges dropped first, the system message kept (see the
    module's docstring). The mask is True on the assistant contents and each turn's end token.
    Errors name `where` (e.g. "chat.jsonl, line 7")."""
    if tokenizer.chat_template is None:
        raise FinetuneError(f"tokenizer {tokenizer.name} has no chat template: prepare it with "
                            "gpt2.finetune.instruct.chat_tokenizer")
    messages = check_messages(messages, where)
    head = messages[:1] if messages[0]["role"] == "system" else []
    turns = messages[len(head):]
    variables = template_variables(tokenizer)
    for first in range(0, len(turns), 2):  # whole exchanges (user, assistant) from the start
        kept = head + turns[first:]
        try:
            text, spans = _spans(tokenizer.chat_template, kept, variables, where)
        except TokenizerError as e:
            raise FinetuneError(f"{where}: {e}") from None
        ids = _encode(tokenizer, text, spans)
        if len(ids) <= max_length:
            answers = [(a, b) for a, b, i in spans if kept[i]["role"] == "assistant"]
            return ids, _mask(tokenizer, ids, text, answers)
    raise FinetuneError(f"{where}: the last exchange{' with the system message' if head else ''} is "
                        f"{len(ids)} tokens, more than max_length {max_length}; shorten it or raise max_length")


def encode_prompt(tokenizer: Tokenizer, messages: Sequence[Message]) -> list[int]:
    """The ids of a chat prompt for generation (`gpt2 generate`, the server): the messages under
    the tokenizer's chat template (PLAIN_TEMPLATE for a tokenizer without one) with the
    generation prompt, special tokens only where the template wrote them. The caller checks the
    messages' shape ({"role", "content"} strings); the template refuses roles it does not know
    (TokenizerError). Generation stops at <|im_end|> (DEFAULT_CHAT_TEMPLATE) or PLAIN_STOP."""
    template = tokenizer.chat_template or PLAIN_TEMPLATE
    variables = {**template_variables(tokenizer), "add_generation_prompt": True}
    try:
        text, spans = _spans(template, messages, variables, "the prompt")
    except FinetuneError as e:  # a template that alters contents: not a fine-tuning error here
        raise TokenizerError(str(e)) from None
    return _encode(tokenizer, text, spans)


def chat_stops(tokenizer: Tokenizer, stop: Sequence[str] = ()) -> dict[str, Any]:
    """The SamplingOptions fields that end an answer under the tokenizer's template: its end-of-turn
    token (DEFAULT_CHAT_TEMPLATE's <|im_end|>) and <|endoftext|>, or (PLAIN_TEMPLATE) the next
    "User:" line, added to the caller's `stop` strings."""
    if IM_END in tokenizer.special_tokens:
        return {"stop": tuple(stop), "stop_token_ids": (tokenizer.eot_token, tokenizer.special_tokens[IM_END])}
    return {"stop": tuple(stop) + PLAIN_STOP}


# ---------------------------------------------------------------- task files

def alpaca_to_messages(record: dict[str, Any]) -> list[Message]:
    """Alpaca's {instruction, input, output} as a chat: the instruction, then the input (when
    there is one) after a blank line, as the user's message; the output as the answer. The blank
    line follows Stanford Alpaca's own prompt, whose instruction and input are separated by one
    (LLaMA-Factory joins them with "\\n", FastChat with "\\nInput:\\n")."""
    user = record["instruction"]
    if record.get("input"):
        user += "\n\n" + record["input"]
    return [{"role": "user", "content": user}, {"role": "assistant", "content": record["output"]}]


def _string(record: dict[str, Any], key: str, where: str, *, optional: bool = False) -> str:
    """An Alpaca field: a non-empty string; an optional one may also be missing, null or ""."""
    value = record.get(key)
    if optional and (value is None or value == ""):
        return ""
    if key not in record:
        raise FinetuneError(f"{where}: missing field {key!r}")
    if not isinstance(value, str):
        raise FinetuneError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise FinetuneError(f"{where}: field {key!r} is empty")
    return value


def read_instruct(path: str | Path, tokenizer: Tokenizer, max_length: int,
                  fields: dict[str, str] | None = None) -> list[Example]:
    """Encode an instruct task file (JSONL, or TSV with Alpaca's columns): per line a chat
    (`messages`) or an Alpaca record (`instruction`, optional `input`, `output`), the field names
    mapped by `fields` over DEFAULT_FIELDS["instruct"]. One Example per line: its ids and the mask
    of its response tokens. The tokenizer must have its chat template (see chat_tokenizer)."""
    names = DEFAULT_FIELDS["instruct"] | (fields or {})
    if tokenizer.chat_template is None:
        raise FinetuneError(f"tokenizer {tokenizer.name} has no chat template: prepare it with "
                            "gpt2.finetune.instruct.chat_tokenizer")
    examples = []
    for number, record in read_records(path):
        where = f"{path}, line {number}"
        chat, alpaca = names["messages"] in record, names["instruction"] in record
        if chat and alpaca:
            raise FinetuneError(f"{where}: has both {names['messages']!r} (a chat) and "
                                f"{names['instruction']!r} (Alpaca); give one")
        if chat:
            messages = record[names["messages"]]
            if isinstance(messages, str):  # TSV: a JSON list in one cell
                try:
                    messages = json.loads(messages)
                except json.JSONDecodeError:
                    pass
        elif alpaca:
            messages = alpaca_to_messages({
                "instruction": _string(record, names["instruction"], where),
                "input": _string(record, names["input"], where, optional=True),
                "output": _string(record, names["output"], where),
            })
        else:
            raise FinetuneError(f"{where}: needs {names['messages']!r} (a chat) or {names['instruction']!r} "
                                f"and {names['output']!r} (Alpaca)")
        ids, mask = encode_chat(tokenizer, messages, max_length, where=where)
        examples.append(Example([ids], None, [mask]))
    if not examples:
        raise FinetuneError(f"{path}: no examples (the file is empty)")
    return examples
