"""EngineCore: schedule -> execute -> update, one step at a time (in-process or in its own
process when serving)."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import torch

from vllm.config import VllmConfig
from vllm.core.kv_cache_manager import KVCacheManager
from vllm.core.request import Request, RequestStatus
from vllm.core.scheduler import Scheduler
from vllm.core.types import EngineCoreOutput, EngineCoreRequest, SchedulerStats
from vllm.logger import init_logger

logger = init_logger(__name__)

__all__ = ["EngineCore", "EngineCoreRequest", "EngineCoreOutput", "SchedulerStats", "prepare_config"]


def _default_token_budget() -> int:
    """Per-step token budget when the config leaves it unset: the platform's default."""
    from vllm.platforms import current_platform

    return int(current_platform.default_max_num_batched_tokens)


def prepare_config(vllm_config: VllmConfig, resolved: Any) -> VllmConfig:
    """Fill in what the model and platform decide: context length and token budget."""
    from vllm.platforms import current_platform

    config = current_platform.check_and_update_config(vllm_config)
    max_model_len = int(resolved.max_model_len)
    budget = config.scheduler.max_num_batched_tokens or _default_token_budget()
    if not config.scheduler.enable_chunked_prefill:
        budget = max(budget, max_model_len)
    return config.replace(
        model={"max_model_len": max_model_len}, scheduler={"max_num_batched_tokens": budget}
    )


class EngineCore:
    def __init__(
        self, vllm_config: VllmConfig, executor_class: type | None = None, resolved: Any = None
    ) -> None:
        from vllm.executor import get_executor_class

        start = time.perf_counter()
        if resolved is None:
            from vllm.model_executor.model_loader import resolve_model

            resolved = resolve_model(vllm_config.model)
        self.resolved = resolved
        self.config = prepare_config(vllm_config, resolved)
        torch.manual_seed(self.config.model.seed)
        if executor_class is None:
            executor_class = get_executor_class(self.config.parallel.backend)
        self.executor = executor_class(self.config, resolved)
        self.block_size = self.executor.block_size
        num_blocks = self.executor.determine_num_kv_blocks()
        self.executor.initialize_cache(num_blocks)
        self.max_model_len = int(self.config.model.max_model_len or resolved.max_model_len)
        self.num_blocks = num_blocks
        kv = KVCacheManager(num_blocks, self.block_size, self.config.cache.enable_prefix_caching)
        budget = int(self.config.scheduler.max_num_batched_tokens or _default_token_budget())
        self.scheduler = Scheduler(self.config.scheduler, kv, budget)
        from vllm.platforms import current_platform

        self.overlap = current_platform.async_device_execution
        # Launched steps, oldest first: (SchedulerOutput, executor handle); at most 2.
        self._inflight: deque[tuple[Any, Any]] = deque()
        self.num_steps_ahead = 0  # steps scheduled before the previous step's tokens were known
        tokens = num_blocks * self.block_size
        logger.info(
            "KV cache: %d blocks x %d tokens = %d tokens; max concurrency %.1f requests of %d "
            "tokens; ready in %.1f s", num_blocks, self.block_size, tokens,
            tokens / self.max_model_len, self.max_model_len, time.perf_counter() - start,
        )

    # ---- requests ---------------------------------------------------------------------
    def add_request(self, req: EngineCoreRequest) -> None:
        n = len(req.prompt_token_ids)
        if n == 0:
            raise ValueError("prompt must contain at least one token")
        if n > self.max_model_len:
            raise ValueError(
                f"prompt has {n} tokens, more than max_model_len={self.max_model_len}"
            )
        need = -(-n // self.block_size)
        if need > self.num_blocks:
            raise ValueError(
                f"prompt has {n} tokens and needs {need} KV blocks of {self.block_size}, but "
                f"the KV cache only has {self.num_blocks} blocks ({self.num_blocks * self.block_size} tokens)"
            )
        max_len = min(self.max_model_len, self.num_blocks * self.block_size)
        self.scheduler.add_request(
            Request(
                req.request_id, req.prompt_token_ids, req.sampling_params, req.arrival_time,
                req.priority, req.eos_token_id, max_len=max(max_len, n + 1),
            )
        )

    def abort_requests(self, ids: list[str]) -> None:
        self.scheduler.finish_requests(list(ids), RequestStatus.FINISHED_ABORTED)

    def has_unfinished_requests(self) -> bool:
        return self.scheduler.has_unfinished_requests()

    # ---- stepping ---------------------------------------------------------------------
    def step(self) -> list[EngineCoreOutput]:
        """Schedule, execute and update one step; returns its outputs.

        Where the device runs asynchronously to the host, the next step is scheduled and
        launched *before* this step's sampled tokens are read back: the scheduler counts them as
        pending and the runner feeds them to the next step on the device, so the host's
        scheduling, batch building and output processing all overlap the device. Requests whose
        sampling reads their own latest output (penalties, min_tokens) turn this off for the
        step; the next step is then launched right after the update, before the outputs are
        returned. A request that stops (EOS, stop string) has one extra step in flight; its
        token is dropped by the scheduler, which skips finished requests."""
        if not self._inflight:
            if not self.scheduler.has_unfinished_requests():
                return []
            self._launch()
        if (self.overlap and len(self._inflight) == 1 and self.scheduler.has_unfinished_requests()
                and self.scheduler.can_schedule_ahead()):
            self._launch()  # queued on the device behind the step in flight
            self.num_steps_ahead += 1
        sched, pending = self._inflight.popleft()
        outputs = self.scheduler.update_from_output(sched, self.executor.wait_model(pending))
        if self.overlap and not self._inflight and self.scheduler.has_unfinished_requests():
            self._launch()
        return outputs

    def _launch(self) -> None:
        sched = self.scheduler.schedule()
        self._inflight.append((sched, self.executor.execute_model_async(sched)))

    def get_stats(self) -> SchedulerStats:
        return self.scheduler.get_stats()

    def reset_prefix_cache(self) -> bool:
        return self.scheduler.kv.reset_prefix_cache()

    def shutdown(self) -> None:
        self.executor.shutdown()
