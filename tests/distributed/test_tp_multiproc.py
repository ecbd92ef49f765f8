"""TP=2 through the multiproc executor (gloo on CPU) gives the same tokens as TP=1."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.distributed.utils import LLM_KW, reference_tokens, token_ids
from vllm import LLM, SamplingParams
from vllm.executor.multiproc import MultiprocExecutor

# Tiny checkpoints have 4 attention heads and 2 KV heads: both divide by 2.
ARCHS = ["llama", "qwen2", "mixtral", "qwen3_moe"]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("arch", ARCHS)
def test_tp2_matches_tp1(arch: str, make_tiny: Callable[..., str]) -> None:
    model_dir = make_tiny(arch)
    seeded = SamplingParams(temperature=1.0, top_k=20, seed=1234, max_tokens=6)
    want_greedy = reference_tokens(model_dir)
    want_seeded = reference_tokens(model_dir, seeded) if arch == "llama" else None
    llm = LLM(model=model_dir, tensor_parallel_size=2, distributed_executor_backend="mp", **LLM_KW)
    try:
        executor = llm.llm_engine.core.executor
        assert isinstance(executor, MultiprocExecutor)
        assert len(executor.workers) == 2 and all(h.proc.is_alive() for h in executor.workers)
        assert token_ids(llm) == want_greedy
        if want_seeded is not None:
            # Random sampling stays consistent across ranks (same seed, same draws) and matches
            # TP=1 with a per-request seed.
            assert token_ids(llm, seeded) == want_seeded
        executor.check_health()
    finally:
        llm.llm_engine.shutdown()
    assert all(not h.proc.is_alive() for h in executor.workers)


def _generate_in_daemon(model_dir: str, results: object) -> None:
    llm = LLM(model=model_dir, tensor_parallel_size=2, distributed_executor_backend="mp", **LLM_KW)
    try:
        results.put(token_ids(llm))  # type: ignore[attr-defined]
    finally:
        llm.llm_engine.shutdown()


@pytest.mark.timeout(600)
def test_tp2_inside_daemon_process(tiny_llama_dir: str) -> None:
    """`vllm serve` runs the engine core as a daemon process; its TP workers must still start."""
    import multiprocessing as mp

    want = reference_tokens(tiny_llama_dir)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_generate_in_daemon, args=(tiny_llama_dir, results), daemon=True)
    proc.start()
    try:
        assert results.get(timeout=300) == want
        proc.join(60)
        assert proc.exitcode == 0
    finally:
        if proc.is_alive():
            proc.kill()
