"""Scheduler with a model-free runner: batching, chunked prefill, preemption, prefix caching,
priority; outputs must not depend on how requests were batched."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tests.core.model_free import VOCAB, apply_scheduler_output, next_token
from vllm.config import SchedulerConfig
from vllm.core.kv_cache_manager import KVCacheManager
from vllm.core.request import Request, RequestStatus
from vllm.core.scheduler import Scheduler
from vllm.core.types import ModelRunnerOutput, SchedulerOutput
from vllm.sampling_params import SamplingParams
from vllm.worker.input_batch import CachedRequestState, build_host_batch

# A model-free runner: it keeps the runner-side state machine and a fake KV cache storing token
# ids per slot, checks every request's cached context against its real tokens, then "samples"
# a token that is a deterministic function of the whole context.

class FakeRunner:
    def __init__(self, num_blocks: int, block_size: int) -> None:
        self.block_size = block_size
        self.cache = np.full(num_blocks * block_size, -1, dtype=np.int64)  # slot -> token id
        self.requests: dict[str, CachedRequestState] = {}
        self.steps = 0
        self.max_tokens_seen = 0

    def execute_model(self, so: SchedulerOutput) -> ModelRunnerOutput:
        self.steps += 1
        apply_scheduler_output(self.requests, so)
        if so.total_num_scheduled_tokens == 0:
            return ModelRunnerOutput()
        self.max_tokens_seen = max(self.max_tokens_seen, so.total_num_scheduled_tokens)
        states = [self.requests[r] for r in so.num_scheduled_tokens]
        hb = build_host_batch(states, list(so.num_scheduled_tokens.values()), self.block_size)
        self.cache[hb.slot_mapping] = hb.input_ids  # the "KV write"
        out = ModelRunnerOutput(req_ids=hb.req_ids, sampled_token_ids=[[] for _ in states],
                                logprobs=[None] * len(states))
        for i, st in enumerate(states):
            seq_len = int(hb.seq_lens[i])
            pos = np.arange(seq_len)
            blocks = hb.block_tables[i, pos // self.block_size]
            context = self.cache[blocks * self.block_size + pos % self.block_size].tolist()
            assert context == st.token_ids[:seq_len], f"{st.req_id}: cached context is wrong"
            if hb.sample_mask[i]:
                tok = next_token(context)
                st.append(tok)
                out.sampled_token_ids[i] = [tok]
        return out

BS = 4


def reference(prompt: list[int], max_tokens: int) -> list[int]:
    toks = list(prompt)
    for _ in range(max_tokens):
        toks.append(next_token(toks))
    return toks[len(prompt):]


def make(num_blocks: int, budget: int, max_seqs: int = 64, policy: str = "fcfs",
         chunked: bool = True, caching: bool = True) -> tuple[Scheduler, FakeRunner]:
    cfg = SchedulerConfig(max_num_seqs=max_seqs, max_num_batched_tokens=budget,
                          enable_chunked_prefill=chunked, policy=policy)
    kv = KVCacheManager(num_blocks, BS, enable_caching=caching)
    return Scheduler(cfg, kv, budget), FakeRunner(num_blocks, BS)


def run(sched: Scheduler, runner: FakeRunner, max_steps: int = 5000) -> dict[str, list[int]]:
    got: dict[str, list[int]] = {}
    for _ in range(max_steps):
        if not sched.has_unfinished_requests():
            break
        so = sched.schedule()
        assert so.total_num_scheduled_tokens <= sched.max_num_batched_tokens
        assert len(so.num_scheduled_tokens) <= sched.max_num_seqs
        for out in sched.update_from_output(so, runner.execute_model(so)):
            got.setdefault(out.request_id, []).extend(out.new_token_ids)
    assert not sched.has_unfinished_requests(), "scheduler did not finish (hang)"
    assert sched.kv.num_free_blocks == sched.kv.num_blocks
    return got


def prompts(n: int, seed: int = 0, lo: int = 1, hi: int = 30) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(VOCAB) for _ in range(rng.randrange(lo, hi))] for _ in range(n)]


def add(sched: Scheduler, ps: list[list[int]], max_tokens: int = 12, **kw) -> None:
    for i, p in enumerate(ps):
        sched.add_request(Request(str(i), p, SamplingParams(max_tokens=max_tokens, ignore_eos=True),
                                  arrival_time=float(i), max_len=10_000, **kw))


@pytest.mark.parametrize("num_blocks,budget,chunked", [
    (256, 512, True),   # everything fits
    (256, 7, True),     # tiny token budget: chunked prefill
    (40, 64, True),     # few blocks: preemption
    (14, 5, True),      # both
    (256, 64, False),   # no chunking
])
def test_outputs_independent_of_batching(num_blocks: int, budget: int, chunked: bool) -> None:
    ps = prompts(12)
    sched, runner = make(num_blocks, budget, chunked=chunked)
    add(sched, ps)
    got = run(sched, runner)
    for i, p in enumerate(ps):
        assert got[str(i)] == reference(p, 12), f"request {i}"
    if num_blocks == 40:
        assert sched.get_stats().num_preemptions > 0
    if budget == 7:
        assert runner.max_tokens_seen <= 7


def test_decodes_first_and_prefill_mixed() -> None:
    sched, runner = make(256, 10)
    add(sched, [[1, 2, 3]], max_tokens=20)
    so = sched.schedule()
    sched.update_from_output(so, runner.execute_model(so))
    sched.add_request(Request("long", list(range(30)), SamplingParams(max_tokens=2), 1.0, max_len=999))
    so = sched.schedule()
    assert list(so.num_scheduled_tokens) == ["0", "long"]
    assert so.num_scheduled_tokens == {"0": 1, "long": 9}  # decode first, then a prefill chunk


def test_max_num_seqs() -> None:
    sched, runner = make(256, 1000, max_seqs=3)
    add(sched, prompts(8, seed=3))
    so = sched.schedule()
    assert len(so.num_scheduled_tokens) == 3
    sched.update_from_output(so, runner.execute_model(so))
    run(sched, runner)


def test_prefix_cache_hits_and_sharing() -> None:
    sched, runner = make(64, 256)
    shared = list(range(20))
    add(sched, [shared + [50 + i] for i in range(4)], max_tokens=4)
    got = run(sched, runner)
    stats = sched.get_stats()
    assert stats.prefix_cache_hits >= 3 * 20 // BS * BS
    for i in range(4):
        assert got[str(i)] == reference(shared + [50 + i], 4)


def test_abort_frees_blocks_immediately() -> None:
    sched, runner = make(64, 256)
    add(sched, prompts(6, seed=5), max_tokens=50)
    for _ in range(3):
        so = sched.schedule()
        sched.update_from_output(so, runner.execute_model(so))
    sched.finish_requests(["0", "3", "5"], RequestStatus.FINISHED_ABORTED)
    assert set(sched.requests) == {"1", "2", "4"}
    sched.finish_requests(["1", "2", "4", "missing"], RequestStatus.FINISHED_ABORTED)
    assert sched.kv.num_free_blocks == 64 and not sched.has_unfinished_requests()


def test_priority_policy_order_and_victim() -> None:
    sched, runner = make(256, 1000, max_seqs=1, policy="priority")
    for rid, prio in (("a", 5), ("b", 0), ("c", 2)):
        sched.add_request(Request(rid, [1, 2], SamplingParams(max_tokens=1), 0.0, priority=prio,
                                  max_len=99))
    order = []
    while sched.has_unfinished_requests():
        so = sched.schedule()
        order += list(so.num_scheduled_tokens)
        sched.update_from_output(so, runner.execute_model(so))
    assert order == ["b", "c", "a"]


def test_stop_conditions() -> None:
    sched, runner = make(64, 256)
    p = [3, 1, 4, 1, 5]
    ref = reference(p, 10)
    sched.add_request(Request("eos", p, SamplingParams(max_tokens=10), 0.0, eos_token_id=ref[2], max_len=99))
    sched.add_request(Request("stopid", p, SamplingParams(max_tokens=10, stop_token_ids=[ref[3]]), 0.0,
                              max_len=99))
    sched.add_request(Request("len", p, SamplingParams(max_tokens=10), 0.0, max_len=len(p) + 2))
    got = run(sched, runner)
    assert got["eos"] == ref[:3]
    assert got["stopid"] == ref[:4]
    assert got["len"] == ref[:2]
