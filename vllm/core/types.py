"""Plain data passed between the engine core, the scheduler and the workers. Everything here is
picklable (the multiproc executor ships SchedulerOutput/ModelRunnerOutput between processes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vllm.sampling_params import SamplingParams

# Per position: token id -> (logprob, rank); rank is 1-based within the vocabulary.
TokenLogprobs = dict[int, tuple[float, int]]


@dataclass
class EngineCoreRequest:
    request_id: str
    prompt_token_ids: list[int]
    sampling_params: SamplingParams
    arrival_time: float
    priority: int = 0
    eos_token_id: int | None = None


@dataclass(slots=True)
class EngineCoreOutput:
    request_id: str
    new_token_ids: list[int]
    new_logprobs: list[TokenLogprobs] | None = None
    prompt_logprobs: list[TokenLogprobs | None] | None = None
    finish_reason: str | None = None  # "stop" | "length" | "abort"
    stop_reason: int | str | None = None
    num_cached_tokens: int = 0

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass
class SchedulerStats:
    num_running: int = 0
    num_waiting: int = 0
    kv_cache_usage: float = 0.0
    prefix_cache_queries: int = 0
    prefix_cache_hits: int = 0
    num_free_blocks: int = 0
    num_blocks: int = 0
    num_preemptions: int = 0


@dataclass
class NewRequestData:
    """A request the workers have not seen (or dropped on preemption): everything to run it."""

    req_id: str
    prompt_token_ids: list[int]
    output_token_ids: list[int]  # non-empty when a preempted request resumes
    sampling_params: SamplingParams
    block_ids: list[int]
    num_computed_tokens: int  # prefix-cache hit length
    eos_token_id: int | None = None


@dataclass(slots=True)
class CachedRequestData:
    """A request the workers already hold: its new blocks and progress."""

    req_id: str
    new_block_ids: list[int]
    num_computed_tokens: int


@dataclass
class SchedulerOutput:
    new_reqs: list[NewRequestData] = field(default_factory=list)
    cached_reqs: list[CachedRequestData] = field(default_factory=list)
    num_scheduled_tokens: dict[str, int] = field(default_factory=dict)  # in batch order
    total_num_scheduled_tokens: int = 0
    finished_req_ids: set[str] = field(default_factory=set)  # workers drop these
    # Subset of finished_req_ids that were preempted: workers keep their sampling generator so a
    # seeded request continues the same random stream when it resumes.
    preempted_req_ids: set[str] = field(default_factory=set)

    @property
    def is_empty(self) -> bool:
        return self.total_num_scheduled_tokens == 0


@dataclass
class ModelRunnerOutput:
    req_ids: list[str] = field(default_factory=list)
    # Per request, in req_ids order: the tokens sampled this step (empty: mid-prefill chunk).
    sampled_token_ids: list[list[int]] = field(default_factory=list)
    logprobs: list[list[TokenLogprobs] | None] = field(default_factory=list)
    # req_id -> prompt logprobs of the prompt positions computed this step.
    prompt_logprobs: dict[str, list[TokenLogprobs | None]] = field(default_factory=dict)
