"""EngineCore with the real model runner on a tiny Llama: stats, abort, capacity errors."""

from __future__ import annotations

import time

import pytest

from vllm.config import config_from_flat
from vllm.core.types import EngineCoreRequest
from vllm.engine.core import EngineCore
from vllm.sampling_params import SamplingParams


def _req(rid: str, n: int, max_tokens: int = 8) -> EngineCoreRequest:
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
    return EngineCoreRequest(rid, list(range(1, n + 1)), params, time.time())


@pytest.fixture(scope="module")
def core(tiny_llama_dir: str) -> EngineCore:
    return EngineCore(config_from_flat(model=tiny_llama_dir, num_kv_blocks_override=12, block_size=16))


def test_step_stats_and_abort(core: EngineCore) -> None:
    core.add_request(_req("a", 20, max_tokens=50))
    core.add_request(_req("b", 5, max_tokens=50))
    outs = core.step()
    assert {o.request_id for o in outs} == {"a", "b"}
    stats = core.get_stats()
    assert stats.num_running == 2 and stats.num_blocks == 12 and 0 < stats.kv_cache_usage <= 1
    core.abort_requests(["a", "b"])
    stats = core.get_stats()
    assert stats.num_free_blocks == 12 and not core.has_unfinished_requests()
    assert core.step() == []


def test_finishes_with_length(core: EngineCore) -> None:
    core.add_request(_req("c", 3, max_tokens=4))
    toks, finish = [], None
    while core.has_unfinished_requests():
        for o in core.step():
            toks += o.new_token_ids
            finish = o.finish_reason
    assert len(toks) == 4 and finish == "length"


def test_prompt_larger_than_cache_rejected(core: EngineCore) -> None:
    with pytest.raises(ValueError, match="KV blocks"):
        core.add_request(_req("big", 12 * 16 + 1))
    with pytest.raises(ValueError, match="at least one token"):
        core.add_request(_req("empty", 0))
    assert not core.has_unfinished_requests()


def test_output_capped_by_cache_capacity(core: EngineCore) -> None:
    # The whole cache is 192 tokens: a request asking for more stops with "length", no hang.
    core.add_request(_req("long", 180, max_tokens=100))
    n, finish = 0, None
    while core.has_unfinished_requests():
        for o in core.step():
            n += len(o.new_token_ids)
            finish = o.finish_reason
    assert finish == "length" and 180 + n == 12 * 16
