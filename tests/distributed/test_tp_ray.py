"""TP=2 through the Ray executor on a local Ray instance gives the same tokens as TP=1."""

from __future__ import annotations

import importlib.util
import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from tests.distributed.utils import LLM_KW, PROMPTS, reference_tokens, token_ids
from vllm import LLM, SamplingParams

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install ray)"
)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.timeout(600)
def test_ray_tp2_matches_tp1(local_ray: None, make_tiny: Callable[..., str]) -> None:
    import ray

    from vllm.executor.ray import RayExecutor

    model_dir = make_tiny("llama")
    want = reference_tokens(model_dir)
    llm = LLM(model=model_dir, tensor_parallel_size=2, distributed_executor_backend="ray", **LLM_KW)
    try:
        executor = llm.llm_engine.core.executor
        assert isinstance(executor, RayExecutor) and len(executor.actors) == 2
        assert token_ids(llm) == want
        executor.check_health()
        pids = ray.get([a.pid.remote() for a in executor.actors])
        assert len(set(pids)) == 2 and os.getpid() not in pids

        # A killed actor makes the next request fail quickly, naming the rank.
        os.kill(pids[1], signal.SIGKILL)
        start = time.monotonic()
        with pytest.raises(RuntimeError, match="rank 1"):
            llm.generate(PROMPTS, SamplingParams(max_tokens=4), use_tqdm=False)
        assert time.monotonic() - start < 30
    finally:
        llm.llm_engine.shutdown()
    assert ray.is_initialized()  # the executor leaves a Ray instance it did not start running
