"""A real `vllm serve <tiny llama>` subprocess driven by the official `openai` client."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest
from click.testing import CliRunner
from server_utils import RemoteServer

MAX_LEN = 256
ENGINE_ARGS = ["--max-model-len", str(MAX_LEN), "--num-kv-blocks-override", "256",
               "--enforce-eager", "--served-model-name", "tiny"]
MODEL = "tiny"


@pytest.fixture(scope="module")
def server(tiny_llama_dir: str):
    srv = RemoteServer([tiny_llama_dir, *ENGINE_ARGS])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: RemoteServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def offline(tiny_llama_dir: str):
    from vllm import LLM

    return LLM(model=tiny_llama_dir, max_model_len=MAX_LEN, num_kv_blocks_override=256,
               enforce_eager=True)


def test_models(client: openai.OpenAI, server: RemoteServer) -> None:
    assert [m.id for m in client.models.list().data] == [MODEL]
    assert httpx.get(f"{server.url}/version").json()["version"]


def test_greedy_matches_offline(client: openai.OpenAI, offline) -> None:
    from vllm import SamplingParams

    prompts = ["Once upon a time", "The capital of France is"]
    params = SamplingParams(temperature=0.0, max_tokens=16, ignore_eos=True)
    want = [o.outputs[0].text for o in offline.generate(prompts, params, use_tqdm=False)]
    got = client.completions.create(model=MODEL, prompt=prompts, max_tokens=16, temperature=0,
                                    extra_body={"ignore_eos": True})
    assert [c.text for c in sorted(got.choices, key=lambda c: c.index)] == want
    assert got.usage.completion_tokens == 32


def test_stream_equals_non_stream(client: openai.OpenAI) -> None:
    kw = dict(model=MODEL, prompt="Hello, how are you", max_tokens=12, temperature=0)
    full = client.completions.create(**kw)
    chunks = list(client.completions.create(stream=True, stream_options={"include_usage": True},
                                            **kw))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == full.choices[0].text
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_chat(client: openai.OpenAI) -> None:
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    out = client.chat.completions.create(model=MODEL, messages=msgs, max_completion_tokens=10,
                                         temperature=0, logprobs=True, top_logprobs=3)
    choice = out.choices[0]
    assert choice.message.role == "assistant"
    assert out.usage.completion_tokens == len(choice.logprobs.content)
    assert all(len(t.top_logprobs) == 3 for t in choice.logprobs.content)
    chunks = list(client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=10,
                                                 temperature=0, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content


def test_n2_and_seed(client: openai.OpenAI) -> None:
    kw = dict(model=MODEL, prompt="The river", max_tokens=8, temperature=1.0, n=2, seed=42)
    a = client.completions.create(**kw)
    b = client.completions.create(**kw)
    assert len(a.choices) == 2
    assert [c.text for c in a.choices] == [c.text for c in b.choices]
    assert a.usage.completion_tokens <= 16


def test_logprobs(client: openai.OpenAI) -> None:
    out = client.completions.create(model=MODEL, prompt="one two three", max_tokens=5,
                                    temperature=0, logprobs=2, extra_body={"ignore_eos": True})
    lp = out.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == 5
    for sampled, top in zip(lp.token_logprobs, lp.top_logprobs, strict=True):
        assert 1 <= len(top) <= 2
        assert sampled == pytest.approx(max(top.values()), abs=1e-4)  # greedy = the top token


def test_stop_string(client: openai.OpenAI) -> None:
    kw = dict(model=MODEL, prompt="Once upon a time", max_tokens=16, temperature=0,
              extra_body={"ignore_eos": True})
    full = client.completions.create(**kw).choices[0].text
    stop = full[len(full) // 2: len(full) // 2 + 3]
    if not stop.strip():
        pytest.skip("generated text has no usable stop string")
    out = client.completions.create(stop=[stop], **kw).choices[0]
    assert out.text == full[: full.index(stop)]
    assert out.finish_reason == "stop"


def test_32_concurrent_streams(server: RemoteServer) -> None:
    async def one(aclient: openai.AsyncOpenAI, i: int) -> str:
        stream = await aclient.completions.create(model=MODEL, prompt=f"Story number {i}:",
                                                  max_tokens=8, temperature=0, stream=True,
                                                  extra_body={"ignore_eos": True})
        finish = None
        async for chunk in stream:
            finish = chunk.choices[0].finish_reason or finish
        return finish

    async def main() -> list[str]:
        aclient = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
        return await asyncio.gather(*(one(aclient, i) for i in range(32)))

    assert asyncio.run(main()) == ["length"] * 32


def _wait_blocks_free(server: RemoteServer, timeout_s: float = 30.0) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        held = server.metric("vllm:kv_cache_allocated_blocks")
        if held == 0 and server.metric("vllm:num_requests_running") == 0:
            return held
        time.sleep(0.2)
    return server.metric("vllm:kv_cache_allocated_blocks")


def test_disconnect_frees_blocks(server: RemoteServer) -> None:
    body = {"model": MODEL, "prompt": "A very long story begins", "max_tokens": 200,
            "temperature": 0, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=30) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()  # keep a reference: dropping the iterator closes the stream
        assert next(lines).startswith("data:")
        assert server.metric("vllm:kv_cache_allocated_blocks") > 0  # still generating
    # leaving the block closes the connection mid-stream
    assert _wait_blocks_free(server) == 0
    assert server.metric("vllm:request_aborted_total") >= 1


def test_disconnect_non_streaming(server: RemoteServer) -> None:
    """A non-streaming client that hangs up while its request runs: the request is aborted and
    its blocks freed. The client is a raw socket closed once /metrics shows blocks allocated, so
    the test does not depend on how fast the model generates; an attempt whose request finished
    before the close is retried."""
    import json
    import socket

    payload = json.dumps({"model": MODEL, "prompt": "Another long story", "max_tokens": 240,
                          "temperature": 0, "ignore_eos": True}).encode()
    request = (f"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
               ).encode() + payload
    for _ in range(5):
        before = server.metric("vllm:request_aborted_total")
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(request)
        deadline = time.monotonic() + 10
        running = False
        while time.monotonic() < deadline and not running:
            running = server.metric("vllm:kv_cache_allocated_blocks") > 0
        sock.close()
        assert _wait_blocks_free(server) == 0
        if running and server.metric("vllm:request_aborted_total") == before + 1:
            return
    pytest.fail("a disconnected non-streaming request was never aborted")


@pytest.mark.parametrize("path,body,status,param", [
    ("/v1/completions", {"prompt": "x", "temperature": -1}, 400, "temperature"),
    ("/v1/completions", {"prompt": "x", "top_p": 1.5}, 400, "top_p"),
    ("/v1/completions", {"prompt": "x", "max_tokens": -3}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": "x", "n": 1000}, 400, "n"),
    ("/v1/completions", {"prompt": "x", "logprobs": 50}, 400, "logprobs"),
    ("/v1/completions", {"prompt": "x", "logit_bias": {"100000": 5}}, 400, "logit_bias"),
    ("/v1/completions", {"prompt": [999999]}, 400, "prompt"),
    ("/v1/completions", {"prompt": "hello " * 400}, 400, "prompt"),
    ("/v1/completions", {"prompt": ""}, 400, "prompt"),
    ("/v1/completions", {"prompt": "x", "model": "other"}, 404, "model"),
    ("/v1/chat/completions", {"messages": "hi"}, 400, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}],
                              "top_logprobs": 2}, 400, "top_logprobs"),
])
def test_bad_inputs(server: RemoteServer, path: str, body: dict, status: int,
                    param: str) -> None:
    resp = httpx.post(f"{server.url}{path}", json={"model": MODEL, **body}, timeout=30)
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["message"] and err["param"] == param
    ok = httpx.post(f"{server.url}/v1/completions",
                    json={"model": MODEL, "prompt": "still alive", "max_tokens": 2}, timeout=30)
    assert ok.status_code == 200


def test_malformed_json(server: RemoteServer) -> None:
    resp = httpx.post(f"{server.url}/v1/completions", content=b"{oops",
                      headers={"content-type": "application/json"})
    assert resp.status_code == 400


def test_tokenize_roundtrip(server: RemoteServer) -> None:
    toks = httpx.post(f"{server.url}/tokenize", json={"prompt": "Hello world"}).json()
    assert toks["count"] == len(toks["tokens"]) > 0 and toks["max_model_len"] == MAX_LEN
    text = httpx.post(f"{server.url}/detokenize", json={"tokens": toks["tokens"]}).json()
    assert "Hello world" in text["prompt"]


def test_metrics_counters(server: RemoteServer) -> None:
    assert server.metric("vllm:generation_tokens_total") > 0
    assert server.metric("vllm:prompt_tokens_total") > 0
    assert server.metric("vllm:time_to_first_token_seconds_count") > 0
    assert server.metric("vllm:e2e_request_latency_seconds_count") > 0


def test_bench_serve(server: RemoteServer, tmp_path) -> None:
    from vllm.benchmarks.serve import serve_cmd

    out = tmp_path / "bench.json"
    result = CliRunner().invoke(serve_cmd, ["--base-url", server.url, "--num-prompts", "4",
                                            "--input-len", "16", "--output-len", "8",
                                            "--output-json", str(out)])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(out.read_text())
    assert data["completed"] == 4 and data["total_output_tokens"] == 32
    assert data["total_input_tokens"] == 64
    assert data["ttft_ms"]["mean"] > 0 and data["output_throughput"] > 0


def test_sigterm_exits_zero(server: RemoteServer) -> None:
    """Last: SIGTERM while a request is in flight -> it finishes, the server exits 0."""
    body = {"model": MODEL, "prompt": "Last words", "max_tokens": 32, "ignore_eos": True}

    async def main() -> int:
        async with httpx.AsyncClient(timeout=60) as http:
            task = asyncio.create_task(http.post(f"{server.url}/v1/completions", json=body))
            await asyncio.sleep(0.3)
            code = await asyncio.to_thread(server.terminate)
            resp = await task
            assert resp.status_code == 200
            return code

    assert asyncio.run(main()) == 0
