"""The continuous-batching engine: every sequence in flight decoded together, one token per step.

One thread runs the loop. Between two decode steps it admits waiting sequences into free slots
and prefills their prompts (new short ones together in one forward pass, a long prompt in chunks
of PREFILL_CHUNK tokens; at most PREFILL_BUDGET prompt tokens per step, so that the sequences
already decoding keep going), and
retires the sequences that stopped, reached their length or were cancelled. Each sequence keeps
its own sampling settings and its own torch.Generator (seeded as `gpt2 generate` seeds sample j),
and rows never mix in attention: a sequence's tokens do not depend on what else is in the batch.

The KV cache (SlotCache) has one slot of n_ctx positions per sequence in flight. The sequences
that are decoding always sit in slots [0, D), so that a decode step reads one contiguous block;
each row has its own length, and a boolean mask keeps a row to its own keys. When a sequence
leaves, the last one moves into its slot (one copy of its keys and values).

Results leave the engine as Prompt, Piece, Finished or Failed events for each sequence's
`deliver` callback, handed over once per step (`flush`); the server turns them into HTTP responses.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..generation.choose import choose_tokens, generators
from ..generation.options import SamplingOptions
from ..generation.text import RowText
from ..model import GPT2

log = logging.getLogger("gpt2.serve")

# A prompt is prefilled in pieces of at most this many tokens, and a step prefills at most
# PREFILL_BUDGET prompt tokens before it decodes: a long prompt delays the others by a chunk.
PREFILL_CHUNK = 256
PREFILL_BUDGET = 512
# The most alternatives a token's logprobs may list (OpenAI's limit for completions).
MAX_LOGPROBS = 5


class QueueFull(Exception):
    """No room in the waiting queue (the server answers 429)."""


class EngineStopped(Exception):
    """The engine is stopping or stopped and takes no more work (the server answers 503)."""


# ------------------------------------------------------------------ what goes in and comes out

@dataclass(frozen=True)
class SequenceRequest:
    """One sequence to decode: one choice of one prompt.

    options: the sampling settings, stops and seed (options.max_new_tokens is not read:
    max_tokens is, and may be 0 when only the prompt's logprobs are wanted). sample_index: which
    sample of the seed this is (choice j of a request is sample j, as in `gpt2 generate`).
    logprobs: None for none, else how many alternatives (0..MAX_LOGPROBS) each token lists.
    echo: the prompt's logprobs too (when logprobs is not None).
    """

    prompt: list[int]
    options: SamplingOptions
    max_tokens: int
    sample_index: int = 0
    logprobs: int | None = None
    echo: bool = False


@dataclass(frozen=True)
class TokenInfo:
    """A token and, when asked for, its log-probability under the model (the raw distribution,
    before temperature and filters) and the most likely tokens at its position, best first.
    A stop token is listed too (marked `stop`), as OpenAI's and vLLM's completions list it: a
    caller scoring a continuation (lm-evaluation-harness) expects the generated token last."""

    id: int
    logprob: float | None = None
    top: tuple[tuple[int, float], ...] = ()
    stop: bool = False  # a stop token: it ends the sequence and is not in the text


@dataclass(frozen=True)
class Prompt:
    """The prompt's tokens with their logprobs (the first has none); sent once, when asked for."""

    tokens: list[TokenInfo]


@dataclass(frozen=True)
class Piece:
    """New text and the tokens it came from (text is never half a character or part of a stop)."""

    text: str
    tokens: list[TokenInfo]


@dataclass(frozen=True)
class Finished:
    """The end: "stop" (a stop string or token) or "length"; how many tokens were generated."""

    reason: str
    generated: int


@dataclass(frozen=True)
class Failed:
    message: str


Event = Prompt | Piece | Finished | Failed
Deliver = Callable[[Event], None]
# Hands a step's events to their consumers: the default calls each deliver on the engine's
# thread; a server passes one that moves the whole batch to its event loop in one wake-up.
Flush = Callable[[list[tuple[Deliver, Event]]], None]


class Observer:
    """What the engine reports as it runs (the server's metrics); the base class ignores it."""

    def step(self, batch_size: int, waiting: int) -> None: ...
    def first_token(self, seconds: float) -> None: ...
    def inter_token(self, seconds: float) -> None: ...


# ------------------------------------------------------------------ the KV cache in slots

class SlotCache:
    """Keys and values of up to `slots` sequences, n_ctx positions each, and each slot's length.

    Storage is (n_layer, slots, n_head, n_ctx, head_dim). The model reads it through views that
    have KVCache's interface: `for_slot` (a prefill chunk of one sequence) and `for_rows` (a
    decode step of slots [0, B), each row writing at its own length)."""

    def __init__(self, model: GPT2, slots: int) -> None:
        c = model.config
        weight = model.transformer.wte.weight
        shape = (c.n_layer, slots, c.n_head, c.n_ctx, c.head_dim)
        self.k = torch.zeros(shape, device=weight.device, dtype=weight.dtype)
        self.v = torch.zeros(shape, device=weight.device, dtype=weight.dtype)
        self.lengths = [0] * slots
        self.n_ctx = c.n_ctx

    @property
    def nbytes(self) -> int:
        return 2 * self.k.numel() * self.k.element_size()

    def for_slot(self, slot: int) -> _SlotView:
        return _SlotView(self, slot)

    def for_rows(self, rows: int) -> _RowsView:
        return _RowsView(self, rows)

    def move(self, source: int, target: int) -> None:
        """Slot `source`'s sequence into slot `target` (whose contents are dropped)."""
        n = self.lengths[source]
        self.k[:, target, :, :n] = self.k[:, source, :, :n]
        self.v[:, target, :, :n] = self.v[:, source, :, :n]
        self.lengths[target] = n

    def swap(self, a: int, b: int) -> None:
        n = max(self.lengths[a], self.lengths[b])
        for t in (self.k, self.v):
            t[:, [a, b], :, :n] = t[:, [b, a], :, :n]
        self.lengths[a], self.lengths[b] = self.lengths[b], self.lengths[a]


class _SlotView:
    """One slot as a KVCache of batch 1: appends at the slot's length."""

    def __init__(self, cache: SlotCache, slot: int) -> None:
        self.cache, self.slot = cache, slot
        self.length = cache.lengths[slot]
        self.max_len = cache.n_ctx

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.cache.lengths[self.slot], self.cache.lengths[self.slot] + k.shape[2]
        self.cache.k[layer, self.slot, :, start:end] = k[0]
        self.cache.v[layer, self.slot, :, start:end] = v[0]
        s = slice(self.slot, self.slot + 1)
        return self.cache.k[layer, s, :, :end], self.cache.v[layer, s, :, :end]


class _RowsView:
    """Slots [0, rows) as one KVCache for a step of one new token per row: row i writes at its
    own length L_i; keys are read up to the longest row, and `mask` keeps row i to [0, L_i]."""

    def __init__(self, cache: SlotCache, rows: int) -> None:
        self.cache = cache
        lengths = cache.lengths[:rows]
        device = cache.k.device
        self.length = max(lengths)  # the model's "past": keys are read over [0, max + 1)
        self.max_len = cache.n_ctx
        self.positions = torch.tensor(lengths, device=device)
        self.rows = torch.arange(rows, device=device)
        self.mask = None  # every row at the same length: nothing to mask
        if min(lengths) != self.length:
            keys = torch.arange(self.length + 1, device=device)
            self.mask = (keys[None, :] <= self.positions[:, None]).view(rows, 1, 1, self.length + 1)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, end = len(self.rows), self.length + 1
        if self.mask is None:  # every row at one length: a plain slice copy (cheaper than a scatter)
            self.cache.k[layer, :n, :, self.length : end] = k
            self.cache.v[layer, :n, :, self.length : end] = v
        else:
            self.cache.k[layer, self.rows, :, self.positions] = k[:, :, 0]
            self.cache.v[layer, self.rows, :, self.positions] = v[:, :, 0]
        return self.cache.k[layer, :n, :, :end], self.cache.v[layer, :n, :, :end]


class _NewRowsView:
    """New prompts in one right-padded batch, as a KVCache starting empty: row i's first n_i keys
    and values go to its slot; attention reads the batch's own (plain causal attention)."""

    def __init__(self, cache: SlotCache, slots: list[int], lengths: list[int]) -> None:
        self.cache, self.slots, self.lengths = cache, slots, lengths
        self.length = 0
        self.max_len = cache.n_ctx

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for row, (slot, n) in enumerate(zip(self.slots, self.lengths)):
            self.cache.k[layer, slot, :, :n] = k[row, :, :n]
            self.cache.v[layer, slot, :, :n] = v[row, :, :n]
        return k, v


# ------------------------------------------------------------------ a sequence in flight

@dataclass(eq=False)
class _Sequence:
    request: SequenceRequest
    deliver: Deliver
    row: RowText
    submitted: float
    generator: torch.Generator | None = None
    seen: torch.Tensor | None = None  # (V,) bool, for the repetition penalty
    prefilled: int = 0  # prompt tokens in the cache
    pending: int | None = None  # the token chosen last, not yet in the cache
    generated: int = 0
    sent_tokens: int = 0  # token infos handed out so far
    infos: list[TokenInfo] = field(default_factory=list)
    prompt_infos: list[TokenInfo] = field(default_factory=list)
    last_token_at: float = 0.0
    cancelled: bool = False
    done: bool = False

    @property
    def prefilling(self) -> bool:
        return self.pending is None


class Engine:
    """The batching loop over one model. submit() queues sequences, cancel() drops one;
    start() runs the loop on its own thread and stop() ends it (cancelling what is left).

    max_batch: sequences decoded together (KV-cache slots); max_queue: sequences waiting for a
    slot beyond those (submit raises QueueFull when they would not fit)."""

    def __init__(self, model: GPT2, tokenizer, *, max_batch: int = 16, max_queue: int = 256,
                 observer: Observer | None = None, flush: Flush | None = None) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_batch, self.max_queue = max_batch, max_queue
        self.observer = observer or Observer()
        self.flush = flush or deliver_all
        self._outbox: list[tuple[Deliver, Event]] = []
        self.cache = SlotCache(model, max_batch)
        self.vocab_size = model.config.vocab_size
        self.eot = tokenizer.eot_token
        self._slots: list[_Sequence | None] = [None] * max_batch
        self._decoding = 0  # slots [0, _decoding) hold the sequences that are decoding
        self._waiting: collections.deque[_Sequence] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.device = model.transformer.wte.weight.device

    # ---------------------------------------------------------------- the public side

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return sum(s is not None for s in self._slots)

    def submit(self, requests: Sequence[SequenceRequest], deliver: Sequence[Deliver]) -> list[object]:
        """Queue the sequences (all or none: QueueFull when they do not fit, EngineStopped when
        stopping); returns a handle per sequence for cancel()."""
        now = time.monotonic()
        sequences = [self._new_sequence(r, d, now) for r, d in zip(requests, deliver, strict=True)]
        with self._cond:
            if self._stopping:
                raise EngineStopped("the server is shutting down")
            # A cancelled sequence's place counts as free already: the loop drops it at its next step.
            running = sum(s is not None and not s.cancelled for s in self._slots)
            waiting = sum(not s.cancelled for s in self._waiting)
            if waiting + len(sequences) > self.max_queue + self.max_batch - running:
                raise QueueFull(f"the queue is full ({self.max_queue} waiting); retry later")
            self._waiting.extend(sequences)
            self._cond.notify()
        return list(sequences)

    def cancel(self, handle: object) -> None:
        """Stop a sequence (its client went away): it leaves at the next step, nothing more is
        delivered."""
        assert isinstance(handle, _Sequence)
        handle.cancelled = True
        with self._cond:
            self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="gpt2-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Take no more work, cancel what is queued or running, and end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    # ---------------------------------------------------------------- the loop

    def _new_sequence(self, r: SequenceRequest, deliver: Deliver, now: float) -> _Sequence:
        options = r.options
        stop_ids = frozenset((self.eot,) if options.stop_token_ids is None else options.stop_token_ids)
        seq = _Sequence(r, deliver, RowText(self.tokenizer, options.stop, stop_ids), now)
        if not options.greedy:
            seed = options.seed if options.seed is not None else secrets.randbits(63)
            seq.generator = generators(seed, [r.sample_index], self.device)[0]
        if options.repetition_penalty != 1.0:
            seq.seen = torch.zeros(self.vocab_size, dtype=torch.bool, device=self.device)
            seq.seen[torch.tensor(r.prompt, device=self.device)] = True
        return seq

    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                with self._cond:
                    while not self._stopping and not self._waiting and self.running == 0:
                        self._cond.wait()
                    if self._stopping:
                        break
                    self._admit()
                try:
                    self._step()
                except Exception as e:  # noqa: BLE001 - one failed step must not end the server
                    log.exception("engine step failed")
                    for seq in [s for s in self._slots if s is not None]:
                        self._finish(seq, Failed(f"the model failed: {type(e).__name__}: {e}"))
                self._flush()
        with self._cond:
            leftovers = list(self._waiting) + [s for s in self._slots if s is not None]
            self._waiting.clear()
        for seq in leftovers:
            if not seq.cancelled:
                self._send(seq, Failed("the server shut down before this request finished"))
        self._flush()

    def _admit(self) -> None:
        """Waiting sequences into free slots (slots >= _decoding; called holding the lock)."""
        while self._waiting:
            if self._waiting[0].cancelled:
                self._waiting.popleft()
                continue
            free = next((i for i in range(self._decoding, self.max_batch) if self._slots[i] is None), None)
            if free is None:
                return
            self._slots[free] = self._waiting.popleft()
            self.cache.lengths[free] = 0

    def _step(self) -> None:
        for slot in reversed(range(self.max_batch)):  # from the end: _free moves the last one down
            seq = self._slots[slot]
            if seq is not None and seq.cancelled:
                self._free(slot)
        self.observer.step(self._decoding, len(self._waiting))
        budget = PREFILL_BUDGET - self._prefill_new()
        for seq in [s for s in self._slots[self._decoding:] if s is not None and s.prefilling]:
            if budget <= 0:
                break
            budget -= self._prefill_chunk(seq, budget)
        if self._decoding:
            self._decode()

    def _prefill_new(self) -> int:
        """Prefill new prompts that fit in one chunk together, in one forward pass (right-padded to
        the longest: causal attention keeps every real token from the padding after it), as many as
        PREFILL_BUDGET allows, shortest first. Returns the tokens the pass took, padding included."""
        new = sorted((s for s in self._slots[self._decoding:]
                      if s is not None and s.prefilled == 0 and len(s.request.prompt) <= PREFILL_CHUNK),
                     key=lambda s: len(s.request.prompt))
        group: list[_Sequence] = []
        for seq in new:  # ascending lengths: the last one taken sets the padded length
            if group and (len(group) + 1) * len(seq.request.prompt) > PREFILL_BUDGET:
                break
            group.append(seq)
        if not group:
            return 0
        width = len(group[-1].request.prompt)
        ids = torch.tensor([s.request.prompt + [0] * (width - len(s.request.prompt)) for s in group],
                           device=self.device)
        slots = [self._slots.index(s) for s in group]
        hidden = self.model.hidden_states(ids, kv_cache=_NewRowsView(self.cache, slots, [len(s.request.prompt)
                                                                                         for s in group]))
        for slot, seq in zip(slots, group):  # all before _prompt_done moves any of them
            self.cache.lengths[slot] = len(seq.request.prompt)
        for row, seq in enumerate(group):
            n = len(seq.request.prompt)
            first = 0 if seq.request.echo and seq.request.logprobs is not None else n - 1
            logits = self.model.lm_head(hidden[row, first:n]).float()  # (n or 1, V)
            self._prompt_done(seq, 0, n, logits)
        return len(group) * width

    def _prefill_chunk(self, seq: _Sequence, budget: int) -> int:
        """Feed the next chunk of seq's prompt (a long one, or one that did not fit in the batch).
        Returns the number of prompt tokens fed."""
        slot = self._slots.index(seq)
        prompt = seq.request.prompt
        start = seq.prefilled
        end = min(len(prompt), start + PREFILL_CHUNK, start + budget)
        ids = torch.tensor([prompt[start:end]], device=self.device)
        want_prompt_logprobs = seq.request.echo and seq.request.logprobs is not None
        logits = self.model(ids, kv_cache=self.cache.for_slot(slot), last_logits_only=not want_prompt_logprobs)
        self.cache.lengths[slot] += end - start
        self._prompt_done(seq, start, end, logits[0].float())
        return end - start

    def _prompt_done(self, seq: _Sequence, start: int, end: int, logits: torch.Tensor) -> None:
        """Prompt tokens [start, end) are in the cache, `logits` (end - start or 1, V) their next-token
        scores: collect the prompt's logprobs; once the whole prompt is in, choose the first token
        and move the sequence to the decoding slots."""
        prompt = seq.request.prompt
        seq.prefilled = end
        want_prompt_logprobs = seq.request.echo and seq.request.logprobs is not None
        if want_prompt_logprobs:
            if start == 0:
                seq.prompt_infos.append(TokenInfo(prompt[0]))
            targets = prompt[start + 1 : end + 1]  # each position scores the prompt token after it
            seq.prompt_infos += self._token_infos(logits[: len(targets)], targets, seq.request.logprobs)
        if end < len(prompt):
            return
        if want_prompt_logprobs:
            self._send(seq, Prompt(seq.prompt_infos))
        slot = self._slots.index(seq)
        if seq.request.max_tokens == 0:
            self._finish(seq, Finished("length", 0))
            self._free(slot)
            return
        token = choose_tokens(logits[-1:], seq.request.options, _rows_seen([seq]), _generators([seq]))
        # Now decoding: into slot _decoding, so that decoding slots stay [0, _decoding).
        target = self._decoding
        if target != slot:
            self.cache.swap(slot, target)
            self._slots[slot], self._slots[target] = self._slots[target], self._slots[slot]
        self._decoding += 1
        self._take_tokens([seq], token, logits[-1:], [target])

    def _decode(self) -> None:
        """One step of every decoding sequence: feed each its pending token, choose the next."""
        rows = self._decoding
        sequences = [self._slots[i] for i in range(rows)]
        tokens = torch.tensor([[s.pending] for s in sequences], device=self.device)
        view = self.cache.for_rows(rows)
        logits = self.model(tokens, attention_mask=view.mask, position_ids=view.positions[:, None],
                            kv_cache=view, last_logits_only=True)[:, -1].float()
        for i in range(rows):
            self.cache.lengths[i] += 1
        groups = _groups(sequences)  # rows with the same processors are chosen together
        if len(groups) == 1:
            chosen = choose_tokens(logits, sequences[0].request.options, _rows_seen(sequences),
                                   _generators(sequences))
        else:
            chosen = torch.empty(rows, dtype=torch.long, device=self.device)
            for group in groups:
                index = torch.tensor(group, device=self.device)
                members = [sequences[i] for i in group]
                chosen[index] = choose_tokens(logits[index], members[0].request.options, _rows_seen(members),
                                              _generators(members))
        self._take_tokens(sequences, chosen, logits, list(range(rows)))

    def _take_tokens(self, sequences: list[_Sequence], chosen: torch.Tensor, logits: torch.Tensor,
                     slots: list[int]) -> None:
        """The chosen token of each sequence: its text and infos out, and the finished ones retired."""
        ids = chosen.tolist()
        now = time.monotonic()
        need = [i for i, s in enumerate(sequences) if s.request.logprobs is not None]
        infos: dict[int, TokenInfo] = {}
        if need:
            top = max(sequences[i].request.logprobs for i in need)
            for i, info in zip(need, self._token_infos(logits[need], [ids[i] for i in need], top)):
                infos[i] = dataclasses.replace(info, top=info.top[: sequences[i].request.logprobs])
        finished = []
        for i, (seq, token) in enumerate(zip(sequences, ids)):
            if seq.generated == 0:
                self.observer.first_token(now - seq.submitted)
            else:
                self.observer.inter_token(now - seq.last_token_at)
            seq.last_token_at = now
            seq.generated += 1
            if seq.seen is not None:
                seq.seen[token] = True
            info = infos.get(i, TokenInfo(token))
            seq.infos.append(info if token not in seq.row.stop_ids else dataclasses.replace(info, stop=True))
            text = seq.row.add(token)
            if seq.row.finish_reason is None and seq.generated >= seq.request.max_tokens:
                text += seq.row.close()
            done = seq.row.finish_reason is not None
            self._send_piece(seq, text, done)
            if done:
                reason = "length" if seq.row.finish_reason == "length" else "stop"
                self._finish(seq, Finished(reason, seq.generated))
                finished.append(slots[i])
            else:
                seq.pending = token
        for slot in sorted(finished, reverse=True):
            self._free(slot)

    def _send_piece(self, seq: _Sequence, text: str, done: bool) -> None:
        """Hand out the text and the infos of the tokens it covers (all that are left at the end)."""
        row = seq.row
        kept = len(row.tokens)  # a stop string may have cut tokens off the end
        n = seq.sent_tokens
        if done:  # the rest, and the stop token (not in the text) when one ended the sequence
            n = kept + (row.finish_reason == "stop_token")
        else:
            while n < kept and row.ends[n] <= row.emitted:
                n += 1
        tokens = seq.infos[seq.sent_tokens : n]
        seq.sent_tokens = n
        if text or tokens:
            self._send(seq, Piece(text, tokens))

    def _token_infos(self, logits: torch.Tensor, targets: list[int], top: int | None) -> list[TokenInfo]:
        """(logprob, top alternatives) of each target under the raw distribution of its row."""
        if not targets:
            return []
        logprobs = logits.log_softmax(-1)
        target = torch.tensor(targets, device=logprobs.device)
        chosen = logprobs.gather(1, target[:, None])[:, 0].tolist()
        if not top:
            return [TokenInfo(t, lp) for t, lp in zip(targets, chosen)]
        values, indices = logprobs.topk(top, dim=-1)
        return [TokenInfo(t, lp, tuple(zip(i, v))) for t, lp, i, v in
                zip(targets, chosen, indices.tolist(), values.tolist())]

    def _send(self, seq: _Sequence, event: Event) -> None:
        self._outbox.append((seq.deliver, event))

    def _flush(self) -> None:
        if self._outbox:
            batch, self._outbox = self._outbox, []
            self.flush(batch)

    def _finish(self, seq: _Sequence, event: Event) -> None:
        if not seq.done and not seq.cancelled:
            self._send(seq, event)
        seq.done = True

    def _free(self, slot: int) -> None:
        """Empty a slot; a decoding slot is filled by the last decoding sequence."""
        self._slots[slot] = None
        self.cache.lengths[slot] = 0
        if slot < self._decoding:
            last = self._decoding - 1
            if slot != last:
                self.cache.move(last, slot)
                self._slots[slot], self._slots[last] = self._slots[last], None
                self.cache.lengths[last] = 0
            self._decoding -= 1


def deliver_all(batch: list[tuple[Deliver, Event]]) -> None:
    """The default Flush: each event to its consumer, in order."""
    for deliver, event in batch:
        deliver(event)


def _groups(sequences: list[_Sequence]) -> list[list[int]]:
    """Row indices grouped by the settings that shape the distribution (one choose_tokens each)."""
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(sequences):
        o = s.request.options
        key = (o.temperature, o.top_k, o.top_p, o.repetition_penalty)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _generators(sequences: list[_Sequence]) -> list[torch.Generator] | None:
    return None if sequences[0].generator is None else [s.generator for s in sequences]


def _rows_seen(sequences: list[_Sequence]) -> torch.Tensor | None:
    if sequences[0].seen is None:
        return None
    return torch.stack([s.seen for s in sequences])
