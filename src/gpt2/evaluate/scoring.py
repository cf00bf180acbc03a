"""Batched log-likelihood scoring on top of the model's forward pass.

Two primitives serve every likelihood task:

    Scorer.loglikelihood(requests)  log p(continuation | context) for (context, continuation)
                                    token-id pairs, with "is the continuation the greedy one";
    Scorer.rolling(docs, stride)    the total log-likelihood of whole token sequences, scored
                                    in windows of n_ctx tokens that slide by `stride`.

Conventions follow lm-evaluation-harness's HF backend, so that the numbers agree with it:
an empty context is replaced by the end-of-text token; a (context + continuation) longer than
n_ctx + 1 tokens is truncated from the left; greedy means every continuation token is the
argmax of its position (first index on ties). Log-probabilities are logit - logsumexp in
float32 (accurate to ~1e-7; F.log_softmax on CPU, which lm-eval uses, can be off by ~1e-4
when one logit dominates).

What makes it fast (benchmarks/bench_eval.py):
  * requests are sorted by length (longest first) and batched, so padding is minimal;
  * requests that share a context (the choices of a multiple-choice question) run the context
    once: its keys/values go into a KV cache that every continuation then reads;
  * the output projection and log-softmax (vocab_size wide) run only at scored positions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..model import GPT2, KVCache
from ..errors import EvalDataError

# Rows of the (positions x vocab) log-softmax computed at once; bounds memory at ~200 MB.
_LOGIT_CHUNK = 512


@dataclass(frozen=True)
class Score:
    """The result of scoring one continuation."""

    logprob: float  # sum of the continuation tokens' log-probabilities (natural log)
    is_greedy: bool  # every continuation token is the argmax at its position
    token_logprobs: tuple[float, ...]  # per continuation token
    token_is_greedy: tuple[bool, ...]  # per continuation token: is it the argmax
    filtered_first_argmax: int | None = None  # argmax at the first position over allowed tokens


@dataclass(frozen=True)
class RollingScore:
    """Total log-likelihood of one token sequence under sliding-window scoring."""

    logprob: float
    n_tokens: int  # tokens scored (all of the sequence)


def rolling_windows(n_tokens: int, max_len: int, stride: int) -> list[tuple[int, int, int]]:
    """Windows (start, score_from, end) over s = [prefix] + tokens (length n_tokens + 1).

    Each window feeds s[start:end-1] to the model and scores the predictions of
    s[score_from:end]; together the windows score s[1:] exactly once. The first window scores
    up to max_len tokens from the start; each next one scores the following `stride` tokens
    with the max_len - stride (or, for the last, more) tokens before them as context.
    stride == max_len is lm-evaluation-harness's loglikelihood_rolling (disjoint windows, the
    last one filled with context).
    """
    if not 1 <= stride <= max_len:
        raise ValueError(f"stride must be in [1, {max_len}], got {stride}")
    if n_tokens <= 0:
        return []
    end = 1 + min(max_len, n_tokens)
    windows = [(0, 1, end)]
    while end < n_tokens + 1:
        a, end = end, min(end + stride, n_tokens + 1)
        windows.append((max(0, end - 1 - max_len), a, end))
    return windows


class Scorer:
    """Scores token sequences with a GPT2 model, in batches (see the module docstring).

    batch_size is the number of sequences in one forward pass. progress shows a tqdm bar on
    stderr. eot is the token that stands in for an empty context (GPT-2's <|endoftext|>).
    """

    def __init__(self, model: GPT2, batch_size: int = 16, progress: bool = False, eot: int = 50256) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.progress = progress
        self.eot = eot
        self.max_len = model.config.n_ctx
        self.tokens_scored = 0  # continuation tokens scored so far (for throughput figures)

    # ------------------------------------------------------------------ public API

    @torch.no_grad()
    def loglikelihood(
        self,
        requests: Sequence[tuple[Sequence[int], Sequence[int]]],
        *,
        first_token_filter: torch.Tensor | None = None,
        desc: str = "scoring",
    ) -> list[Score]:
        """log p(continuation | context) for each (context, continuation) pair of token ids.

        first_token_filter, a bool tensor (vocab_size,), also reports for each request the
        argmax at the first continuation position over the allowed (True) tokens only.
        """
        n = len(requests)
        out: list[Score | None] = [None] * n
        flat: list[int] = []  # request indices scored as whole sequences
        groups: dict[tuple[int, ...], list[int]] = {}
        prepared: list[tuple[list[int], list[int]]] = []
        for i, (ctx, cont) in enumerate(requests):
            ctx, cont = list(ctx), list(cont)
            # Requests come from data files: these are data errors (one line in the CLI).
            if not cont:
                raise EvalDataError(f"{desc}: request {i} has an empty continuation (nothing to score); "
                                    "check the example's text")
            if len(cont) > self.max_len:
                raise EvalDataError(
                    f"{desc}: request {i} scores {len(cont)} tokens, more than the model's context "
                    f"n_ctx={self.max_len}; shorten the example or use a model with a longer context")
            if not ctx:
                ctx = [self.eot]
            if len(ctx) + len(cont) > self.max_len + 1:  # truncate from the left
                ctx = (ctx + cont)[-(self.max_len + 1) : -len(cont)]
            prepared.append((ctx, cont))
            groups.setdefault(tuple(ctx), []).append(i)
        shared: list[list[int]] = []
        for members in groups.values():
            if len(members) > 1 and len(prepared[members[0]][0]) > 1:
                shared.append(members)
            else:
                flat.extend(members)

        bar = progress_bar(n, desc, self.progress)
        try:
            self._score_flat(prepared, flat, out, first_token_filter, bar)
            self._score_shared(prepared, shared, out, first_token_filter, bar)
        finally:
            if bar is not None:
                bar.close()
        assert all(s is not None for s in out)
        return out  # type: ignore[return-value]

    @torch.no_grad()
    def rolling(
        self,
        docs: Sequence[Sequence[int]],
        stride: int | None = None,
        prefix_token: int | None = None,
        desc: str = "perplexity",
    ) -> list[RollingScore]:
        """Total log-likelihood of each token sequence (every token scored once; the first
        conditioned on prefix_token, default <|endoftext|>), in windows of n_ctx tokens that
        advance by `stride` (default n_ctx: lm-evaluation-harness's disjoint windows)."""
        stride = self.max_len if stride is None else stride
        prefix = self.eot if prefix_token is None else prefix_token
        requests: list[tuple[list[int], list[int]]] = []
        owner: list[int] = []
        for d, tokens in enumerate(docs):
            s = [prefix] + list(tokens)
            for start, a, end in rolling_windows(len(tokens), self.max_len, stride):
                requests.append((s[start:a], s[a:end]))
                owner.append(d)
        totals = [0.0] * len(docs)
        scores = self._loglikelihood_unshared(requests, desc)
        for d, score in zip(owner, scores):
            totals[d] += score.logprob
        return [RollingScore(t, len(tok)) for t, tok in zip(totals, docs)]

    def _loglikelihood_unshared(self, requests: list[tuple[list[int], list[int]]], desc: str) -> list[Score]:
        out: list[Score | None] = [None] * len(requests)
        bar = progress_bar(len(requests), desc, self.progress)
        try:
            self._score_flat(requests, list(range(len(requests))), out, None, bar)
        finally:
            if bar is not None:
                bar.close()
        return out  # type: ignore[return-value]

    # ------------------------------------------------------------------ internals

    def _score_flat(self, prepared, indices, out, first_token_filter, bar) -> None:
        """Each request as one sequence ctx + cont[:-1]; longest first, right-padded batches."""
        order = sorted(indices, key=lambda i: -(len(prepared[i][0]) + len(prepared[i][1])))
        device = self._device()
        for b in range(0, len(order), self.batch_size):
            batch = order[b : b + self.batch_size]
            seqs = [(prepared[i][0] + prepared[i][1])[:-1] for i in batch]
            T = max(len(s) for s in seqs)
            ids = torch.zeros((len(batch), T), dtype=torch.long)
            for r, s in enumerate(seqs):
                ids[r, : len(s)] = torch.tensor(s)
            # Right padding needs no mask: padded positions come after every real one. Hidden
            # states only: the output projection runs later, at the scored positions alone.
            hidden = self.model.hidden_states(ids.to(device))
            rows, cols, targets, spans = [], [], [], []
            for r, (i, s) in enumerate(zip(batch, seqs)):
                cont = prepared[i][1]
                start = len(s) - len(cont)
                rows.extend([r] * len(cont))
                cols.extend(range(start, len(s)))
                targets.extend(cont)
                spans.append(len(cont))
            h = hidden[torch.tensor(rows, device=device), torch.tensor(cols, device=device)]
            self._finish(batch, h, targets, spans, out, first_token_filter, bar)

    def _score_shared(self, prepared, groups, out, first_token_filter, bar) -> None:
        """Requests sharing a context: the context once into a KV cache, then every
        continuation of the group, batched, reading that cache."""
        groups = sorted(groups, key=lambda g: -len(prepared[g[0]][0]))
        device = self._device()
        dtype = next(self.model.parameters()).dtype
        for batch in self._pack_groups(prepared, groups):
            ctxs = [prepared[g[0]][0] for g in batch]
            Lc = max(len(c) for c in ctxs)
            G = len(batch)
            members = [i for g in batch for i in g]
            row_group = torch.tensor([k for k, g in enumerate(batch) for _ in g], device=device)
            Tc = max(len(prepared[i][1]) for i in members) - 1  # continuation inputs: cont[:-1]

            # 1. Contexts, left-padded, into a cache of batch G.
            ids = torch.zeros((G, Lc), dtype=torch.long)
            mask = torch.zeros((G, Lc), dtype=torch.long)
            for k, c in enumerate(ctxs):
                ids[k, Lc - len(c) :] = torch.tensor(c)
                mask[k, Lc - len(c) :] = 1
            ids, mask = ids.to(device), mask.to(device)
            pos = (mask.cumsum(1) - 1).clamp(min=0)
            cache = KVCache(self.model.config, G, max_len=Lc, device=device, dtype=dtype)
            h_ctx = self.model.hidden_states(ids, attention_mask=mask, position_ids=pos,
                                             kv_cache=cache)[:, -1]  # (G, C)

            # 2. Continuations (all but their last token), one row each, reading the cache.
            h_cont = None
            if Tc > 0:
                R = len(members)
                big = KVCache(self.model.config, R, max_len=Lc + Tc, device=device, dtype=dtype)
                big.k[:, :, :, :Lc] = cache.k[:, row_group, :, :Lc]
                big.v[:, :, :, :Lc] = cache.v[:, row_group, :, :Lc]
                big.length = Lc
                cids = torch.zeros((R, Tc), dtype=torch.long)
                for r, i in enumerate(members):
                    c = prepared[i][1][:-1]
                    cids[r, : len(c)] = torch.tensor(c, dtype=torch.long)
                cmask = torch.cat([mask[row_group], torch.ones((R, Tc), dtype=torch.long, device=device)], 1)
                ctx_len = mask.sum(1)[row_group].view(R, 1)
                cpos = ctx_len + torch.arange(Tc, device=device).view(1, Tc)
                h_cont = self.model.hidden_states(cids.to(device), attention_mask=cmask,
                                                  position_ids=cpos, kv_cache=big)

            # 3. Hidden states at the scored positions, in request order.
            parts, targets, spans = [], [], []
            for r, i in enumerate(members):
                cont = prepared[i][1]
                k = int(row_group[r])
                parts.append(h_ctx[k : k + 1])
                if len(cont) > 1:
                    parts.append(h_cont[r, : len(cont) - 1])
                targets.extend(cont)
                spans.append(len(cont))
            self._finish(members, torch.cat(parts), targets, spans, out, first_token_filter, bar)

    def _pack_groups(self, prepared, groups) -> Iterator[list[list[int]]]:
        """Consecutive groups, as many as fit batch_size continuations (at least one group)
        and whose packed length fits the context: the batch's cache holds its longest context
        plus its longest continuation, and the padded positions run that far, so both must
        stay within n_ctx. A single group always fits (each request fits n_ctx + 1 tokens);
        a mix of a long context with short answers and a short context with long answers
        may not, and is split rather than overflowing the cache and the position table."""
        batch: list[list[int]] = []
        rows = ctx_len = cont_len = 0
        for g in groups:
            g_ctx = len(prepared[g[0]][0])
            g_cont = max(len(prepared[i][1]) for i in g) - 1  # continuation inputs: cont[:-1]
            fits = (rows + len(g) <= self.batch_size
                    and max(ctx_len, g_ctx) + max(cont_len, g_cont) <= self.max_len)
            if batch and not fits:
                yield batch
                batch, rows, ctx_len, cont_len = [], 0, 0, 0
            batch.append(g)
            rows += len(g)
            ctx_len, cont_len = max(ctx_len, g_ctx), max(cont_len, g_cont)
        if batch:
            yield batch

    def _finish(self, indices, h, targets, spans, out, first_token_filter, bar) -> None:
        """Log-softmax at the gathered hidden states h (N, C) and split per request."""
        targets_t = torch.tensor(targets, device=h.device)
        lps, greedy = [], []
        firsts = set()
        offset = 0
        for n in spans:
            firsts.add(offset)
            offset += n
        first_rows = torch.tensor(sorted(firsts), device=h.device)
        filt = None
        for s in range(0, h.shape[0], _LOGIT_CHUNK):
            logits = self.model.lm_head(h[s : s + _LOGIT_CHUNK])
            t = targets_t[s : s + _LOGIT_CHUNK]
            # logit - logsumexp: torch.logsumexp is accurate in float32 (~1e-7), whereas
            # F.log_softmax's CPU kernel loses up to ~1e-4 when one logit dominates.
            wide = logits.float()
            lps.append(wide.gather(1, t.view(-1, 1)).squeeze(1) - torch.logsumexp(wide, dim=-1))
            greedy.append(logits.argmax(-1) == t)
        if first_token_filter is not None:
            logits = self.model.lm_head(h[first_rows]).float()
            allowed = first_token_filter.to(h.device)
            filt = logits.masked_fill(~allowed, float("-inf")).argmax(-1).tolist()
        lp = torch.cat(lps).tolist()
        gr = torch.cat(greedy).tolist()
        offset = 0
        for j, (i, n) in enumerate(zip(indices, spans)):
            tok_lp = tuple(lp[offset : offset + n])
            out[i] = Score(
                logprob=float(sum(tok_lp)),
                is_greedy=all(gr[offset : offset + n]),
                token_logprobs=tok_lp,
                token_is_greedy=tuple(gr[offset : offset + n]),
                filtered_first_argmax=None if filt is None else filt[j],
            )
            offset += n
        self.tokens_scored += offset
        if bar is not None:
            bar.update(len(indices))

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr counting `total` items (None when disabled): every task's bar."""
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="req", leave=False, dynamic_ncols=True)
