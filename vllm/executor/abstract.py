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

    @abstractmethod
    def check_health(self) -> None:
        """Raise if a worker is dead."""

    @abstractmethod
    def shutdown(self) -> None: ...
