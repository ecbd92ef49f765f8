"""Scheduling one step ahead (what the engine core does on GPUs): step N+1 is scheduled and
launched before step N's sampled tokens reach the host. A model-free runner keeps those tokens
"on the device" and feeds them to the next step the way ModelRunner._feed_pending does; every
output must equal the one-step-at-a-time reference under chunking, preemption, prefix caching,
EOS stops and length caps, and every KV block must come back."""

from __future__ import annotations

import random
from collections import deque
from typing import Any

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

BS = 4


class SplitRunner:
    """begin(): runs the step with pending inputs taken from the last sampled ids (the
    "device"); finish(): the read-back, which appends the tokens to the runner state."""

    def __init__(self, num_blocks: int) -> None:
        self.cache = np.full(num_blocks * BS, -1, dtype=np.int64)  # slot -> token id
        self.requests: dict[str, CachedRequestState] = {}
        self.last: dict[str, int] = {}  # request -> token sampled by the last launched step
        self.fed_from_device = 0

    def begin(self, so: SchedulerOutput) -> Any:
        apply_scheduler_output(self.requests, so)
        if so.total_num_scheduled_tokens == 0:
            return ModelRunnerOutput(), []
        states = [self.requests[r] for r in so.num_scheduled_tokens]
        hb = build_host_batch(states, list(so.num_scheduled_tokens.values()), BS)
        ids = hb.input_ids.copy()
        for r in hb.pending_rows.tolist():
            ids[hb.query_start_loc[r + 1] - 1] = self.last[hb.req_ids[r]]
            self.fed_from_device += 1
        self.cache[hb.slot_mapping] = ids  # the KV write
        out = ModelRunnerOutput(req_ids=hb.req_ids, sampled_token_ids=[[] for _ in states],
                                logprobs=[None] * len(states))
        sampled: list[tuple[int, int]] = []
        last: dict[str, int] = {}
        for i, st in enumerate(states):
            seq_len = int(hb.seq_lens[i])
            pos = np.arange(seq_len)
            blocks = hb.block_tables[i, pos // BS]
            context = self.cache[blocks * BS + pos % BS].tolist()
            known = st.token_ids + ([self.last[st.req_id]] if st.num_pending else [])
            assert context == known[:seq_len], f"{st.req_id}: cached context is wrong"
            if hb.sample_mask[i]:
                tok = next_token(context)
                sampled.append((i, tok))
                last[st.req_id] = tok
                st.num_pending += 1
        self.last = last
        return out, [(states[i], i, tok) for i, tok in sampled]

    @staticmethod
    def finish(handle: Any) -> ModelRunnerOutput:
        out, sampled = handle
        for st, i, tok in sampled:
            st.append(tok)
            out.sampled_token_ids[i] = [tok]
        return out


def run_ahead(sched: Scheduler, runner: SplitRunner, max_steps: int = 5000
              ) -> tuple[dict[str, list[int]], dict[str, str | None], int]:
    """The engine core's loop with scheduling ahead; returns tokens, finish reasons and the
    number of steps launched ahead."""
    got: dict[str, list[int]] = {}
    reasons: dict[str, str | None] = {}
    inflight: deque = deque()
    ahead = 0
    for _ in range(max_steps):
        if not inflight:
            if not sched.has_unfinished_requests():
                break
            so = sched.schedule()
            inflight.append((so, runner.begin(so)))
        if sched.has_unfinished_requests() and sched.can_schedule_ahead():
            so = sched.schedule()
            inflight.append((so, runner.begin(so)))
            ahead += 1
        so, handle = inflight.popleft()
        for out in sched.update_from_output(so, runner.finish(handle)):
            got.setdefault(out.request_id, []).extend(out.new_token_ids)
            if out.finish_reason is not None:
                reasons[out.request_id] = out.finish_reason
    assert not sched.has_unfinished_requests(), "scheduler did not finish (hang)"
    assert sched.kv.num_free_blocks == sched.kv.num_blocks, "KV blocks leaked"
    return got, reasons, ahead


def reference(prompt: list[int], max_tokens: int, eos: int | None = None) -> list[int]:
    toks = list(prompt)
    for _ in range(max_tokens):
        toks.append(next_token(toks))
        if toks[-1] == eos:
            break
    return toks[len(prompt):]


def make(num_blocks: int, budget: int, caching: bool = True) -> tuple[Scheduler, SplitRunner]:
    cfg = SchedulerConfig(max_num_seqs=64, max_num_batched_tokens=budget,
                          enable_chunked_prefill=True, policy="fcfs")
    kv = KVCacheManager(num_blocks, BS, enable_caching=caching)
    return Scheduler(cfg, kv, budget), SplitRunner(num_blocks)


def prompts(n: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(VOCAB) for _ in range(rng.randrange(1, 30))] for _ in range(n)]


@pytest.mark.parametrize("num_blocks,budget,caching", [
    (256, 512, True),   # everything fits
    (256, 7, True),     # chunked prefill
    (40, 64, True),     # preemption, with a step in flight
    (14, 5, False),     # both, no prefix caching
])
def test_ahead_outputs_match_reference(num_blocks: int, budget: int, caching: bool) -> None:
    ps = prompts(12)
    sched, runner = make(num_blocks, budget, caching)
    for i, p in enumerate(ps):
        sched.add_request(Request(str(i), p, SamplingParams(max_tokens=12, ignore_eos=True),
                                  arrival_time=float(i), max_len=10_000))
    got, reasons, ahead = run_ahead(sched, runner)
    for i, p in enumerate(ps):
        assert got[str(i)] == reference(p, 12), f"request {i}"
        assert reasons[str(i)] == "length"
    assert ahead > 0 and runner.fed_from_device > 0
    if num_blocks == 40:
        assert sched.get_stats().num_preemptions > 0


def test_ahead_eos_and_length_caps() -> None:
    """Requests that stop on EOS mid-run get nothing from the step already in flight; a request
    capped by max_len is never scheduled past it (no extra block is allocated)."""
    ps = prompts(10, seed=5)
    eos = 3
    sched, runner = make(64, 32)
    for i, p in enumerate(ps):
        sched.add_request(Request(str(i), p, SamplingParams(max_tokens=40), arrival_time=float(i),
                                  eos_token_id=eos, max_len=len(p) + 9 if i % 3 == 0 else 10_000))
    got, reasons, _ = run_ahead(sched, runner)
    for i, p in enumerate(ps):
        want = reference(p, 9 if i % 3 == 0 else 40, eos)
        assert got[str(i)] == want, f"request {i}"
        assert reasons[str(i)] == ("stop" if want[-1] == eos else "length")


def test_penalties_turn_scheduling_ahead_off() -> None:
    sched, runner = make(64, 64)
    sched.add_request(Request("p", [1, 2, 3], SamplingParams(max_tokens=5, presence_penalty=0.5),
                              arrival_time=0.0, max_len=100))
    so = sched.schedule()
    runner.begin(so)
    assert not sched.can_schedule_ahead()
    sched.add_request(Request("m", [4, 5], SamplingParams(max_tokens=5, min_tokens=2),
                              arrival_time=1.0, max_len=100))
    sched.finish_requests(["p"], RequestStatus.FINISHED_ABORTED)
    so = sched.schedule()  # admits "m"
    assert "m" in so.num_scheduled_tokens
    assert not sched.can_schedule_ahead()  # "m" has fewer outputs than min_tokens
