"""Text generation for the generation tasks (CoQA, summarization, translation, QA), on top
of gpt2.generation.generate: prompts that do not fit n_ctx - max_new_tokens are cut from the
left (the oldest text goes); generate cuts each continuation at the first stop string. A progress
bar counts prompts, as the scorer's counts requests."""

from __future__ import annotations

from collections.abc import Sequence

from .scoring import progress_bar
from .types import EvalContext


def fit_prompt(ctx: EvalContext, prompt: str, max_new_tokens: int, keep: str = "left") -> str:
    """The prompt, cut to n_ctx - max_new_tokens tokens: keep="left" drops its beginning."""
    budget = ctx.model.config.n_ctx - max_new_tokens
    ids = ctx.encode(prompt)
    if len(ids) <= budget:
        return prompt
    ids = ids[-budget:] if keep == "left" else ids[:budget]
    return ctx.tokenizer.decode(ids)


def generate(
    ctx: EvalContext,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    stop: Sequence[str] = (),
    seed: int = 0,
    desc: str = "generating",
) -> list[str]:
    """Continuations of prompts (greedy when temperature is 0), each cut at the first stop string."""
    prompts = [fit_prompt(ctx, p, max_new_tokens) for p in prompts]
    outs: list[str] = []
    bs = ctx.scorer.batch_size
    bar = progress_bar(len(prompts), desc, ctx.progress)
    try:
        for i in range(0, len(prompts), bs):
            outs.extend(_generate_batch(ctx, prompts[i : i + bs], max_new_tokens, temperature, top_k,
                                        stop, seed + i))
            if bar is not None:
                bar.update(min(bs, len(prompts) - i))
    finally:
        if bar is not None:
            bar.close()
    return outs


def _generate_batch(ctx: EvalContext, batch: list[str], max_new_tokens: int, temperature: float,
                    top_k: int | None, stop: Sequence[str], seed: int) -> list[str]:
    from ..generation import SamplingOptions
    from ..generation import generate as sample

    options = SamplingOptions(max_new_tokens=max_new_tokens, temperature=temperature,
                              top_k=0 if top_k is None else top_k, stop=tuple(stop), seed=seed)
    return [s.text for s in sample(ctx.model, ctx.tokenizer, batch, options)]
