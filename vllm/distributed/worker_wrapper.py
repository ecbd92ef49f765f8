"""One tensor-parallel rank's ``Worker``, as run inside a worker process (multiproc child or Ray
actor). The executors talk to it by method name so both share the same rank-side logic."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

from vllm.config import VllmConfig
from vllm.distributed.utils import cpus_for_rank

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
        self, config: VllmConfig, resolved: Any, local_rank: int, init_method: str,
        cpus: list[int] | None = None,
    ) -> int:
        """Join the TP group, load this rank's shard of the model; returns the KV block size.

        ``cpus``: the host CPUs the engine may use, which the ranks on this machine split."""
        from vllm.worker.worker import Worker

        # Same seed on every rank: ranks sample from identical (all-gathered) logits, so with the
        # same random stream they draw the same tokens and their inputs never diverge.
        torch.manual_seed(config.model.seed)
        self._set_host_threads(cpus)
        self.worker = Worker(config, resolved, local_rank, self.rank, init_method)
        self.worker.init_device()
        self.worker.load_model()
        return int(self.worker.block_size)

    def _set_host_threads(self, cpus: list[int] | None) -> None:
        """Give this rank its own share of the host cores (and as many compute threads), unless
        binding is off (VLLM_CPU_OMP_THREADS_BIND=off) or the user chose the thread count."""
        from vllm import envs

        mine = cpus_for_rank(cpus or [], self.world_size, self.rank)
        if mine and envs.VLLM_CPU_OMP_THREADS_BIND != "off" and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, mine)
        if envs.VLLM_CPU_NUM_THREADS is not None:
            torch.set_num_threads(envs.VLLM_CPU_NUM_THREADS)
        elif "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(len(mine) if mine else max(1, (os.cpu_count() or 1) // self.world_size))

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
