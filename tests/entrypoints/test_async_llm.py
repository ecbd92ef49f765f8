"""AsyncLLM + the engine-core process (spawned, over pipes) with a model-free fake core:
streaming, n > 1, abort on early exit (blocks freed), core refusals, engine death."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from transformers import AutoTokenizer

from vllm.config import VllmConfig
from vllm.engine.async_llm import AsyncLLM
from vllm.engine.core_client import EngineDeadError
from vllm.engine.output_processor import OutputProcessor
from vllm.engine.processing import InputProcessor
from vllm.entrypoints.openai.metrics import ServerMetrics
from vllm.sampling_params import SamplingParams
from vllm.testing.tokenizer import train_tokenizer

FAKE = "fake_core:FakeCore"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    return AutoTokenizer.from_pretrained(train_tokenizer(tmp_path_factory.mktemp("tok")))


async def _engine(tokenizer) -> AsyncLLM:
    config = VllmConfig()
    resolved = SimpleNamespace(max_model_len=64, vocab_size=len(tokenizer), generation_config={})
    engine = AsyncLLM(config, resolved, tokenizer, InputProcessor(config, tokenizer, resolved),
                      OutputProcessor(tokenizer), ServerMetrics("fake"))
    await engine.start_core(FAKE)
    return engine


async def _wait_for(cond, timeout_s: float = 10.0) -> bool:
    for _ in range(int(timeout_s / 0.05)):
        if cond():
            return True
        await asyncio.sleep(0.05)
    return cond()


def test_generate_n2_and_abort(tokenizer) -> None:
    async def main() -> None:
        engine = await _engine(tokenizer)
        try:
            ids = tokenizer.encode("one two three")
            outs = [o async for o in engine.generate(ids, SamplingParams(max_tokens=5, n=2), "r1")]
            assert outs[-1].finished
            final = {}
            for o in outs:
                final.update({c.index: c for c in o.outputs})
            assert sorted(final) == [0, 1]
            assert all(c.token_ids == (ids * 5)[:5] for c in final.values())
            assert all(c.finish_reason == "length" for c in final.values())
            # leave a long request early: the core must drop it (stats report no running)
            stream = engine.generate(ids, SamplingParams(max_tokens=10_000), "r2")
            async for _ in stream:
                break
            await stream.aclose()
            assert await _wait_for(lambda: engine.stats.get("num_running") == 0)
            assert engine.stats["num_free_blocks"] == engine.stats["num_blocks"]
        finally:
            await engine.shutdown()

    asyncio.run(main())


def test_core_refusal_and_input_errors(tokenizer) -> None:
    async def main() -> None:
        engine = await _engine(tokenizer)
        try:
            with pytest.raises(ValueError, match="KV cache"):
                async for _ in engine.generate(list(range(5, 60)), SamplingParams(), "big"):
                    pass
            with pytest.raises(ValueError, match="max_model_len"):
                engine.generate(list(range(5, 100)), SamplingParams(), "huge")
            out = [o async for o in engine.generate("hello", SamplingParams(max_tokens=2), "ok")]
            assert out[-1].finished and engine.is_healthy()
        finally:
            await engine.shutdown()

    asyncio.run(main())


def test_engine_death(tokenizer) -> None:
    async def main() -> None:
        engine = await _engine(tokenizer)
        try:
            with pytest.raises(EngineDeadError):
                async for _ in engine.generate("hello", SamplingParams(max_tokens=50), "crash-1"):
                    pass
            assert await _wait_for(lambda: not engine.is_healthy())
            with pytest.raises(EngineDeadError):
                engine.generate("hello", SamplingParams(), "after")
        finally:
            await engine.shutdown()

    asyncio.run(main())


def test_core_process_killed(tokenizer) -> None:
    """SIGKILL of the core process: in-flight requests fail, health turns bad."""
    async def main() -> None:
        engine = await _engine(tokenizer)
        try:
            stream = engine.generate("hello", SamplingParams(max_tokens=100_000), "long")
            first = await stream.__anext__()
            assert not first.finished
            engine._client.proc.kill()
            with pytest.raises(EngineDeadError):
                async for _ in stream:
                    pass
            assert not engine.is_healthy()
        finally:
            await engine.shutdown()

    asyncio.run(main())
