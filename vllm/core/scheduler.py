"""Continuous batching: which requests advance this step and by how many tokens.

Running requests go first (decodes and unfinished prefill chunks), then waiting ones are admitted
while the token budget, ``max_num_seqs`` and free KV blocks allow. When a running request cannot
get a block, the lowest-ranked running request (youngest under FCFS, largest priority value under
``priority``) is preempted: its blocks are freed and it is recomputed later.
"""

from __future__ import annotations

import bisect
from collections import deque

from vllm.config import SchedulerConfig
from vllm.core.kv_cache_manager import KVCacheManager
from vllm.core.request import Request, RequestStatus
from vllm.core.types import (
    CachedRequestData,
    EngineCoreOutput,
    ModelRunnerOutput,
    NewRequestData,
    SchedulerOutput,
    SchedulerStats,
)


class WaitQueue:
    """FCFS (deque; preempted requests go back to the front) or priority order
    (sorted by (priority, arrival_time))."""

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self._fcfs: deque[Request] = deque()
        self._sorted: list[Request] = []

    @staticmethod
    def _key(r: Request) -> tuple[int, float]:
        return (r.priority, r.arrival_time)

    def add(self, req: Request, front: bool = False) -> None:
        if self.policy == "priority":
            bisect.insort(self._sorted, req, key=self._key)
        elif front:
            self._fcfs.appendleft(req)
        else:
            self._fcfs.append(req)

    def peek(self) -> Request:
        return self._sorted[0] if self.policy == "priority" else self._fcfs[0]

    def pop(self) -> Request:
        return self._sorted.pop(0) if self.policy == "priority" else self._fcfs.popleft()

    def remove(self, req: Request) -> None:
        (self._sorted if self.policy == "priority" else self._fcfs).remove(req)

    def __len__(self) -> int:
        return len(self._sorted) if self.policy == "priority" else len(self._fcfs)


class Scheduler:
    def __init__(
        self, config: SchedulerConfig, kv_manager: KVCacheManager, max_num_batched_tokens: int
    ) -> None:
        self.config = config
        self.kv = kv_manager
        self.block_size = kv_manager.block_size
        self.max_num_batched_tokens = max_num_batched_tokens
        self.max_num_seqs = config.max_num_seqs
        self.requests: dict[str, Request] = {}
        self.waiting = WaitQueue(config.policy)
        self.running: list[Request] = []
        self._finished_ids: set[str] = set()  # to tell the workers next step
        self._preempted_ids: set[str] = set()
        self.num_preemptions = 0

    # ---- request lifecycle ------------------------------------------------------------
    def add_request(self, req: Request) -> None:
        if req.request_id in self.requests:
            raise ValueError(f"request_id {req.request_id!r} is already in use")
        self.requests[req.request_id] = req
        self.waiting.add(req)

    def finish_requests(self, request_ids: list[str], status: RequestStatus) -> None:
        """Finish (e.g. abort) requests now, returning their blocks immediately."""
        for rid in request_ids:
            req = self.requests.get(rid)
            if req is None or req.is_finished:
                continue
            if req.status == RequestStatus.RUNNING:
                self.running.remove(req)
            else:
                self.waiting.remove(req)
            req.status = status
            self._free(req)

    def _free(self, req: Request) -> None:
        self.kv.free(req)
        self.requests.pop(req.request_id, None)
        self._finished_ids.add(req.request_id)
        self._preempted_ids.discard(req.request_id)

    def has_unfinished_requests(self) -> bool:
        return bool(self.requests)

    def _preempt(self, req: Request) -> None:
        self.running.remove(req)
        self.kv.free(req)
        req.status = RequestStatus.PREEMPTED
        req.num_computed_tokens = 0
        req.num_preemptions += 1
        self.num_preemptions += 1
        self._finished_ids.add(req.request_id)  # workers drop it; it comes back as new
        self._preempted_ids.add(req.request_id)
        self.waiting.add(req, front=True)

    def _pick_victim(self) -> Request:
        if self.config.policy == "priority":
            return max(self.running, key=lambda r: (r.priority, r.arrival_time))
        return self.running[-1]

    # ---- scheduling -------------------------------------------------------------------
    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput()
        budget = self.max_num_batched_tokens
        budget, preempted = self._schedule_running(out, budget)
        if not preempted:
            self._schedule_waiting(out, budget)
        for rid in out.num_scheduled_tokens:  # requests whose step ends at their last token
            req = self.requests[rid]
            if req.num_computed_tokens >= req.num_tokens + req.num_pending:
                req.num_pending += 1
        out.total_num_scheduled_tokens = sum(out.num_scheduled_tokens.values())
        out.finished_req_ids = self._finished_ids
        out.preempted_req_ids = self._preempted_ids
        self._finished_ids, self._preempted_ids = set(), set()
        return out

    def _schedule_running(self, out: SchedulerOutput, budget: int) -> tuple[int, bool]:
        preempted = False
        cached: dict[str, CachedRequestData] = {}
        i = 0
        while i < len(self.running) and budget > 0:
            req = self.running[i]
            num_new = min(req.num_tokens + req.num_pending - req.num_computed_tokens, budget)
            if num_new <= 0 or req.length_capped_with_pending():
                i += 1
                continue
            new_ids = self.kv.allocate_slots(req, num_new)
            while new_ids is None:
                victim = self._pick_victim()
                preempted = True
                if victim.request_id in out.num_scheduled_tokens:  # undo its slot this step
                    budget += out.num_scheduled_tokens.pop(victim.request_id)
                    cached.pop(victim.request_id, None)
                if self.running.index(victim) < i:
                    i -= 1
                self._preempt(victim)
                if victim is req:
                    break
                new_ids = self.kv.allocate_slots(req, num_new)
            if new_ids is None:
                continue  # req itself was preempted; index i now points at the next one
            cached[req.request_id] = CachedRequestData(req.request_id, new_ids, req.num_computed_tokens)
            out.num_scheduled_tokens[req.request_id] = num_new
            req.num_computed_tokens += num_new  # counted as computed once the step runs
            budget -= num_new
            i += 1
        out.cached_reqs = list(cached.values())
        return budget, preempted

    def _schedule_waiting(self, out: SchedulerOutput, budget: int) -> None:
        chunked = self.config.enable_chunked_prefill
        while len(self.waiting) and budget > 0 and len(self.running) < self.max_num_seqs:
            req = self.waiting.peek()
            if req.num_pending:  # preempted while a step sampled for it: wait for the token
                break
            hits = self.kv.get_computed_blocks(req)
            num_computed = len(hits) * self.block_size
            num_new = req.num_tokens - num_computed
            if not chunked and num_new > budget:
                break
            num_new = min(num_new, budget)
            if self.kv.allocate_slots(req, num_new, hits) is None:
                break
            self.waiting.pop()
            req.status = RequestStatus.RUNNING
            req.num_computed_tokens = num_computed
            if req.num_cached_tokens < 0:
                req.num_cached_tokens = num_computed
            self.running.append(req)
            out.new_reqs.append(
                NewRequestData(
                    req.request_id, req.prompt_token_ids, list(req.output_token_ids),
                    req.sampling_params, self.kv.block_ids(req.request_id), num_computed,
                    req.eos_token_id,
                )
            )
            out.num_scheduled_tokens[req.request_id] = num_new
            req.num_computed_tokens += num_new
            budget -= num_new

    # ---- results ----------------------------------------------------------------------
    def can_schedule_ahead(self) -> bool:
        """Whether the next step may be scheduled before the in-flight step's sampled tokens
        are known (every running request's sampling ignores its own latest output)."""
        return all(r.schedule_ahead_safe for r in self.running)

    def update_from_output(
        self, sched: SchedulerOutput, result: ModelRunnerOutput
    ) -> list[EngineCoreOutput]:
        """Append the step's sampled tokens and finish requests that stop. A request that
        finished or was aborted since the step was scheduled gets nothing; one preempted since
        keeps its token (the step saw its whole context) and is recomputed with it."""
        outputs: list[EngineCoreOutput] = []
        live = (RequestStatus.RUNNING, RequestStatus.PREEMPTED)
        prompt_logprobs = result.prompt_logprobs
        logprobs = result.logprobs
        finished: list[Request] = []
        for i, rid in enumerate(result.req_ids):
            req = self.requests.get(rid)
            if req is None or req.status not in live:
                continue  # aborted or finished after this step was scheduled
            sampled = result.sampled_token_ids[i]
            if sampled and req.num_pending:
                req.num_pending -= 1
            if sampled and req.status == RequestStatus.PREEMPTED:
                outputs.append(self._take_preempted_token(req, sampled[0], logprobs[i] if logprobs else None))
                continue
            new_tokens: list[int] = sampled
            stopped = False
            for j, tok in enumerate(sampled):
                req.output_token_ids.append(tok)  # = req.append_output_token(tok)
                req.all_token_ids.append(tok)
                if req.check_stop():
                    new_tokens, stopped = sampled[: j + 1], True
                    break
            prompt_lps = prompt_logprobs.get(rid) if prompt_logprobs else None
            if not new_tokens and prompt_lps is None:
                continue
            lps = logprobs[i] if logprobs else None
            outputs.append(
                EngineCoreOutput(
                    rid, new_tokens, lps[: len(new_tokens)] if lps is not None else None,
                    prompt_lps, req.finish_reason() if stopped else None, req.stop_reason,
                    max(req.num_cached_tokens, 0),
                )
            )
            if stopped:
                finished.append(req)
        if finished:
            gone = {id(r) for r in finished}
            self.running = [r for r in self.running if id(r) not in gone]
            for req in finished:
                self._free(req)
        return outputs

    def _take_preempted_token(self, req: Request, token: int, lps: list | None) -> EngineCoreOutput:
        """A token for a request preempted after its step launched: it is kept (the step saw
        the whole context) and recomputed with the rest; a stop finishes the request."""
        req.append_output_token(token)
        stopped = req.check_stop()
        out = EngineCoreOutput(
            req.request_id, [token], lps[:1] if lps is not None else None, None,
            req.finish_reason() if stopped else None, req.stop_reason, max(req.num_cached_tokens, 0),
        )
        if stopped:
            self.waiting.remove(req)
            self._free(req)
        return out

    def get_stats(self) -> SchedulerStats:
        return SchedulerStats(
            num_running=len(self.running),
            num_waiting=len(self.waiting),
            kv_cache_usage=self.kv.usage(),
            prefix_cache_queries=self.kv.stats.queries,
            prefix_cache_hits=self.kv.stats.hits,
            num_free_blocks=self.kv.num_free_blocks,
            num_blocks=self.kv.num_blocks,
            num_preemptions=self.num_preemptions,
        )
