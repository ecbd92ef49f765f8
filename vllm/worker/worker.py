"""One worker per device: device init, model load, KV-cache sizing and allocation, steps."""

from __future__ import annotations

from typing import Any

from vllm.config import VllmConfig
from vllm.core.types import ModelRunnerOutput, SchedulerOutput
from vllm.logger import init_logger
from vllm.worker.model_runner import ModelRunner

logger = init_logger(__name__)

_GIB = float(1 << 30)


class Worker:
    def __init__(
        self,
        vllm_config: VllmConfig,
        resolved: Any = None,
        local_rank: int = 0,
        rank: int = 0,
        distributed_init_method: str | None = None,
    ) -> None:
        self.config = vllm_config
        self.resolved = resolved
        self.local_rank = local_rank
        self.rank = rank
        self.distributed_init_method = distributed_init_method
        self.runner: ModelRunner | None = None

    def init_device(self) -> None:
        from vllm.distributed.parallel_state import init_tensor_parallel
        from vllm.platforms import current_platform

        self.device = current_platform.device(self.local_rank)
        current_platform.set_device(self.device)
        world = self.config.parallel.tensor_parallel_size
        init_tensor_parallel(
            self.rank, world, current_platform.dist_backend,
            self.distributed_init_method or "tcp://127.0.0.1:29533",
        )
        if self.resolved is None:
            from vllm.model_executor.model_loader import resolve_model

            self.resolved = resolve_model(self.config.model)

    def load_model(self) -> None:
        self.check_weights_fit()
        self.runner = ModelRunner(self.config, self.resolved, self.device)
        self.runner.load_model()

    def check_weights_fit(self) -> None:
        """Device-memory platforms: fail before loading when this rank's weights alone exceed
        what gpu_memory_utilization allows (sizes from a parameter-free build of the model)."""
        from vllm.model_executor.model_loader import build_model
        from vllm.platforms import current_platform

        if current_platform.kv_cache_in_host_memory:
            return
        import torch

        shell = build_model(self.resolved, torch.device("meta"))
        need = sum(t.numel() * t.element_size()
                   for t in list(shell.parameters()) + list(shell.buffers()))
        free, total = current_platform.memory_info()
        util = self.config.cache.gpu_memory_utilization
        budget = min(free, int(total * util))
        if need > budget:
            tp = self.config.parallel.tensor_parallel_size
            raise ValueError(
                f"model {self.resolved.path} does not fit: its {self.resolved.dtype} weights need "
                f"{need / _GIB:.2f} GiB per device (tensor_parallel_size={tp}), but "
                f"gpu_memory_utilization={util} of {total / _GIB:.2f} GiB allows "
                f"{total * util / _GIB:.2f} GiB and {free / _GIB:.2f} GiB is free; use a larger "
                "tensor_parallel_size, a smaller dtype or model, or raise gpu_memory_utilization"
            )

    @property
    def block_size(self) -> int:
        assert self.runner is not None
        return self.runner.block_size

    def determine_num_kv_blocks(self) -> int:
        """How many KV blocks fit: an explicit override, the CPU RAM budget, or (GPUs) what a
        max-size profiling run leaves of ``gpu_memory_utilization`` of device memory."""
        from vllm.platforms import current_platform

        assert self.runner is not None
        cache = self.config.cache
        per_block = self.runner.kv_bytes_per_block()
        if cache.num_kv_blocks_override is not None:
            return cache.num_kv_blocks_override
        if cache.kv_cache_space_gib is not None:
            avail = int(cache.kv_cache_space_gib * _GIB)
        elif current_platform.kv_cache_in_host_memory:
            avail = int(current_platform.kv_cache_bytes())
        else:
            avail = self._profile_available_bytes()
        num_blocks = avail // per_block
        if num_blocks < 1:
            raise ValueError(
                f"no room for the KV cache: {avail / _GIB:.3f} GiB available, one block needs "
                f"{per_block / _GIB:.4f} GiB; raise gpu_memory_utilization / kv_cache_space_gib, "
                "or lower max_num_batched_tokens / max_model_len"
            )
        # More blocks than max_num_seqs full-length requests can use is wasted memory.
        cap = self.config.scheduler.max_num_seqs * -(-self.runner.max_model_len // self.block_size)
        return int(min(num_blocks, cap))

    def _profile_available_bytes(self) -> int:
        from vllm.platforms import current_platform

        assert self.runner is not None
        self.runner.profile_run()
        current_platform.synchronize()
        free, total = current_platform.memory_info()
        used = total - free  # weights + peak activations (+ other processes)
        budget = int(total * self.config.cache.gpu_memory_utilization)
        avail = budget - used
        if avail <= 0:
            raise ValueError(
                f"no device memory left for the KV cache: gpu_memory_utilization="
                f"{self.config.cache.gpu_memory_utilization} of {total / _GIB:.2f} GiB is "
                f"{budget / _GIB:.2f} GiB, but weights + activations already use {used / _GIB:.2f} GiB"
            )
        return avail

    def initialize_cache(self, num_blocks: int) -> None:
        assert self.runner is not None
        self.runner.initialize_kv_cache(num_blocks)

    def execute_model(self, scheduler_output: SchedulerOutput) -> ModelRunnerOutput:
        assert self.runner is not None
        return self.runner.execute_model(scheduler_output)

    def begin_step(self, scheduler_output: SchedulerOutput) -> Any:
        """Launch a step without waiting for the device (see ``ModelRunner.begin_step``)."""
        assert self.runner is not None
        return self.runner.begin_step(scheduler_output)

    def finish_step(self, pending: Any) -> ModelRunnerOutput:
        assert self.runner is not None
        return self.runner.finish_step(pending)

    def check_health(self) -> None:
        return None

    def shutdown(self) -> None:
        if self.config.parallel.tensor_parallel_size > 1:
            from vllm.distributed.parallel_state import destroy_tensor_parallel

            destroy_tensor_parallel()
        self.runner = None
