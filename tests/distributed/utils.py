"""Helpers for the distributed tests: tiny-model LLM construction and greedy references."""

from __future__ import annotations

from typing import Any

from vllm import LLM, SamplingParams

PROMPTS = ["hello world", "the quick brown fox jumps"]
# fp32, a small KV cache and context: start-up stays cheap on a shared 2-core machine.
LLM_KW: dict[str, Any] = dict(dtype="float32", kv_cache_space_gib=0.01, max_model_len=128)
GREEDY = SamplingParams(temperature=0.0, max_tokens=6)


def token_ids(llm: LLM, params: SamplingParams = GREEDY) -> list[list[int]]:
    return [list(o.outputs[0].token_ids) for o in llm.generate(PROMPTS, params, use_tqdm=False)]


def reference_tokens(model_dir: str, params: SamplingParams = GREEDY) -> list[list[int]]:
    """The same prompts at TP=1 in this process (the uniproc executor)."""
    llm = LLM(model=model_dir, **LLM_KW)
    try:
        return token_ids(llm, params)
    finally:
        llm.llm_engine.shutdown()
