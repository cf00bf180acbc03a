"""`gpt2 serve` through the official `openai` client and plain HTTP, against a real server on a
free localhost port: completions (every prompt form, n, stop, seed, echo, logprobs, streaming),
chat, the tokenizer endpoints, models, health, metrics, and errors in OpenAI's shape."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

openai = pytest.importorskip("openai")

N_CTX = 256  # the demo model's context


@pytest.fixture(scope="module")
def client(demo_server):
    return openai.OpenAI(base_url=demo_server.api, api_key="none", max_retries=0, timeout=60)


def cli_json(*args: str) -> list[dict]:
    """`gpt2 generate ... --json` on the demo model: one object per sample (the command itself, once;
    other tests compare with gpt2.generate in-process, which that command is a layer over)."""
    out = subprocess.run([sys.executable, "-m", "gpt2.cli.main", "generate", *args, "--json"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def post(served, path: str, body, **kw) -> httpx.Response:
    """POST a JSON body: an object, or the raw bytes/str/byte chunks to send as they are."""
    content = json.dumps(body) if isinstance(body, (dict, list)) else body
    return httpx.post(served.url + path, content=content, headers={"content-type": "application/json"},
                      timeout=60, **kw)


# ------------------------------------------------------------------ completions


def test_greedy_completion_equals_gpt2_generate(client, demo_server):
    reference = cli_json("ROMEO:", "--temperature", "0", "--max-new-tokens", "24")[0]
    got = client.completions.create(model="demo", prompt="ROMEO:", max_tokens=24, temperature=0)
    assert got.object == "text_completion" and got.model == "demo"
    assert got.choices[0].text == reference["text"]
    assert got.usage.prompt_tokens == len(reference["prompt_tokens"])
    assert got.usage.completion_tokens == 24 and got.choices[0].finish_reason == "length"


def test_prompt_forms_and_choice_order(client, demo_server):
    """Strings, token ids, lists of either; choice i*n + j is sample j of prompt i, with the seed's
    samples equal to generate(seed=S, n_samples=2)'s (what `gpt2 generate --seed S` prints)."""
    from gpt2 import generate, load

    model, tok = load("demo")
    reference = {p: [s.text for s in generate(model, tok, p, seed=5, n_samples=2, max_new_tokens=12)]
                 for p in ("ROMEO:", "JULIET:")}
    got = client.completions.create(model="demo", prompt=["ROMEO:", "JULIET:"], n=2, seed=5, max_tokens=12)
    assert [c.index for c in got.choices] == [0, 1, 2, 3]
    assert [c.text for c in got.choices] == reference["ROMEO:"] + reference["JULIET:"]
    ids = post(demo_server, "/tokenize", {"prompt": "ROMEO:"}).json()["tokens"]
    by_ids = client.completions.create(model="demo", prompt=ids, seed=5, n=2, max_tokens=12)
    assert [c.text for c in by_ids.choices] == reference["ROMEO:"]
    by_lists = client.completions.create(model="demo", prompt=[ids, ids], seed=5, max_tokens=12)
    assert [c.text for c in by_lists.choices] == [reference["ROMEO:"][0]] * 2


def test_stream_equals_the_whole_response(client):
    whole = client.completions.create(model="demo", prompt="KING HENRY:", max_tokens=30, temperature=0, logprobs=2)
    chunks = list(client.completions.create(model="demo", prompt="KING HENRY:", max_tokens=30, temperature=0,
                                            logprobs=2, stream=True))
    assert len(chunks) > 3  # text arrives as it is generated, not at the end
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"
    streamed = [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.tokens]
    assert streamed == whole.choices[0].logprobs.tokens
    offsets = [o for c in chunks if c.choices[0].logprobs for o in c.choices[0].logprobs.text_offset]
    assert offsets == whole.choices[0].logprobs.text_offset


def test_stream_with_usage(demo_server):
    with httpx.stream("POST", demo_server.api + "/completions", timeout=60,
                      json={"prompt": "O", "max_tokens": 5, "stream": True,
                            "stream_options": {"include_usage": True}}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 5


def test_echo_and_logprobs(client):
    got = client.completions.create(model="demo", prompt="To be, or not to be", max_tokens=0, echo=True, logprobs=1)
    lp = got.choices[0].logprobs
    assert got.choices[0].text == "To be, or not to be"
    assert "".join(lp.tokens) == "To be, or not to be"
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert all(x < 0 for x in lp.token_logprobs[1:])
    # the token's own logprob is in its top_logprobs (as vLLM), and the best is first
    for token, logprob, top in zip(lp.tokens[1:], lp.token_logprobs[1:], lp.top_logprobs[1:]):
        assert top[token] == logprob and max(top.values()) >= logprob
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(lp.tokens))]
    more = client.completions.create(model="demo", prompt="To be, or not to be", max_tokens=3, echo=True,
                                     logprobs=1, temperature=0)
    assert more.choices[0].logprobs.token_logprobs[1 : len(lp.tokens)] == pytest.approx(lp.token_logprobs[1:], abs=1e-5)
    assert more.choices[0].text.startswith("To be, or not to be") and len(more.choices[0].logprobs.tokens) == len(lp.tokens) + 3


def test_stop_strings(client):
    got = client.completions.create(model="demo", prompt="ROMEO:\nWhat", max_tokens=60, temperature=0, stop=["\n"])
    assert got.choices[0].finish_reason == "stop" and "\n" not in got.choices[0].text
    free = client.completions.create(model="demo", prompt="ROMEO:\nWhat", max_tokens=60, temperature=0)
    assert free.choices[0].text.startswith(got.choices[0].text + "\n")


def test_ignored_and_extension_fields(client):
    got = client.completions.create(model="demo", prompt="O", max_tokens=4, user="someone", presence_penalty=0,
                                    extra_body={"top_k": 1, "repetition_penalty": 1.3, "ignore_eos": True,
                                                "unknown_field": 1})
    assert got.usage.completion_tokens == 4


# ------------------------------------------------------------------ chat


def test_chat_whole_and_streamed(client, demo_server):
    messages = [{"role": "system", "content": "You are Romeo."}, {"role": "user", "content": "Who is Juliet?"}]
    whole = client.chat.completions.create(model="demo", messages=messages, max_tokens=30, temperature=0)
    assert whole.object == "chat.completion" and whole.choices[0].message.role == "assistant"
    assert whole.choices[0].message.content and "\nUser:" not in whole.choices[0].message.content
    chunks = list(client.chat.completions.create(model="demo", messages=messages, max_tokens=30, temperature=0,
                                                 stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    # the plain transcript template of a base model, as /tokenize renders it
    rendered = post(demo_server, "/tokenize", {"messages": messages}).json()
    assert whole.usage.prompt_tokens == rendered["count"]
    detok = post(demo_server, "/detokenize", {"tokens": rendered["tokens"]}).json()
    assert detok["prompt"] == "You are Romeo.\n\nUser: Who is Juliet?\nAssistant:"


def test_chat_logprobs(client):
    got = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Hi"}], max_tokens=5,
                                         logprobs=True, top_logprobs=2)
    content = got.choices[0].logprobs.content
    assert 1 <= len(content) <= 5 and all(len(c.top_logprobs) == 2 for c in content)
    assert "".join(c.token for c in content).startswith(got.choices[0].message.content[:1])


# ------------------------------------------------------------------ other endpoints


def test_models_health_tokenizer(demo_server, client):
    assert [m.id for m in client.models.list().data] == ["demo"]
    assert httpx.get(demo_server.url + "/health").json() == {"status": "ok"}
    info = httpx.get(demo_server.url + "/tokenizer_info").json()
    assert info["eos_token"] == "<|endoftext|>" and info["model_max_length"] == N_CTX
    tokens = post(demo_server, "/tokenize", {"prompt": "Hello<|endoftext|>", "add_special_tokens": False}).json()
    assert tokens["tokens"][-1] == 8191 and tokens["max_model_len"] == N_CTX  # the demo vocabulary's eot
    assert post(demo_server, "/detokenize", {"tokens": tokens["tokens"]}).json()["prompt"] == "Hello<|endoftext|>"
    page = httpx.get(demo_server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_metrics_count_requests_and_tokens(demo_server, client):
    def scrape() -> dict[str, float]:
        values = {}
        for line in httpx.get(demo_server.url + "/metrics").text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    before = scrape()
    client.completions.create(model="demo", prompt="O", max_tokens=7, extra_body={"ignore_eos": True})
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="demo", prompt="O", max_tokens=-1)
    after = scrape()
    ok = 'gpt2_requests_total{endpoint="/v1/completions",status="200"}'
    bad = 'gpt2_requests_total{endpoint="/v1/completions",status="400"}'
    assert after[ok] - before.get(ok, 0) == 1 and after[bad] - before.get(bad, 0) == 1
    assert after["gpt2_generation_tokens_total"] - before.get("gpt2_generation_tokens_total", 0) == 7
    assert after["gpt2_time_to_first_token_seconds_count"] > before.get("gpt2_time_to_first_token_seconds_count", 0)
    for name in ("gpt2_queue_length", "gpt2_batch_size", "gpt2_inter_token_latency_seconds_count",
                 "gpt2_prompt_tokens_total", "gpt2_decode_batch_size_count",
                 'gpt2_request_latency_seconds_count{endpoint="/v1/completions"}'):
        assert name in after


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("body, status, param", [
    ({"prompt": "x", "temperature": -1}, 400, "temperature"),
    ({"prompt": "x", "temperature": "hot"}, 400, "temperature"),
    ({"prompt": "x", "top_p": 0}, 400, "top_p"),
    ({"prompt": "x", "top_k": -2}, 400, "top_k"),
    ({"prompt": "x", "max_tokens": "20"}, 400, "max_tokens"),
    ({"prompt": "x", "max_tokens": True}, 400, "max_tokens"),
    ({"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
    ({"prompt": "x", "max_tokens": 300}, 400, "max_tokens"),
    ({"prompt": "x", "logprobs": 6}, 400, "logprobs"),
    ({"prompt": "x", "n": 0}, 400, "n"),
    ({"prompt": "x", "seed": -1}, 400, "seed"),
    ({"prompt": "x", "stop": [""]}, 400, "stop"),
    ({"prompt": "x", "stop_token_ids": [-1]}, 400, "stop_token_ids"),
    ({"prompt": "x", "stop_token_ids": 5}, 400, "stop_token_ids"),
    ({"prompt": "x", "presence_penalty": 0.5}, 400, "presence_penalty"),
    ({"prompt": "x", "frequency_penalty": 1}, 400, "frequency_penalty"),
    ({"prompt": "x", "logit_bias": {"1": 5}}, 400, "logit_bias"),
    ({"prompt": "x", "suffix": "y"}, 400, "suffix"),
    ({"prompt": "x", "stream_options": {"include_usage": True}}, 400, "stream_options"),
    ({"prompt": 5}, 400, "prompt"),
    ({"prompt": []}, 400, "prompt"),
    ({"prompt": ""}, 400, "prompt"),
    ({"prompt": [1, "a"]}, 400, "prompt"),
    ({"prompt": [99999]}, 400, "prompt"),
    ({}, 400, "prompt"),
    ({"prompt": "x", "model": "gpt-4"}, 404, "model"),
    ({"prompt": [1] * 300}, 413, "prompt"),
])
def test_bad_parameters_are_named(demo_server, body, status, param):
    r = post(demo_server, "/v1/completions", body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["message"] and error["type"]
    assert "Traceback" not in r.text


@pytest.mark.parametrize("path, body, status, param", [
    ("/v1/chat/completions", {"messages": []}, 400, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]}, 400, "messages[0].role"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}, 400, "top_logprobs"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 1000}, 400, "max_tokens"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x " * 300}]}, 413, "prompt"),
    ("/v1/completions", "{not json", 400, None),
    ("/v1/completions", '{"prompt": "x", "temperature": NaN}', 400, "temperature"),
    ("/v1/completions", "[1, 2]", 400, None),
    ("/tokenize", {"prompt": 5}, 400, "prompt"),
    ("/detokenize", {"tokens": ["a"]}, 400, "tokens"),
    ("/detokenize", {"tokens": [10**6]}, 400, "tokens"),
    ("/tokenize", {"messages": "Hi"}, 400, "messages"),
])
def test_bad_requests_elsewhere(demo_server, path, body, status, param):
    r = post(demo_server, path, body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param


def test_http_errors_and_the_server_keeps_serving(demo_server, client):
    r = httpx.get(demo_server.url + "/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = httpx.get(demo_server.url + "/v1/completions")
    assert r.status_code == 405 and "error" in r.json()
    r = post(demo_server, "/v1/completions", b'{"prompt": "' + b"x" * (9 * 2**20) + b'"}')
    assert r.status_code == 413 and "larger than" in r.json()["error"]["message"]

    def chunked():  # no Content-Length: the limit holds as the body is read
        yield b'{"prompt": "'
        for _ in range(9):
            yield b"x" * 2**20
        yield b'"}'

    r = post(demo_server, "/v1/completions", chunked())
    assert r.status_code == 413 and "larger than" in r.json()["error"]["message"]
    r = post(demo_server, "/v1/completions", iter([b'{"prompt": "O", ', b'"max_tokens": 2}']))
    assert r.status_code == 200
    assert client.completions.create(model="demo", prompt="O", max_tokens=2).choices[0].text is not None
    assert "Traceback" not in demo_server.log_text()


# ------------------------------------------------------------------ servers of their own


@pytest.fixture(scope="module")
def slow_checkpoint(tmp_path_factory):
    """A random gpt2-mini with a 1024-token context: ~1000 tokens take seconds to generate, so a
    request is surely still running when a test acts on it."""
    import torch

    from gpt2.config import GPT2Config
    from gpt2.model import GPT2
    from gpt2.tokenizer import Tokenizer

    directory = tmp_path_factory.mktemp("slow")
    torch.manual_seed(0)
    GPT2(GPT2Config.preset("gpt2-mini").replace(n_ctx=1024)).save_pretrained(directory)
    Tokenizer.from_pretrained("gpt2").save_pretrained(directory)
    return str(directory)


LONG = {"prompt": "O", "max_tokens": 1000, "stream": True, "ignore_eos": True}


def test_api_key(start_server):
    served = start_server("--model", "demo", "--api-key", "s3cret")
    wrong = openai.OpenAI(base_url=served.api, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.completions.create(model="demo", prompt="O", max_tokens=2)
    missing = post(served, "/v1/completions", {"prompt": "O"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    ok = openai.OpenAI(base_url=served.api, api_key="s3cret", max_retries=0)
    assert ok.completions.create(model="demo", prompt="O", max_tokens=2).usage.completion_tokens >= 1
    assert httpx.get(served.url + "/health").status_code == 200  # open without the key
    assert httpx.post(served.url + "/tokenize", json={"prompt": "x"}).status_code == 401


def test_full_queue_429_and_a_disconnect_frees_the_slot(start_server, slow_checkpoint):
    served = start_server("--model", slow_checkpoint, "--max-batch", "1", "--max-queue", "1")
    with httpx.stream("POST", served.api + "/completions", json=LONG, timeout=60) as r:
        lines = r.iter_lines()  # kept: a dropped iterator closes the connection
        first = next(lines)  # generating: the one slot is taken
        assert first.startswith("data: {") and '"text"' in first, first
        two = post(served, "/v1/completions", {"prompt": "O", "max_tokens": 2, "n": 2})  # 2 > 1 waiting place
        assert two.status_code == 429 and two.json()["error"]["type"] == "rate_limit_error", two.text
    # The client went away mid-stream: its slot is free at once (not after 1000 tokens).
    started = time.monotonic()
    r = post(served, "/v1/completions", {"prompt": "O", "max_tokens": 2, "n": 2})
    assert r.status_code == 200 and time.monotonic() - started < 5


def test_sigterm_finishes_in_flight_requests_and_exits_0(start_server, slow_checkpoint):
    served = start_server("--model", slow_checkpoint)
    streaming, result = threading.Event(), {}

    def request() -> None:
        with httpx.stream("POST", served.api + "/completions", json={**LONG, "max_tokens": 100}, timeout=60) as r:
            lines = []
            for line in r.iter_lines():
                streaming.set()
                lines.append(line)
        lines = [line for line in lines if line]
        result["last"] = lines[-1]
        result["finish"] = json.loads(lines[-2].removeprefix("data: "))["choices"][0]["finish_reason"]

    t = threading.Thread(target=request)
    t.start()
    assert streaming.wait(30)
    served.process.send_signal(signal.SIGTERM)
    t.join(60)
    assert result == {"last": "data: [DONE]", "finish": "length"}
    assert served.process.wait(30) == 0
    log = served.log_text()
    assert "Traceback" not in log and "Shutting down" in log


def test_health_is_503_while_the_model_loads(tmp_path):
    """An app whose loader waits: /health and the API answer 503 until it returns."""
    import uvicorn

    from gpt2 import load
    from gpt2.serve import ServeSettings, create_app

    release = threading.Event()
    model, tok = load("demo")

    def slow_loader():
        release.wait(30)
        return model, tok

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ServeSettings(), loader=slow_loader), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert httpx.get(url + "/health").status_code == 503
        busy = httpx.post(url + "/v1/completions", json={"prompt": "O"})
        assert busy.status_code == 503 and "loading" in busy.json()["error"]["message"]
        release.set()
        while httpx.get(url + "/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert httpx.post(url + "/v1/completions", json={"prompt": "O", "max_tokens": 2}).status_code == 200
    finally:
        release.set()
        server.should_exit = True
        thread.join(30)


def test_an_adapter_and_a_chat_checkpoint(start_server, tmp_path, demo_adapter):
    """A LoRA adapter on the demo model serves what `gpt2 generate --adapter` gives; a chat-tuned
    checkpoint's template renders the messages and ends answers at <|im_end|>."""
    from gpt2 import generate, load
    from gpt2.finetune.instruct import DEFAULT_CHAT_TEMPLATE, chat_tokenizer

    tok = load("demo")[1]
    served = start_server("--model", str(demo_adapter), "--model-name", "tuned")
    client = openai.OpenAI(base_url=served.api, api_key="none", max_retries=0)
    got = client.completions.create(model="tuned", prompt="ROMEO:", max_tokens=16, temperature=0)
    tuned = generate(load(demo_adapter)[0], tok, "ROMEO:", temperature=0, max_new_tokens=16)[0]
    plain = generate(load("demo")[0], tok, "ROMEO:", temperature=0, max_new_tokens=16)[0]
    assert got.choices[0].text == tuned.text != plain.text
    served.stop()

    chat_dir = tmp_path / "chat"
    model, tok = load("demo")
    tok = chat_tokenizer(tok)
    model.resize_token_embeddings(len(tok))
    model.save_pretrained(chat_dir)
    tok.save_pretrained(chat_dir)
    served = start_server("--model", str(chat_dir))
    assert httpx.get(served.url + "/tokenizer_info").json()["chat_template"] == DEFAULT_CHAT_TEMPLATE
    ids = post(served, "/tokenize", {"messages": [{"role": "user", "content": "Hi"}]}).json()["tokens"]
    assert post(served, "/detokenize", {"tokens": ids}).json()["prompt"] == \
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    reply = httpx.post(served.api + "/chat/completions", timeout=60, json={
        "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 40, "logprobs": True}).json()
    tokens = [c["token"] for c in reply["choices"][0]["logprobs"]["content"]]
    assert "<|im_end|>" not in tokens and "<|endoftext|>" not in tokens  # the stops are not output


def test_chat_stops_follow_the_template():
    """An answer ends at the template's end of turn: <|im_end|> (or <|endoftext|>) for ChatML, the
    next "User:" line for the plain transcript of a base model."""
    from gpt2.loading import load_tokenizer
    from gpt2.finetune.instruct import chat_tokenizer
    from gpt2.serve.protocol import ChatRequest, Limits, chat_sequences

    plain = load_tokenizer("demo")
    body = ChatRequest(messages=[{"role": "user", "content": "Hi"}], stop="END")
    _, (sequence,) = chat_sequences(body, plain, Limits(256, len(plain)))
    assert sequence.options.stop == ("END", "\nUser:") and sequence.options.stop_token_ids is None
    chat = chat_tokenizer(plain)
    prompt, (sequence,) = chat_sequences(body, chat, Limits(256, len(chat)))
    assert sequence.options.stop_token_ids == (chat.eot_token, chat.special_tokens["<|im_end|>"])
    assert sequence.max_tokens == 256 - len(prompt)  # no max_tokens: the rest of the context, as vLLM


def test_a_stop_token_is_in_completion_logprobs_not_in_chat(demo_server, client):
    """Completions list the stop token that ended a choice last in its logprobs (lm-eval reads the
    generated token as the last entry), with no text for it; chat answers leave it out."""
    newline = post(demo_server, "/tokenize", {"prompt": "\n"}).json()["tokens"]
    assert len(newline) == 1
    got = client.completions.create(model="demo", prompt="ROMEO:\nWhat", max_tokens=60, temperature=0,
                                    logprobs=0, extra_body={"stop_token_ids": newline})
    choice = got.choices[0]
    assert choice.finish_reason == "stop" and choice.logprobs.tokens[-1] == "\n" and "\n" not in choice.text
    assert "".join(choice.logprobs.tokens[:-1]) == choice.text
    assert got.usage.completion_tokens == len(choice.logprobs.tokens)
    chat = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Hi"}], max_tokens=60,
                                          temperature=0, logprobs=True, extra_body={"stop_token_ids": newline})
    assert chat.choices[0].finish_reason == "stop"
    assert "".join(c.token for c in chat.choices[0].logprobs.content) == chat.choices[0].message.content


def test_a_quantized_model_serves_what_generate_gives(start_server):
    """--quantize int8 serves the int8 model: greedy completions equal gpt2.generate on
    gpt2.load("demo", quantize="int8")."""
    from gpt2 import generate, load

    served = start_server("--model", "demo", "--quantize", "int8")
    client = openai.OpenAI(base_url=served.api, api_key="none", max_retries=0)
    model, tok = load("demo", quantize="int8")
    for prompt in ("ROMEO:", "The king"):
        got = client.completions.create(model="demo", prompt=prompt, max_tokens=24, temperature=0)
        want = generate(model, tok, prompt, temperature=0, max_new_tokens=24)[0].text
        assert got.choices[0].text == want
