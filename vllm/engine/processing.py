"""Input processing in the API process: tokenize, validate against model limits, build the
EngineCoreRequest. Bad input raises ValueError naming the field and the limit."""

from __future__ import annotations

import time
from typing import Any

from vllm.config import VllmConfig
from vllm.core.types import EngineCoreRequest
from vllm.sampling_params import SamplingParams


def eos_token_ids(resolved: Any, tokenizer: Any) -> list[int]:
    """All end-of-sequence ids: the tokenizer's first, then the generation config's."""
    ids: list[int] = []
    tok_eos = getattr(tokenizer, "eos_token_id", None)
    if isinstance(tok_eos, int):
        ids.append(tok_eos)
    gen = getattr(resolved, "generation_config", None)
    value: Any = None
    if isinstance(gen, dict):
        value = gen.get("eos_token_id")
    elif isinstance(gen, (int, list, tuple)):
        value = gen
    elif gen is not None:
        value = getattr(gen, "eos_token_id", None)
    for v in [value] if isinstance(value, int) else list(value or []):
        if isinstance(v, int) and v not in ids:
            ids.append(v)
    return ids


# generation_config.json keys that become defaults of requests leaving them unset (as vLLM's
# `--generation-config auto`); `do_sample` and the rest are not sampling parameters here.
SAMPLING_DEFAULT_KEYS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")


def sampling_defaults(resolved: Any) -> dict[str, float | int]:
    """The model's default sampling parameters from its generation config ({} if none)."""
    gen = getattr(resolved, "generation_config", None)
    if not isinstance(gen, dict):
        return {}
    return {k: gen[k] for k in SAMPLING_DEFAULT_KEYS
            if isinstance(gen.get(k), (int, float)) and not isinstance(gen.get(k), bool)}


class InputProcessor:
    def __init__(self, vllm_config: VllmConfig, tokenizer: Any, resolved: Any) -> None:
        self.config = vllm_config
        self.tokenizer = tokenizer
        self.resolved = resolved
        self.max_model_len = int(vllm_config.model.max_model_len or resolved.max_model_len)
        self.vocab_size = int(resolved.vocab_size)
        self.max_logprobs = vllm_config.model.max_logprobs
        eos = eos_token_ids(resolved, tokenizer)
        self.eos_token_id: int | None = eos[0] if eos else None
        self.extra_eos_ids = eos[1:]

    def tokenize(self, prompt: str) -> list[int]:
        return list(self.tokenizer.encode(prompt))

    def process(
        self, request_id: str, prompt: str | list[int], params: SamplingParams, priority: int = 0
    ) -> EngineCoreRequest:
        if isinstance(prompt, str):
            if not prompt:
                raise ValueError("prompt must not be empty")
            token_ids = self.tokenize(prompt)
        else:
            token_ids = [int(t) for t in prompt]
        if not token_ids:
            raise ValueError("prompt must contain at least one token")
        bad = [t for t in token_ids if not 0 <= t < self.vocab_size]
        if bad:
            raise ValueError(
                f"prompt token ids {bad[:5]} are outside the vocabulary [0, {self.vocab_size})"
            )
        if len(token_ids) > self.max_model_len:
            raise ValueError(
                f"prompt has {len(token_ids)} tokens, more than max_model_len={self.max_model_len}"
            )
        params = self._prepare_params(params, len(token_ids))
        return EngineCoreRequest(
            request_id=request_id,
            prompt_token_ids=token_ids,
            sampling_params=params,
            arrival_time=time.time(),
            priority=priority,
            eos_token_id=self.eos_token_id,
        )

    def _prepare_params(self, params: SamplingParams, prompt_len: int) -> SamplingParams:
        params = params.clone()
        params.max_logprobs = self.max_logprobs
        params.validate()
        params.check_vocab(self.vocab_size)
        room = self.max_model_len - prompt_len
        if params.max_tokens is None:
            params.max_tokens = max(room, 1)
        if not params.ignore_eos:
            for e in self.extra_eos_ids:
                if e not in params.stop_token_ids:
                    params.stop_token_ids.append(e)
        return params
