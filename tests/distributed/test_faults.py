"""Start-up validation of the TP size and supervision of dead workers."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from tests.distributed.utils import LLM_KW, PROMPTS, token_ids
from vllm import LLM, SamplingParams
from vllm.distributed.utils import validate_tp_config


@pytest.mark.parametrize(
    "fields, tp, message",
    [
        (dict(num_attention_heads=4, num_key_value_heads=2), 3,
         r"num_attention_heads=4 is not divisible by tensor_parallel_size=3"),
        (dict(num_attention_heads=6, num_key_value_heads=3), 2,
         r"num_key_value_heads=3 is not divisible by tensor_parallel_size=2"),
        (dict(num_attention_heads=12, num_key_value_heads=4), 6,
         r"tensor_parallel_size=6 is not a multiple of num_key_value_heads=4"),
        (dict(num_attention_heads=4, num_key_value_heads=2, intermediate_size=30), 4,
         r"intermediate_size=30 is not divisible by tensor_parallel_size=4"),
    ],
)
def test_validate_tp_config_rejects(fields: dict, tp: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_tp_config(SimpleNamespace(**fields), tp)


def test_validate_tp_config_accepts() -> None:
    validate_tp_config(SimpleNamespace(num_attention_heads=8, num_key_value_heads=2), 4)
    validate_tp_config(SimpleNamespace(num_attention_heads=8, num_key_value_heads=2), 8)  # replicated KV
    validate_tp_config(SimpleNamespace(n_head=4), 2)  # gpt2 naming, no kv heads
    validate_tp_config(SimpleNamespace(num_attention_heads=5), 1)


@pytest.mark.parametrize("backend", ["mp", "ray"])
def test_indivisible_heads_fail_before_spawning(
    backend: str, tiny_llama_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    def no_spawn(*a: object, **k: object) -> None:
        raise AssertionError("a worker was started before the TP size was validated")

    monkeypatch.setattr(multiprocessing.get_context("spawn"), "Process", no_spawn)
    start = time.monotonic()
    with pytest.raises(ValueError, match="num_attention_heads=4 .*tensor_parallel_size=3"):
        LLM(model=tiny_llama_dir, tensor_parallel_size=3, distributed_executor_backend=backend,
            **LLM_KW)
    assert time.monotonic() - start < 30


@pytest.mark.timeout(300)
def test_killed_worker_fails_fast_with_clear_error(make_tiny: Callable[..., str]) -> None:
    llm = LLM(model=make_tiny("llama"), tensor_parallel_size=2, distributed_executor_backend="mp",
              **LLM_KW)
    executor = llm.llm_engine.core.executor
    try:
        assert len(token_ids(llm)) == len(PROMPTS)  # healthy first
        victim = executor.workers[1].proc
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
        start = time.monotonic()
        with pytest.raises(RuntimeError, match=r"rank 1 .*died.*SIGKILL"):
            llm.generate(PROMPTS, SamplingParams(max_tokens=4), use_tqdm=False)
        assert time.monotonic() - start < 10
        # The surviving rank is stopped too, and the executor keeps failing fast.
        executor.workers[0].proc.join(15)
        assert not executor.workers[0].proc.is_alive()
        with pytest.raises(RuntimeError, match="rank 1"):
            executor.check_health()
    finally:
        llm.llm_engine.shutdown()
    assert all(not h.proc.is_alive() for h in executor.workers)


def test_uni_backend_rejects_tp_above_one() -> None:
    from vllm.config import config_from_flat

    with pytest.raises(ValueError, match="'uni' runs one process.*tensor_parallel_size=2"):
        config_from_flat(model="m", tensor_parallel_size=2, distributed_executor_backend="uni")
    assert config_from_flat(model="m", tensor_parallel_size=2).parallel.backend == "mp"
