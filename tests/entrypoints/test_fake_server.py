"""The HTTP layer (protocol, errors, streaming, auth, limits) against a fake engine, in process:
the official `openai` client talks to the ASGI app through starlette's TestClient."""

from __future__ import annotations

import json

import openai
import pytest
from fake_engine import FakeEngine
from fastapi.testclient import TestClient
from transformers import AutoTokenizer

from vllm.entrypoints.openai.api_server import build_app
from vllm.testing.tokenizer import train_tokenizer

MODEL = "fake-model"
KEY = "sk-test-123"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    path = train_tokenizer(tmp_path_factory.mktemp("tok"))
    return AutoTokenizer.from_pretrained(path)


def _app(tokenizer, api_key=None, max_bytes=1 << 20):
    engine = FakeEngine(tokenizer, max_model_len=64)

    async def factory(metrics):
        engine.metrics = metrics
        return engine

    return build_app(factory, MODEL, api_key=api_key, max_request_bytes=max_bytes), engine


@pytest.fixture(scope="module")
def served(tokenizer):
    app, engine = _app(tokenizer)
    with TestClient(app) as http:
        yield http, engine


@pytest.fixture(scope="module")
def client(served) -> openai.OpenAI:
    http, _ = served
    return openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=http,
                         max_retries=0)


def test_models_health_version(served, client):
    http, _ = served
    assert [m.id for m in client.models.list().data] == [MODEL]
    assert http.get("/health").status_code == 200
    assert http.get("/version").json()["version"]
    assert http.get("/metrics").status_code == 200


def test_completion_basic_and_n(client):
    out = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=5, n=2)
    assert [c.index for c in out.choices] == [0, 1]
    assert all(c.finish_reason == "length" for c in out.choices)
    assert out.choices[0].text != out.choices[1].text
    assert out.usage.completion_tokens == 10
    assert out.usage.prompt_tokens > 0


def test_completion_batch_prompts_and_token_ids(client, tokenizer):
    ids = tokenizer.encode("hello world")
    out = client.completions.create(model=MODEL, prompt=[ids, ids], max_tokens=3)
    assert [c.index for c in out.choices] == [0, 1]
    assert out.choices[0].text == out.choices[1].text


def test_completion_stream_equals_non_stream(client):
    kw = dict(model=MODEL, prompt="The quick brown fox", max_tokens=6, seed=1)
    full = client.completions.create(**kw).choices[0].text
    chunks = list(client.completions.create(stream=True, stream_options={"include_usage": True},
                                            **kw))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == full
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


def test_completion_logprobs_and_echo(client):
    out = client.completions.create(model=MODEL, prompt="abc def", max_tokens=3, logprobs=1,
                                    echo=True)
    choice = out.choices[0]
    assert choice.text.startswith("abc def")
    assert len(choice.logprobs.tokens) == 3
    assert all(lp == -0.5 for lp in choice.logprobs.token_logprobs)


def test_stop_string(client):
    out = client.completions.create(model=MODEL, prompt="one two three", max_tokens=8,
                                    stop=["three"])
    assert "three" not in out.choices[0].text
    assert out.choices[0].finish_reason == "stop"


def test_chat_and_stream(client):
    msgs = [{"role": "user", "content": "Hi there"}]
    out = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=4,
                                         logprobs=True, top_logprobs=2)
    assert out.choices[0].message.role == "assistant"
    assert len(out.choices[0].logprobs.content) == 4
    assert len(out.choices[0].logprobs.content[0].top_logprobs) == 2
    chunks = list(client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=4,
                                                 stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == \
        out.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "length"


def test_stream_done_marker(served):
    http, _ = served
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 2,
            "stream": True}
    lines = [ln for ln in http.post("/v1/chat/completions", json=body).text.splitlines() if ln]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][6:])["choices"][0]["delta"]["role"] == "assistant"


def test_tokenize_roundtrip(served):
    http, _ = served
    toks = http.post("/tokenize", json={"prompt": "hello world"}).json()
    assert toks["count"] == len(toks["tokens"])
    assert http.post("/detokenize", json={"tokens": toks["tokens"]}).json()["prompt"] == \
        "hello world"


@pytest.mark.parametrize("body,param", [
    ({"prompt": "x", "temperature": -1}, "temperature"),
    ({"prompt": "x", "top_p": 0}, "top_p"),
    ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
    ({"prompt": "x", "n": 0}, "n"),
    ({"prompt": "x", "logprobs": 99}, "logprobs"),
    ({"prompt": "x", "logit_bias": {"999999": 1}}, "logit_bias"),
    ({"prompt": "x", "max_tokens": "many"}, "max_tokens"),
    ({"prompt": "x " * 200}, None),
    ({}, "prompt"),
    ({"prompt": []}, "prompt"),
])
def test_bad_completion_inputs(served, body, param):
    http, _ = served
    resp = http.post("/v1/completions", json={"model": MODEL, **body})
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["type"] == "BadRequestError" and err["message"]
    if param is not None:
        assert err["param"] == param
    assert http.post("/v1/completions", json={"model": MODEL, "prompt": "ok",
                                               "max_tokens": 1}).status_code == 200


def test_malformed_json_unknown_model(served):
    http, _ = served
    resp = http.post("/v1/completions", content=b"{not json",
                     headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "JSON" in resp.json()["error"]["message"]
    resp = http.post("/v1/completions", json={"model": "nope", "prompt": "x"})
    assert resp.status_code == 404 and resp.json()["error"]["param"] == "model"
    resp = http.post("/v1/chat/completions", json={"model": MODEL, "messages": []})
    assert resp.status_code == 400


def test_api_key_and_body_limit(tokenizer):
    app, _ = _app(tokenizer, api_key=KEY, max_bytes=200)
    with TestClient(app) as http:
        body = {"model": MODEL, "prompt": "x", "max_tokens": 1}
        assert http.post("/v1/completions", json=body).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert http.post("/v1/completions", json=body, headers=wrong).status_code == 401
        good = {"Authorization": f"Bearer {KEY}"}
        assert http.post("/v1/completions", json=body, headers=good).status_code == 200
        assert http.get("/health").status_code == 200
        big = {**body, "prompt": "y" * 500}
        resp = http.post("/v1/completions", json=big, headers=good)
        assert resp.status_code == 413 and resp.json()["error"]["message"]


def test_dead_engine(tokenizer):
    app, engine = _app(tokenizer)
    with TestClient(app) as http:
        engine.errored = True
        assert http.get("/health").status_code == 503
        resp = http.post("/v1/completions", json={"model": MODEL, "prompt": "x"})
        assert resp.status_code == 500
