"""BlockPool and KVCacheManager: ref counts, prefix hits, LRU eviction, full return of blocks."""

from __future__ import annotations

import random

import pytest

from vllm.core.block_pool import BlockPool
from vllm.core.kv_cache_manager import KVCacheManager
from vllm.core.request import Request
from vllm.sampling_params import SamplingParams

BS = 4


def _req(rid: str, tokens: list[int], **kw) -> Request:
    return Request(rid, tokens, SamplingParams(max_tokens=8, **kw), arrival_time=0.0)


def test_pool_alloc_free_refcounts() -> None:
    pool = BlockPool(4)
    blocks = pool.get_new_blocks(3)
    assert pool.num_free_blocks == 1 and all(b.ref_cnt == 1 for b in blocks)
    pool.touch(blocks[:1])
    assert blocks[0].ref_cnt == 2
    pool.free_blocks(blocks)
    assert pool.num_free_blocks == 3  # blocks[0] still referenced once
    pool.free_blocks(blocks[:1])
    assert pool.num_free_blocks == 4
    with pytest.raises(RuntimeError):
        pool.free_blocks(blocks[:1])
    with pytest.raises(RuntimeError):
        pool.get_new_blocks(5)


def test_prefix_hit_and_stats() -> None:
    kv = KVCacheManager(num_blocks=16, block_size=BS)
    prompt = list(range(10))  # 2 full blocks + 2 tokens
    a = _req("a", prompt)
    assert kv.get_computed_blocks(a) == []
    assert kv.allocate_slots(a, a.num_tokens) is not None
    b = _req("b", prompt[:9] + [99])
    hits = kv.get_computed_blocks(b)
    assert [h.block_id for h in hits] == kv.block_ids("a")[:2]
    assert kv.allocate_slots(b, b.num_tokens - 2 * BS, hits) is not None
    assert kv.block_ids("b")[:2] == kv.block_ids("a")[:2]
    assert kv.stats.queries == 20 and kv.stats.hits == 8
    # A prompt that is exactly full blocks keeps its last block to compute (logits needed).
    c = _req("c", prompt[:8])
    assert len(kv.get_computed_blocks(c)) == 1


def test_lru_eviction_order() -> None:
    kv = KVCacheManager(num_blocks=4, block_size=BS)
    r1, r2 = _req("r1", list(range(4)) + [50]), _req("r2", list(range(100, 104)) + [50])
    for r in (r1, r2):
        kv.allocate_slots(r, r.num_tokens)  # 2 blocks each, first one full and cached
    kv.free(r1)
    kv.free(r2)  # r1's cached block was freed first -> evicted first
    r3 = _req("r3", list(range(200, 212)) + [1])
    assert kv.allocate_slots(r3, 3 * BS) is not None  # 2 uncached free blocks + 1 evicted
    assert kv.pool.num_evictions == 1
    kv.free(r3)
    r1b = _req("r1b", list(range(4)) + [9])
    r2b = _req("r2b", list(range(100, 104)) + [9])
    assert kv.get_computed_blocks(r1b) == []
    assert len(kv.get_computed_blocks(r2b)) == 1


def test_lru_eviction_strict() -> None:
    kv = KVCacheManager(num_blocks=3, block_size=BS)
    reqs = [_req(f"r{i}", [i * 10 + j for j in range(BS)] + [1]) for i in range(3)]
    for r in reqs:
        assert kv.allocate_slots(r, BS) is not None  # one full cached block each
    for r in reqs:
        kv.free(r)
    new = _req("n", [999] * BS + [1])
    kv.allocate_slots(new, BS)  # evicts the least recently freed: r0's block
    assert kv.get_computed_blocks(_req("x0", reqs[0].prompt_token_ids)) == []
    assert len(kv.get_computed_blocks(_req("x1", reqs[1].prompt_token_ids))) == 1


def test_allocation_failure_changes_nothing() -> None:
    kv = KVCacheManager(num_blocks=2, block_size=BS)
    r = _req("r", list(range(12)))
    assert kv.allocate_slots(r, 12) is None
    assert kv.num_free_blocks == 2 and kv.block_ids("r") == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_mix_returns_every_block(seed: int) -> None:
    rng = random.Random(seed)
    kv = KVCacheManager(num_blocks=32, block_size=BS)
    live: dict[str, Request] = {}
    base = [rng.randrange(50) for _ in range(12)]
    for step in range(200):
        if live and rng.random() < 0.4:
            rid = rng.choice(sorted(live))
            kv.free(live.pop(rid))  # finish or abort: same path
            continue
        n = rng.randrange(1, 20)
        tokens = (base[: rng.randrange(13)] + [rng.randrange(50) for _ in range(n)]) or [1]
        r = _req(f"q{step}", tokens)
        hits = kv.get_computed_blocks(r)
        if kv.allocate_slots(r, r.num_tokens - len(hits) * BS, hits) is not None:
            live[r.request_id] = r
        # grow a random live request by a few decode tokens
        if live:
            g = live[rng.choice(sorted(live))]
            g.num_computed_tokens = g.num_tokens
            g.append_output_token(rng.randrange(50))
            kv.allocate_slots(g, 1)
    for r in list(live.values()):
        kv.free(r)
    assert kv.num_free_blocks == 32
    assert all(b.ref_cnt == 0 for b in kv.pool.blocks)
    assert kv.stats.hits > 0
