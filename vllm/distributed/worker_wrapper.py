"""One tensor-parallel rank's ``Worker``, as run inside a worker process (multiproc child or Ray
actor). The executors talk to it by method name so both share the same rank-side logic."""

from __future__ import annotations

import os
from typing import Any

import torch

from vllm.config import VllmConfig
from vllm.distributed.utils import worker_threads

# Methods an executor may call on the worker, by name (anything else is refused).
WORKER_METHODS = frozenset(
    {"determine_num_kv_blocks", "initialize_cache", "execute_model", "check_health"}
)


class WorkerWrapper:
    def __init__(self, rank: int, world_size: int) -> None:
        self.rank = rank
        self.world_size = world_size
        self.worker: Any = None

    def init_worker(
        self, config: VllmConfig, resolved: Any, local_rank: int, init_method: str
    ) -> int:
        """Join the TP group, load this rank's shard of the model; returns the KV block size."""
        from vllm import envs
        from vllm.worker.worker import Worker

        # Same seed on every rank: ranks sample from identical (all-gathered) logits, so with the
        # same random stream they draw the same tokens and their inputs never diverge.
        torch.manual_seed(config.model.seed)
        if envs.VLLM_CPU_NUM_THREADS is None and "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(worker_threads(self.world_size))
        self.worker = Worker(config, resolved, local_rank, self.rank, init_method)
        self.worker.init_device()
        self.worker.load_model()
        return int(self.worker.block_size)

    def execute(self, method: str, *args: Any) -> Any:
        """Call ``Worker.<method>``; only rank 0 returns a step's output (the others' is equal)."""
        if method not in WORKER_METHODS:
            raise ValueError(f"unknown worker method {method!r}; one of {sorted(WORKER_METHODS)}")
        if self.worker is None:
            raise RuntimeError(f"worker rank {self.rank} is not initialised")
        result = getattr(self.worker, method)(*args)
        if method == "execute_model" and self.rank != 0:
            return None
        return result

    def ping(self) -> int:
        return self.rank

    def pid(self) -> int:
        return os.getpid()

    def shutdown(self) -> None:
        if self.worker is not None:
            try:
                self.worker.shutdown()
            finally:
                self.worker = None
