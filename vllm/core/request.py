"""Per-request state inside the engine core: tokens, progress, status, stop checks."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vllm.sampling_params import SamplingParams


class RequestStatus(enum.IntEnum):
    WAITING = 0
    RUNNING = 1
    PREEMPTED = 2
    FINISHED_STOPPED = 3
    FINISHED_LENGTH = 4
    FINISHED_ABORTED = 5

    @property
    def finished(self) -> bool:
        return self >= RequestStatus.FINISHED_STOPPED


_FINISH_REASON = {
    RequestStatus.FINISHED_STOPPED: "stop",
    RequestStatus.FINISHED_LENGTH: "length",
    RequestStatus.FINISHED_ABORTED: "abort",
}


class Request:
    """One sequence: prompt + generated tokens. ``num_computed_tokens`` counts tokens whose KV is
    (or, once the scheduled step runs, will be) in the cache."""

    def __init__(
        self,
        request_id: str,
        prompt_token_ids: list[int],
        sampling_params: SamplingParams,
        arrival_time: float,
        priority: int = 0,
        eos_token_id: int | None = None,
        max_len: int | None = None,
    ) -> None:
        self.request_id = request_id
        self.prompt_token_ids = list(prompt_token_ids)
        self.sampling_params = sampling_params
        self.arrival_time = arrival_time
        self.priority = priority
        self.eos_token_id = eos_token_id
        # Hard cap on prompt + output tokens (context length and KV capacity).
        self.max_len = max_len
        self.output_token_ids: list[int] = []
        self.all_token_ids: list[int] = list(prompt_token_ids)
        self.num_computed_tokens = 0
        # Outputs of launched steps whose token is not known yet (the engine core may schedule
        # step N+1 before step N's sampled ids reach the host; at most 1 then, else 0).
        self.num_pending = 0
        self.num_cached_tokens = -1  # prefix-cache hit length on first schedule (-1: not yet)
        self.status = RequestStatus.WAITING
        self.stop_reason: int | str | None = None
        self.num_preemptions = 0
        self.block_hashes: list[int] = []  # hash chain over full blocks of all_token_ids

    @property
    def num_tokens(self) -> int:
        return len(self.all_token_ids)

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.output_token_ids)

    @property
    def is_finished(self) -> bool:
        return self.status.finished

    @property
    def schedule_ahead_safe(self) -> bool:
        """Whether a step may be scheduled for this request before its last sampled token is
        known: its sampling must not read its own latest outputs (penalties, min_tokens)."""
        p = self.sampling_params
        return (p.presence_penalty == 0.0 and p.frequency_penalty == 0.0
                and p.repetition_penalty == 1.0 and p.min_tokens <= len(self.output_token_ids))

    def length_capped_with_pending(self) -> bool:
        """True when the pending outputs already reach max_tokens or max_len: the request
        finishes by length once they arrive, so it needs no further step."""
        if not self.num_pending:
            return False
        out = len(self.output_token_ids) + self.num_pending
        max_tokens = self.sampling_params.max_tokens
        if max_tokens is not None and out >= max_tokens:
            return True
        return self.max_len is not None and len(self.all_token_ids) + self.num_pending >= self.max_len

    def finish_reason(self) -> str | None:
        return _FINISH_REASON.get(self.status)

    def append_output_token(self, token_id: int) -> None:
        self.output_token_ids.append(token_id)
        self.all_token_ids.append(token_id)

    def check_stop(self) -> bool:
        """After a token was appended: set the finished status if a stop condition holds."""
        params = self.sampling_params
        num_out = len(self.output_token_ids)
        if num_out >= params.min_tokens:
            last = self.output_token_ids[-1]
            if last == self.eos_token_id and not params.ignore_eos:
                self.status = RequestStatus.FINISHED_STOPPED
                return True
            if params.stop_token_ids and last in params.stop_token_ids:
                self.status = RequestStatus.FINISHED_STOPPED
                self.stop_reason = last
                return True
        if params.max_tokens is not None and num_out >= params.max_tokens:
            self.status = RequestStatus.FINISHED_LENGTH
            return True
        if self.max_len is not None and len(self.all_token_ids) >= self.max_len:
            self.status = RequestStatus.FINISHED_LENGTH
            return True
        return False
