"""Single-process executor: one Worker in this process."""

from __future__ import annotations

from typing import Any

from vllm.config import VllmConfig
from vllm.core.types import ModelRunnerOutput, SchedulerOutput
from vllm.executor.abstract import Executor
from vllm.worker.worker import Worker


class UniProcExecutor(Executor):
    def __init__(self, vllm_config: VllmConfig, resolved: Any = None) -> None:
        super().__init__(vllm_config, resolved)
        self.worker = Worker(vllm_config, resolved)
        self.worker.init_device()
        self.worker.load_model()

    @property
    def block_size(self) -> int:
        return self.worker.block_size

    def determine_num_kv_blocks(self) -> int:
        return self.worker.determine_num_kv_blocks()

    def initialize_cache(self, num_blocks: int) -> None:
        self.worker.initialize_cache(num_blocks)

    def execute_model(self, scheduler_output: SchedulerOutput) -> ModelRunnerOutput:
        return self.worker.execute_model(scheduler_output)

    def execute_model_async(self, scheduler_output: SchedulerOutput) -> Any:
        return self.worker.begin_step(scheduler_output)

    def wait_model(self, pending: Any) -> ModelRunnerOutput:
        return self.worker.finish_step(pending)

    def check_health(self) -> None:
        self.worker.check_health()

    def shutdown(self) -> None:
        self.worker.shutdown()
