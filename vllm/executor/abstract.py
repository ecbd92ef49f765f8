"""The executor interface the engine core drives (uniproc, multiproc, ray)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from vllm.config import VllmConfig
from vllm.core.types import ModelRunnerOutput, SchedulerOutput


class Executor(ABC):
    def __init__(self, vllm_config: VllmConfig, resolved: Any = None) -> None:
        self.config = vllm_config
        self.resolved = resolved

    @property
    @abstractmethod
    def block_size(self) -> int:
        """Tokens per KV block, as chosen by the workers' attention backend."""

    @abstractmethod
    def determine_num_kv_blocks(self) -> int:
        """KV blocks every worker can hold (the minimum over workers)."""

    @abstractmethod
    def initialize_cache(self, num_blocks: int) -> None: ...

    @abstractmethod
    def execute_model(self, scheduler_output: SchedulerOutput) -> ModelRunnerOutput: ...

    def execute_model_async(self, scheduler_output: SchedulerOutput) -> Any:
        """Start a step; ``wait_model`` returns its output. Executors that cannot leave a step
        running (one worker per rank over IPC) run it here."""
        return self.execute_model(scheduler_output)

    def wait_model(self, pending: Any) -> ModelRunnerOutput:
        return pending

    @abstractmethod
    def check_health(self) -> None:
        """Raise if a worker is dead."""

    @abstractmethod
    def shutdown(self) -> None: ...


class RankedExecutor(Executor):
    """An executor with one worker per tensor-parallel rank (multiproc, ray): every interface
    call goes to all ranks through ``_call_all``; rank 0's step output is the result."""

    HEALTH_TIMEOUT_S = 30.0
    _block_size: int

    @abstractmethod
    def _call_all(self, method: str, *args: Any, timeout: float | None = None) -> list[Any]:
        """Run ``Worker.<method>(*args)`` on every rank; results in rank order."""

    @property
    def block_size(self) -> int:
        return self._block_size

    def determine_num_kv_blocks(self) -> int:
        return int(min(self._call_all("determine_num_kv_blocks")))

    def initialize_cache(self, num_blocks: int) -> None:
        self._call_all("initialize_cache", num_blocks)

    def execute_model(self, scheduler_output: SchedulerOutput) -> ModelRunnerOutput:
        return self._call_all("execute_model", scheduler_output)[0]

    def check_health(self) -> None:
        self._call_all("check_health", timeout=self.HEALTH_TIMEOUT_S)
