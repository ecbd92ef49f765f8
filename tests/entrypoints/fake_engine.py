"""A deterministic in-process stand-in for AsyncLLM: tests the HTTP layer without a model.

Each request "generates" ``max_tokens`` tokens: the prompt's token ids cycled (offset by the seed),
one per tick, with fake logprobs. Stop strings and ``n`` are honoured like the real engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from vllm.engine.core_client import EngineDeadError
from vllm.outputs import CompletionOutput, Logprob, RequestOutput
from vllm.sampling_params import SamplingParams


class FakeEngine:
    def __init__(self, tokenizer: Any, max_model_len: int = 256, tick_s: float = 0.001) -> None:
        self.tokenizer = tokenizer
        self.max_model_len = max_model_len
        self.vocab_size = len(tokenizer)
        self.errored = False
        self.stats: dict[str, float] = {}
        self.tick_s = tick_s
        self.active: set[str] = set()
        self.aborted: list[str] = []
        self.metrics: Any = None

    def generate(self, prompt: str | list[int], params: SamplingParams, request_id: str,
                 priority: int = 0) -> AsyncIterator[RequestOutput]:
        if self.errored:
            raise EngineDeadError("engine core died")
        ids = self.tokenizer.encode(prompt) if isinstance(prompt, str) else list(prompt)
        if not ids:
            raise ValueError("prompt must not be empty")
        if len(ids) > self.max_model_len:
            raise ValueError(f"prompt is {len(ids)} tokens, longer than "
                             f"max_model_len={self.max_model_len}")
        params.check_vocab(self.vocab_size)
        self.active.add(request_id)
        return self._run(request_id, prompt if isinstance(prompt, str) else None, ids, params)

    async def _run(self, rid: str, prompt: str | None, ids: list[int],
                   params: SamplingParams) -> AsyncIterator[RequestOutput]:
        done = False
        try:
            outs = [CompletionOutput(i, "", [], logprobs=[] if params.logprobs is not None
                                     else None) for i in range(params.n)]
            max_tokens = params.max_tokens or 8
            for step in range(max_tokens):
                await asyncio.sleep(self.tick_s)
                for co in outs:
                    if co.finish_reason:
                        continue
                    tid = ids[(step + co.index + (params.seed or 0)) % len(ids)]
                    co.token_ids.append(tid)
                    if co.logprobs is not None:
                        co.logprobs.append({tid: Logprob(-0.5, 1), (tid + 1) % self.vocab_size:
                                            Logprob(-1.5, 2)})
                    co.text = self.tokenizer.decode(co.token_ids)
                    for s in params.stop:
                        if s in co.text:
                            co.text = co.text[: co.text.index(s)]
                            co.finish_reason, co.stop_reason = "stop", s
                    if step == max_tokens - 1 and not co.finish_reason:
                        co.finish_reason = "length"
                done = all(co.finish_reason for co in outs)
                yield RequestOutput(rid, prompt, ids, [_copy(co) for co in outs], done)
                if done:
                    return
        finally:
            self.active.discard(rid)
            if not done:
                self.aborted.append(rid)

    def abort(self, request_id: str) -> None:
        self.active.discard(request_id)
        self.aborted.append(request_id)

    def is_healthy(self) -> bool:
        return not self.errored

    async def shutdown(self) -> None:
        pass


def _copy(co: CompletionOutput) -> CompletionOutput:
    return CompletionOutput(co.index, co.text, list(co.token_ids),
                            logprobs=list(co.logprobs) if co.logprobs is not None else None,
                            finish_reason=co.finish_reason, stop_reason=co.stop_reason)
