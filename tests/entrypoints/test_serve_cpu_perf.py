"""Serving performance pieces: chunks for tokens without text, the `vllm bench serve` TTFT
rule, the CPU contention governor, the serving token budget and the engine-core warm-up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from vllm.config import VllmConfig
from vllm.engine.core_proc import warm_up
from vllm.entrypoints.openai.api_server import build_app
from vllm.entrypoints.openai.cli_serve import serving_defaults
from vllm.outputs import CompletionOutput, RequestOutput
from vllm.platforms import cpu_threads
from vllm.platforms.cpu_threads import ContentionGovernor

MODEL = "fake-model"


class _SilentThenText:
    """An engine whose first two tokens decode to no text (special tokens, partial UTF-8)."""

    tokenizer = None
    max_model_len = 64
    errored = False
    stats: dict[str, float] = {}

    def generate(self, prompt: Any, params: Any, request_id: str,
                 priority: int = 0) -> AsyncIterator[RequestOutput]:
        async def run() -> AsyncIterator[RequestOutput]:
            steps = [([7], ""), ([7, 8], ""), ([7, 8, 9], "abc")]
            for i, (ids, text) in enumerate(steps):
                await asyncio.sleep(0)
                done = i == len(steps) - 1
                co = CompletionOutput(0, text, ids, finish_reason="length" if done else None)
                yield RequestOutput(request_id, "p", [1, 2], [co], done)
        return run()

    def abort(self, request_id: str) -> None:
        pass

    def is_healthy(self) -> bool:
        return True

    async def shutdown(self) -> None:
        pass


def _sse_chunks(text: str) -> list[dict[str, Any]]:
    bodies = [ln[5:].strip() for ln in text.splitlines() if ln.startswith("data:")]
    return [json.loads(b) for b in bodies if b != "[DONE]"]


@pytest.fixture(scope="module")
def http():
    engine = _SilentThenText()

    async def factory(metrics: Any) -> _SilentThenText:
        return engine

    with TestClient(build_app(factory, MODEL)) as client:
        yield client


def test_completion_stream_sends_a_chunk_per_token_step(http) -> None:
    body = {"model": MODEL, "prompt": [1, 2], "max_tokens": 3, "stream": True}
    chunks = [c for c in _sse_chunks(http.post("/v1/completions", json=body).text)
              if c.get("choices")]
    assert [c["choices"][0]["text"] for c in chunks] == ["", "", "abc"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_chat_stream_sends_a_chunk_per_token_step(http) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    # render_chat needs a tokenizer: give the fake engine a minimal one
    http.app.state.ctx.engine.tokenizer = _ChatTokenizer()
    chunks = _sse_chunks(http.post("/v1/chat/completions", json=body).text)
    deltas = [c["choices"][0]["delta"] for c in chunks if c.get("choices")]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert len(deltas) == 4 and deltas[-1] == {"content": "abc"}


class _ChatTokenizer:
    def apply_chat_template(self, conversation: list[dict], **kwargs: Any) -> str:
        return "hi"

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [1, 2]


def test_bench_ttft_counts_chunks_without_text() -> None:
    """The client's TTFT is the first chunk with a choice, as vLLM's own client counts it."""
    from aiohttp import web

    from vllm.benchmarks.serve import _one_request

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for text in ("", "", "abc"):
            chunk = {"choices": [{"index": 0, "text": text}]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        usage = {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 3}}
        await resp.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
        return resp

    async def main() -> Any:
        import aiohttp

        app = web.Application()
        app.router.add_post("/v1/completions", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with aiohttp.ClientSession() as session:
                return await _one_request(session, f"http://127.0.0.1:{port}/v1/completions",
                                          {"prompt": [1, 2]})
        finally:
            await runner.cleanup()

    res = asyncio.run(main())
    assert res.ok and res.output_tokens == 3
    assert res.ttft > 0 and len(res.itl) == 2  # three chunks: TTFT + two inter-chunk gaps


# ---- CPU contention governor ---------------------------------------------------------------
def _governor(monkeypatch: pytest.MonkeyPatch, cores: tuple[int, ...]) -> tuple[Any, list]:
    applied: list[int] = []
    monkeypatch.setattr(ContentionGovernor, "_sample", lambda self: (0.0, 0, 0))
    gov = ContentionGovernor(cores, period_s=1.0)
    monkeypatch.setattr(gov, "_apply", lambda n: (applied.append(n), setattr(gov, "threads", n)))
    return gov, applied


def _feed(gov: ContentionGovernor, monkeypatch: pytest.MonkeyPatch, t: float, others: float,
          mine: float = 1.0) -> int | None:
    """One period of 1 s in which other processes used ``others`` cores."""
    hz = gov._hz
    t0, busy0, mine0 = gov._last
    sample = (t, busy0 + int((others + mine) * hz), mine0 + int(mine * hz))
    monkeypatch.setattr(ContentionGovernor, "_sample", lambda self: sample)
    monkeypatch.setattr(cpu_threads.time, "monotonic", lambda: t)
    return gov.tick()


def test_governor_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    gov, _ = _governor(monkeypatch, (0, 1))
    assert [gov.target(x) for x in (0.0, 0.3, 0.6, 0.85, 0.95, 1.7, 3.0)] == [2, 2, 2, 2, 1, 1, 1]
    gov4, _ = _governor(monkeypatch, (0, 1, 2, 3))
    assert [gov4.target(x) for x in (0.0, 0.8, 1.0, 2.5, 8.0)] == [4, 4, 3, 2, 1]


def test_governor_needs_agreeing_periods_and_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    gov, applied = _governor(monkeypatch, (0, 1))
    assert _feed(gov, monkeypatch, 0.5, others=1.5) is None  # before the period: no sample
    assert _feed(gov, monkeypatch, 1.0, others=1.5) is None  # 1st contended period: vote
    assert _feed(gov, monkeypatch, 2.0, others=1.5) is None  # 2nd
    assert _feed(gov, monkeypatch, 3.0, others=1.5) == 1  # 3rd agrees: shrink
    assert _feed(gov, monkeypatch, 4.0, others=0.0) is None
    assert _feed(gov, monkeypatch, 5.0, others=0.0) is None
    assert _feed(gov, monkeypatch, 6.0, others=1.2) is None  # a blip resets the vote
    for t in (7.0, 8.0):
        assert _feed(gov, monkeypatch, t, others=0.2) is None
    assert _feed(gov, monkeypatch, 9.0, others=0.2) == 2  # idle again: every core back
    assert applied == [1, 2]


def test_governor_ignores_a_short_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    gov, applied = _governor(monkeypatch, (0, 1))
    for t, others in ((1.0, 1.5), (2.0, 1.5), (3.0, 0.1), (4.0, 0.1)):
        assert _feed(gov, monkeypatch, t, others=others) is None
    assert applied == [] and gov.threads == 2


def test_governor_reads_proc() -> None:
    """Real /proc sampling: this process's own ticks are never counted as others' load."""
    gov = ContentionGovernor(tuple(sorted(__import__("os").sched_getaffinity(0))), period_s=0)
    sum(i * i for i in range(200_000))  # burn a little CPU of our own
    load = gov.others_load(gov._sample())
    assert 0.0 <= load <= len(gov.cores) + 1


# ---- serving token budget ------------------------------------------------------------------
def test_serving_budget_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from vllm import platforms

    class _P:
        serving_max_num_batched_tokens = 2048

    # Patch the cache behind `current_platform`, never a `current_platform` attribute: undoing
    # that would leave the real platform bound as a module attribute, which every later
    # `from vllm.platforms import current_platform` would then read instead of the cache.
    monkeypatch.setattr(platforms, "_current", _P())
    cfg = VllmConfig()
    assert serving_defaults(cfg).scheduler.max_num_batched_tokens == 2048
    explicit = cfg.replace(scheduler={"max_num_batched_tokens": 300})
    assert serving_defaults(explicit).scheduler.max_num_batched_tokens == 300
    no_chunk = cfg.replace(scheduler={"enable_chunked_prefill": False})
    assert serving_defaults(no_chunk).scheduler.max_num_batched_tokens is None
    from vllm.platforms.interface import UnspecifiedPlatform

    # a platform that names no serving budget (the interface default, None)
    monkeypatch.setattr(platforms, "_current", UnspecifiedPlatform())
    assert serving_defaults(cfg).scheduler.max_num_batched_tokens is None


def test_cpu_platform_serving_budget() -> None:
    from vllm.platforms.cpu import CpuPlatform

    assert CpuPlatform.serving_max_num_batched_tokens <= CpuPlatform.default_max_num_batched_tokens


# ---- engine-core warm-up -------------------------------------------------------------------
class _Core:
    def __init__(self, budget: int, max_len: int) -> None:
        self.config = VllmConfig().replace(scheduler={"max_num_batched_tokens": budget})
        self.max_model_len = max_len
        self.added: list[Any] = []
        self.steps = 0
        self.aborted: list[str] = []
        self.reset = 0

    def add_request(self, req: Any) -> None:
        self.added.append(req)

    def has_unfinished_requests(self) -> bool:
        return self.steps < 3

    def step(self) -> list:
        self.steps += 1
        return []

    def abort_requests(self, ids: list[str]) -> None:
        self.aborted.extend(ids)

    def reset_prefix_cache(self) -> bool:
        self.reset += 1
        return True


def test_warm_up_runs_a_burst_of_dummy_prompts_and_cleans_up() -> None:
    core = _Core(budget=2048, max_len=4096)
    warm_up(core)
    assert len(core.added) == 16  # a full budget over 16 prompts of 128 tokens
    assert {len(r.prompt_token_ids) for r in core.added} == {128}
    assert len({tuple(r.prompt_token_ids) for r in core.added}) == 16  # no prefix-cache hits
    for req in core.added:
        assert req.sampling_params.max_tokens == 4 and req.sampling_params.ignore_eos
    assert core.steps == 3 and core.reset == 1
    assert core.aborted == [r.request_id for r in core.added]
    short = _Core(budget=2048, max_len=100)  # each prompt is capped by max_model_len - 4
    warm_up(short)
    assert {len(r.prompt_token_ids) for r in short.added} == {96}
    small = _Core(budget=64, max_len=4096)  # a small budget: fewer, still 16-token prompts
    warm_up(small)
    assert len(small.added) == 4 and len(small.added[0].prompt_token_ids) == 16
    few = _Core(budget=2048, max_len=4096)
    few.config = few.config.replace(scheduler={"max_num_seqs": 2})
    warm_up(few)
    assert len(few.added) == 2 and len(few.added[0].prompt_token_ids) == 1024


def test_warm_up_skips_cores_without_config() -> None:
    class Bare:
        def add_request(self, req: Any) -> None:
            raise AssertionError("must not be called")

    warm_up(Bare())


def test_warm_up_respects_vocab_and_refusals() -> None:
    core = _Core(budget=512, max_len=4096)
    core.resolved = type("R", (), {"vocab_size": 7})()
    warm_up(core)
    assert max(core.added[0].prompt_token_ids) <= 6

    class Refusing(_Core):
        def add_request(self, req: Any) -> None:
            raise ValueError("prompt needs more KV blocks than the cache has")

    refusing = Refusing(budget=512, max_len=4096)
    warm_up(refusing)  # no exception, no steps
    assert refusing.steps == 0 and refusing.reset == 0

    class RefusingLater(_Core):  # a small KV cache: warm up with the prompts that fit
        def add_request(self, req: Any) -> None:
            if len(self.added) == 3:
                raise ValueError("no room")
            super().add_request(req)

    partial = RefusingLater(budget=512, max_len=4096)
    warm_up(partial)
    assert len(partial.added) == 3 and partial.steps == 3
    assert partial.aborted == [r.request_id for r in partial.added]


def test_start_overlaps_core_spawn_and_cleans_up_on_bad_model() -> None:
    """AsyncLLM.start spawns the core before resolving the model here; a model that cannot be
    resolved still raises the resolver's ValueError and leaves no core process behind."""
    import multiprocessing

    from vllm.engine.arg_utils import config_from_cli
    from vllm.engine.async_llm import AsyncLLM

    config = config_from_cli({"model": "/nonexistent/model-dir"})
    with pytest.raises(ValueError, match="does not exist"):
        asyncio.run(AsyncLLM.start(config))
    assert not [p for p in multiprocessing.active_children() if p.name == "EngineCore"]


# ---- API process priority ------------------------------------------------------------------
def _lowered_priorities(conn: Any) -> None:
    """Child process: one thread before, one after lower_api_priority(5); send back the nice
    value of every thread and the child that existed before (which keeps its own)."""
    import os
    import threading

    from vllm.entrypoints.openai.cli_serve import lower_api_priority

    stop = threading.Event()
    before = threading.Thread(target=stop.wait, daemon=True)
    before.start()
    base = os.getpriority(os.PRIO_PROCESS, 0)
    changed = lower_api_priority(5)
    after = threading.Thread(target=stop.wait, daemon=True)
    after.start()
    tids = [int(t) for t in os.listdir("/proc/self/task")]
    conn.send((base, changed, [os.getpriority(os.PRIO_PROCESS, t) for t in tids],
               lower_api_priority(0)))
    stop.set()


@pytest.mark.skipif(not hasattr(__import__("os"), "setpriority")
                    or not __import__("os").path.isdir("/proc/self/task"),
                    reason="needs per-thread priorities (Linux /proc)")
def test_lower_api_priority_covers_every_thread() -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_lowered_priorities, args=(send,))
    proc.start()
    base, changed, nices, unchanged = recv.recv()
    proc.join(30)
    assert changed >= 2 and unchanged == 0
    assert len(nices) >= 3 and all(n == min(19, base + 5) for n in nices)


def test_completion_chunk_template_matches_the_models() -> None:
    from vllm.entrypoints.openai.protocol import (
        CompletionChoice,
        CompletionLogProbs,
        CompletionResponse,
    )
    from vllm.entrypoints.openai.serving_completion import _ChunkRenderer

    renderer = _ChunkRenderer("cmpl-1", 'odd "model" \\ name')
    cases = [
        [CompletionChoice(index=0, text="")],
        [CompletionChoice(index=1, text='he said "hi"\n\tü€ \u2028'),
         CompletionChoice(index=3, text="x", finish_reason="stop", stop_reason=7)],
        [CompletionChoice(index=0, text="end", finish_reason="stop", stop_reason="STOP")],
        [CompletionChoice(index=0, text="a", logprobs=CompletionLogProbs(
            text_offset=[0], token_logprobs=[-0.5], tokens=["a"], top_logprobs=[{"a": -0.5}]))],
    ]
    for choices in cases:
        text = renderer.render(choices)
        assert text.startswith("data: ") and text.endswith("\n\n")
        got = json.loads(text[6:])
        want = CompletionResponse(id="cmpl-1", model='odd "model" \\ name',
                                  choices=choices).model_dump(exclude={"usage"})
        assert isinstance(got.pop("created"), int)
        want.pop("created")
        assert got == want


def test_completion_stream_ends_with_one_write(http) -> None:
    """The last token chunk, the usage chunk and [DONE] leave in one body write."""
    with http.stream("POST", "/v1/completions", json={
            "model": MODEL, "prompt": "p", "max_tokens": 3, "stream": True,
            "stream_options": {"include_usage": True}}) as resp:
        pieces = [p for p in resp.iter_raw() if p]
    text = b"".join(pieces).decode()
    chunks = _sse_chunks(text)
    assert [c["choices"][0]["text"] for c in chunks if c["choices"]] == ["", "", "abc"]
    assert chunks[-1]["usage"]["completion_tokens"] == 3 and text.endswith("data: [DONE]\n\n")
    last = pieces[-1].decode()
    assert '"finish_reason":"length"' in last and '"usage"' in last and "[DONE]" in last
