"""LLMEngine: in-process InputProcessor + EngineCore + OutputProcessor (used by vllm.LLM)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vllm.config import VllmConfig
from vllm.core.types import SchedulerStats
from vllm.engine.core import EngineCore
from vllm.engine.output_processor import OutputProcessor, child_requests
from vllm.engine.processing import InputProcessor
from vllm.outputs import RequestOutput
from vllm.sampling_params import SamplingParams


class LLMEngine:
    def __init__(self, vllm_config: VllmConfig, resolved: Any = None, tokenizer: Any = None) -> None:
        if resolved is None:
            from vllm.model_executor.model_loader import resolve_model

            resolved = resolve_model(vllm_config.model)
        if tokenizer is None:
            from vllm.transformers_utils.tokenizer import get_tokenizer

            tokenizer = get_tokenizer(resolved, chat_template=vllm_config.model.chat_template)
        self.resolved = resolved
        self.tokenizer = tokenizer
        self.core = EngineCore(vllm_config, resolved=resolved)
        self.config = self.core.config
        self.input_processor = InputProcessor(self.config, tokenizer, resolved)
        self.output_processor = OutputProcessor(tokenizer)

    @classmethod
    def from_config(cls, vllm_config: VllmConfig) -> LLMEngine:
        return cls(vllm_config)

    def add_request(
        self, request_id: str, prompt: str | list[int], params: SamplingParams, priority: int = 0
    ) -> None:
        if request_id in self.output_processor.parents:
            raise ValueError(f"request_id {request_id!r} is already in use")
        req = self.input_processor.process(request_id, prompt, params, priority)
        prompt_text = prompt if isinstance(prompt, str) else None
        children = child_requests(request_id, req.sampling_params)
        added: list[str] = []
        try:
            for child_id, child_params, _ in children:
                self.core.add_request(replace(req, request_id=child_id, sampling_params=child_params))
                added.append(child_id)
        except ValueError:
            self.core.abort_requests(added)
            raise
        parent_id = request_id if len(children) > 1 else None
        for child_id, _, index in children:
            self.output_processor.add_request(
                child_id, prompt_text, req.prompt_token_ids, req.sampling_params, parent_id, index
            )

    def step(self) -> list[RequestOutput]:
        outputs = self.core.step()
        results, to_abort = self.output_processor.process(outputs)
        if to_abort:
            self.core.abort_requests(to_abort)
        return results

    def abort_request(self, request_ids: str | list[str]) -> None:
        ids = [request_ids] if isinstance(request_ids, str) else list(request_ids)
        self.core.abort_requests(self.output_processor.abort(ids))

    def has_unfinished_requests(self) -> bool:
        return self.core.has_unfinished_requests()

    def get_stats(self) -> SchedulerStats:
        return self.core.get_stats()

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def shutdown(self) -> None:
        self.core.shutdown()
