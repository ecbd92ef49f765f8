"""A model-free EngineCore stand-in for the core-process tests (imported in the spawned child).

Each step emits, for every request, the next prompt token (cycling); a request whose id contains
"crash" makes ``step`` raise; prompts longer than 48 tokens are refused like an oversized KV need.
"""

from __future__ import annotations

import time

from vllm.core.types import EngineCoreOutput, EngineCoreRequest, SchedulerStats


class FakeCore:
    def __init__(self, vllm_config) -> None:
        self.reqs: dict[str, list] = {}

    def add_request(self, req: EngineCoreRequest) -> None:
        if len(req.prompt_token_ids) > 48:
            raise ValueError(f"prompt has {len(req.prompt_token_ids)} tokens; the KV cache fits 48")
        self.reqs[req.request_id] = [req, 0]

    def abort_requests(self, ids: list[str]) -> None:
        for rid in ids:
            self.reqs.pop(rid, None)

    def has_unfinished_requests(self) -> bool:
        return bool(self.reqs)

    def step(self) -> list[EngineCoreOutput]:
        time.sleep(0.002)
        outs = []
        for rid, entry in list(self.reqs.items()):
            if "crash" in rid:
                raise RuntimeError("simulated engine crash")
            req, done = entry
            ids = req.prompt_token_ids
            token = ids[done % len(ids)]
            entry[1] += 1
            finish = "length" if entry[1] >= req.sampling_params.max_tokens else None
            if finish:
                self.reqs.pop(rid)
            outs.append(EngineCoreOutput(rid, [token], finish_reason=finish))
        return outs

    def get_stats(self) -> SchedulerStats:
        n = len(self.reqs)
        return SchedulerStats(num_running=n, num_blocks=100, num_free_blocks=100 - 2 * n)

    def shutdown(self) -> None:
        pass
