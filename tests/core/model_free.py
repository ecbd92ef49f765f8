"""Shared pieces of the model-free runners in the scheduler tests: a "model" whose next token is
a deterministic function of the whole context, and the runner-side request bookkeeping."""

from __future__ import annotations

from vllm.core.types import SchedulerOutput
from vllm.worker.input_batch import CachedRequestState

VOCAB = 97


def next_token(context: list[int]) -> int:
    h = 0
    for t in context:
        h = (h * 31 + t + 7) % 1_000_003
    return h % VOCAB


def apply_scheduler_output(requests: dict[str, CachedRequestState], so: SchedulerOutput) -> None:
    """What a runner does with a SchedulerOutput before building its batch."""
    for rid in so.finished_req_ids:
        requests.pop(rid, None)
    for n in so.new_reqs:
        requests[n.req_id] = CachedRequestState(
            n.req_id, list(n.prompt_token_ids), list(n.output_token_ids), n.sampling_params,
            list(n.block_ids), n.num_computed_tokens)
    for c in so.cached_reqs:
        st = requests[c.req_id]
        st.block_ids.extend(c.new_block_ids)
        st.num_computed_tokens = c.num_computed_tokens
