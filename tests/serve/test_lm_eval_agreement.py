"""lm-evaluation-harness's `local-completions` against `gpt2 serve` gives `gpt2 eval`'s numbers.

lm-eval scores a loglikelihood by sending the token ids of context + continuation to
/v1/completions with `echo: true, logprobs: 1, max_tokens: 1` and summing the echoed
`token_logprobs[ctxlen:-1]` (the last entry is the generated token); with
`tokenizer_backend=remote` it tokenizes through the server's /tokenize. Here it runs in-process
on the demo model and task YAMLs that mirror its lambada_openai and hellaswag
(tests/evaluate/lm_eval_tasks/, on the local data of tests/evaluate/fixtures/ plus copies whose
answer is the model's own greedy choice, so that accuracy is not trivially 0), offline, and is
compared with `gpt2.evaluate` on the same model and data: accuracies equal, loglikelihood-based
numbers within 1e-4 relative, per request as well as in aggregate. CI runs the first 4
documents of each task; every document (-m slow) takes a few times longer.

The direct checks need no lm-eval: the echoed logprobs of token-id prompts equal the model's own
log-softmax, and the response keeps the shape lm-eval's parser relies on (one entry per prompt
token plus the generated one, even when that is <|endoftext|>).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

pytest.importorskip("lm_eval")
httpx = pytest.importorskip("httpx")

import gpt2  # noqa: E402
from gpt2.evaluate import evaluate  # noqa: E402
from gpt2.evaluate.families.multiple_choice import hellaswag_doc, hellaswag_preprocess  # noqa: E402
from gpt2.evaluate.scoring import Scorer  # noqa: E402
from gpt2.evaluate.types import EvalContext  # noqa: E402

EVAL_TESTS = Path(__file__).parents[1] / "evaluate"
TASK_FILES = ("fixture_lambada_openai.yaml", "fixture_hellaswag.yaml", "utils.py")
TASKS = {"fixture_lambada_openai": ("lambada.jsonl", ["acc", "perplexity"]),
         "fixture_hellaswag": ("hellaswag.jsonl", ["acc", "acc_norm"])}
SMALL = 4  # documents per task in the CI check (2 greedy copies, 2 originals)
REL = 1e-4  # loglikelihood-based numbers: lm-eval through HTTP vs gpt2 eval in-process
EOT, DOT = 50256, 13  # GPT-2's <|endoftext|> and "."
LOGPROB_ABS = 1e-5  # one token's logprob: the server's batched, chunked prefill vs one forward pass


@pytest.fixture(scope="module")
def demo():
    return gpt2.load("demo")


def _greedy(model, ids: list[int], n: int) -> list[int]:
    out = list(ids)
    with torch.no_grad():
        for _ in range(n):
            out.append(int(model(torch.tensor([out]))[0, -1].argmax()))
    return out[len(ids):]


def _interleave(copies: list, originals: list) -> list:
    """copy, original, copy, original, ... then the rest: the first few documents (a run with a
    limit) hold both kinds."""
    out = []
    for i in range(max(len(copies), len(originals))):
        out += copies[i : i + 1] + originals[i : i + 1]
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory, demo):
    """(data dir, tasks dir): the fixture data plus greedy copies, and the task YAMLs on it."""
    model, tok = demo
    root = tmp_path_factory.mktemp("lm-eval-serve")
    data, tasks = root / "data", root / "tasks"
    data.mkdir()
    tasks.mkdir()

    # LAMBADA: each passage, and a copy ending in the model's greedy next word when that is a
    # whole word in one token (then lm-eval's and our whole-word greedy check must both say yes).
    lines = (EVAL_TESTS / "fixtures" / "lambada.jsonl").read_text().splitlines()
    copies = []
    for line in lines:
        context = " ".join(json.loads(line)["text"].split(" ")[:-1])
        word = tok.decode(_greedy(model, tok.encode(context), 1))
        if re.fullmatch(r" [A-Za-z]+", word):
            copies.append(json.dumps({"text": context + word}))
    assert len(copies) >= 3, "too few greedy copies for a meaningful accuracy"
    (data / "lambada.jsonl").write_text("\n".join(_interleave(copies, lines)) + "\n")

    # HellaSwag: each item, and a copy whose gold ending is the model's greedy next words (the
    # longest run of up to 3 greedy tokens that reads " word word ...").
    docs = [json.loads(line) for line in (EVAL_TESTS / "fixtures" / "hellaswag.jsonl").read_text().splitlines()]
    copies = []
    for i, d in enumerate(docs):
        greedy = _greedy(model, tok.encode(hellaswag_doc(d)["query"]), 3)
        texts = [tok.decode(greedy[:n]) for n in range(len(greedy), 0, -1)]
        text = next((t for t in texts if re.fullmatch(r"( [A-Za-z]+)+", t)), None)
        ending = text and text[1:]
        if ending and hellaswag_preprocess(ending) == ending:
            gold = i % len(d["endings"])
            endings = list(d["endings"])
            endings[gold] = ending
            copies.append({**d, "endings": endings, "label": str(gold)})
    assert len(copies) >= 2, "too few greedy copies for a meaningful accuracy"
    (data / "hellaswag.jsonl").write_text("".join(json.dumps(d) + "\n" for d in _interleave(copies, docs)))

    for name in TASK_FILES:
        text = (EVAL_TESTS / "lm_eval_tasks" / name).read_text().replace("@FIXTURES@", str(data))
        # datasets' cache in the test's directory, not the user's (lm-eval runs in this process).
        text = text.replace("dataset_kwargs:\n", f"dataset_kwargs:\n  cache_dir: \"{root / 'hf-cache'}\"\n")
        (tasks / name).write_text(text)
    return data, tasks


def _harness(server, tasks: Path, limit: int | None) -> dict:
    """lm-eval's simple_evaluate with local-completions on the server, both tasks: its output."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    n_ctx = httpx.get(server.api + "/models", timeout=10).json()["data"][0]["max_model_len"]
    model_args = {"base_url": server.api + "/completions", "model": "demo", "tokenizer_backend": "remote",
                  "tokenized_requests": True, "max_length": n_ctx, "num_concurrent": 1, "max_retries": 1,
                  "timeout": 120}
    # batch_size 8: several prompts of different lengths per request (the engine batches them).
    out = simple_evaluate(model="local-completions", model_args=model_args, tasks=list(TASKS), batch_size=8,
                          limit=limit, task_manager=TaskManager(include_path=str(tasks), include_defaults=False),
                          log_samples=True, bootstrap_iters=0)
    assert out is not None
    return out


def _per_request(harness: dict, task: str, demo) -> tuple[list[float], list[float], list[bool], list[bool]]:
    """(lm-eval's loglikelihoods, ours, lm-eval's is_greedy, ours) for every request of the task,
    ours from gpt2 eval's scorer on the same (context, continuation) strings."""
    model, tok = demo
    theirs, pairs = [], []
    for sample in sorted(harness["samples"][task], key=lambda s: s["doc_id"]):
        for (context, continuation), resp in zip(sample["arguments"], sample["resps"], strict=True):
            ll, greedy = resp[0]
            theirs.append((float(ll), bool(greedy)))
            pairs.append((context, continuation))
    ctx = EvalContext(model=model, tokenizer=tok, scorer=Scorer(model, eot=tok.eot_token), settings={})
    ours = ctx.scorer.loglikelihood([ctx.encode_pair(c, x) for c, x in pairs])
    return ([t[0] for t in theirs], [s.logprob for s in ours], [t[1] for t in theirs], [s.is_greedy for s in ours])


def _check_agreement(harness: dict, task: str, setup, demo, limit: int | None) -> None:
    """Per request (loglikelihood and is_greedy, printed side by side when they differ), then the
    task's metrics from gpt2.evaluate on the same documents."""
    theirs, ours, their_greedy, our_greedy = _per_request(harness, f"fixture_{task}", demo)
    table = "\n".join(f"{i:3d} lm-eval {a:.6f} {g1!s:5}  gpt2 {b:.6f} {g2}"
                      for i, (a, b, g1, g2) in enumerate(zip(theirs, ours, their_greedy, our_greedy)))
    assert ours == pytest.approx(theirs, rel=REL), f"per-request loglikelihoods differ:\n{table}"
    assert our_greedy == their_greedy, f"per-request is_greedy differs:\n{table}"

    model, tok = demo
    data, _ = setup
    file, metrics = TASKS[f"fixture_{task}"]
    result = evaluate(model, task, data / file, tokenizer=tok, limit=limit, model_source="demo")
    reference = harness["results"][f"fixture_{task}"]
    assert result.n == len(harness["samples"][f"fixture_{task}"])
    for metric in metrics:
        if metric.startswith("acc"):
            assert result[metric] == reference[f"{metric},none"], metric
        else:
            assert result[metric] == pytest.approx(reference[f"{metric},none"], rel=REL), metric
    assert result["acc"] > 0  # the greedy copies


@pytest.fixture(scope="module")
def small_harness(demo_server, setup) -> dict:
    return _harness(demo_server, setup[1], SMALL)


@pytest.mark.parametrize("task", ["lambada_openai", "hellaswag"])
def test_agrees_on_a_few_documents(small_harness, setup, demo, task):
    _check_agreement(small_harness, task, setup, demo, SMALL)


@pytest.fixture(scope="module")
def full_harness(demo_server, setup) -> dict:
    return _harness(demo_server, setup[1], None)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["lambada_openai", "hellaswag"])
def test_agrees_on_every_document(full_harness, setup, demo, task):
    _check_agreement(full_harness, task, setup, demo, None)


def _log_softmax(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids]))[0].float().log_softmax(-1)


@pytest.mark.parametrize("max_tokens", [0, 1])
def test_echoed_logprobs_are_the_models(demo_server, demo, max_tokens):
    """Several token-id prompts in one request: each choice (in prompt order) echoes its
    prompt's tokens with the model's own log-softmax (the first null), and with max_tokens 1
    (lm-eval's request) one greedy token after them. The lengths make the engine prefill some
    prompts in pieces (a budget of 512 prompt tokens per step)."""
    model, tok = demo
    n_ctx = model.config.n_ctx
    g = torch.Generator().manual_seed(max_tokens)
    lengths = [n_ctx - max_tokens, 200, 1, 120, 37]
    prompts = [torch.randint(0, model.config.vocab_size, (n,), generator=g).tolist() for n in lengths]
    r = httpx.post(demo_server.api + "/completions", timeout=120, json={
        "model": "demo", "prompt": prompts, "echo": True, "logprobs": 1, "max_tokens": max_tokens,
        "temperature": 0})
    assert r.status_code == 200, r.text
    choices = r.json()["choices"]
    assert [c["index"] for c in choices] == list(range(len(prompts)))
    for prompt, choice in zip(prompts, choices):
        lp = _log_softmax(model, prompt)
        got = choice["logprobs"]
        expected_tokens = [tok.decode([t]) for t in prompt]
        assert got["tokens"][: len(prompt)] == expected_tokens
        assert len(got["token_logprobs"]) == len(prompt) + max_tokens
        assert got["token_logprobs"][0] is None and got["top_logprobs"][0] is None
        expected = lp[torch.arange(len(prompt) - 1), torch.tensor(prompt[1:], dtype=torch.long)].tolist()
        assert got["token_logprobs"][1: len(prompt)] == pytest.approx(expected, abs=LOGPROB_ABS)
        # lm-eval's is_greedy compares each token's logprob with the best of its top_logprobs.
        best = [max(top.values()) for top in got["top_logprobs"][1:]]
        assert best == pytest.approx(lp.max(-1).values[: len(best)].tolist(), abs=LOGPROB_ABS)
        if max_tokens:
            assert got["tokens"][-1] == tok.decode([int(lp[-1].argmax())])
            assert got["token_logprobs"][-1] == pytest.approx(float(lp[-1].max()), abs=LOGPROB_ABS)
        assert choice["text"].startswith(tok.decode(prompt))


@pytest.fixture(scope="module")
def eot_checkpoint(tmp_path_factory) -> Path:
    """A GPT-2 (GPT-2's tokenizer) whose next token is always <|endoftext|>: every weight zero but
    ln_f's bias (e_0) and column 0 of the tied embedding, so the logits are that column at every
    position: 5 for <|endoftext|>, 2 for ".", 0 for the others."""
    directory = tmp_path_factory.mktemp("eot-gpt2")
    model = gpt2.GPT2(gpt2.GPT2Config(n_layer=1, n_embd=8, n_head=2, n_ctx=32)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.transformer.ln_f.bias[0] = 1.0
        model.transformer.wte.weight[EOT, 0] = 5.0
        model.transformer.wte.weight[DOT, 0] = 2.0
    model.save_pretrained(directory)
    return directory


def test_lm_eval_request_when_the_model_would_end_the_text(start_server, eot_checkpoint):
    """lm-eval takes token_logprobs[ctxlen:-1] whatever the generated token is: when the model's
    greedy next token is <|endoftext|> the response must still list it (as vLLM and OpenAI's
    completions do), or the last continuation token goes uncounted."""
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    served = start_server("--model", str(eot_checkpoint), "--model-name", "eot")
    context, continuation = [11, 12], [DOT, DOT]  # ",-" then ".."
    r = httpx.post(served.api + "/completions", timeout=60, json={
        "model": "eot", "prompt": [context + continuation], "echo": True, "logprobs": 1, "max_tokens": 1,
        "temperature": 0})
    assert r.status_code == 200, r.text
    lse = math.log(50257 - 2 + math.exp(5) + math.exp(2))
    [(ll, greedy)] = LocalCompletionsAPI.parse_logprobs(r.json(), ctxlens=[len(context)])
    assert ll == pytest.approx(2 * (2 - lse), rel=1e-5)
    assert not greedy  # "." is not the argmax
    assert r.json()["choices"][0]["logprobs"]["tokens"][-1] == "<|endoftext|>"
