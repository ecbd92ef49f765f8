"""AsyncLLM: the API-process side of serving.

Tokenizes/validates (InputProcessor), ships requests to the EngineCore process (CoreClient),
detokenizes its outputs (OutputProcessor) on the event loop and wakes one collector per request.
A collector keeps only the latest cumulative output per choice, so a slow client never grows a
queue or blocks the loop: it simply sees coalesced updates. ``n > 1`` runs as n child requests
(seeded ``seed + i``) that share the prompt's KV blocks through the prefix cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from vllm.config import VllmConfig
from vllm.engine.core_client import EngineDeadError
from vllm.logger import init_logger
from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import SamplingParams

logger = init_logger(__name__)


@dataclass
class _Parent:
    request_id: str
    n: int
    prompt: str | None
    prompt_token_ids: list[int]
    arrival: float
    event: asyncio.Event = field(default_factory=asyncio.Event)
    outputs: dict[int, CompletionOutput] = field(default_factory=dict)
    changed: set[int] = field(default_factory=set)
    finished: set[int] = field(default_factory=set)
    tokens_seen: dict[int, int] = field(default_factory=dict)
    last_token_time: dict[int, float] = field(default_factory=dict)
    first_token_time: float | None = None
    prompt_logprobs: Any = None
    num_cached_tokens: int = 0
    error: BaseException | None = None


class AsyncLLM:
    """Engine client used by the OpenAI server (see ``api_server.EngineClient``)."""

    def __init__(self, vllm_config: VllmConfig, resolved: Any, tokenizer: Any,
                 input_processor: Any, output_processor: Any, metrics: Any = None) -> None:
        self.vllm_config = vllm_config
        self.resolved = resolved
        self.tokenizer = tokenizer
        self.input_processor = input_processor
        self.output_processor = output_processor
        self.metrics = metrics
        self.max_model_len: int = int(getattr(resolved, "max_model_len", 0) or 0)
        self.vocab_size: int = int(getattr(resolved, "vocab_size", 0) or 0)
        self.errored = False
        self.dead_reason = ""
        self.stats: dict[str, float] = {}
        self._parents: dict[str, _Parent] = {}
        self._children: dict[str, tuple[_Parent, int]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None

    # ---- construction -------------------------------------------------------------------
    @classmethod
    async def start(cls, vllm_config: VllmConfig, metrics: Any = None) -> AsyncLLM:
        """Spawn the core process first, then resolve the model and build the tokenizer here
        while it loads (both start-ups are mostly imports and file reads: they overlap on
        separate cores), then wait until the core is ready."""
        from vllm.engine.output_processor import OutputProcessor
        from vllm.engine.processing import InputProcessor
        from vllm.model_executor.model_loader import resolve_model
        from vllm.transformers_utils.tokenizer import get_tokenizer

        self = cls(vllm_config, None, None, None, None, metrics)
        self._spawn_core(None)
        try:
            resolved = await asyncio.to_thread(resolve_model, vllm_config.model)
            tokenizer = await asyncio.to_thread(get_tokenizer, resolved,
                                                vllm_config.model.chat_template)
        except BaseException:
            await asyncio.to_thread(self._client.kill)
            raise
        self.resolved, self.tokenizer = resolved, tokenizer
        self.input_processor = InputProcessor(vllm_config, tokenizer, resolved)
        self.output_processor = OutputProcessor(tokenizer)
        self.max_model_len = int(getattr(resolved, "max_model_len", 0) or 0)
        self.vocab_size = int(getattr(resolved, "vocab_size", 0) or 0)
        await self._wait_core()
        return self

    async def start_core(self, core_cls: str | None = None) -> None:
        """Spawn the core process (``core_cls`` "module:attr", tests use fakes) and wait."""
        self._spawn_core(core_cls)
        await self._wait_core()

    def _spawn_core(self, core_cls: str | None) -> None:
        from vllm.engine.core_client import CoreClient
        from vllm.engine.core_proc import DEFAULT_CORE

        self._loop = asyncio.get_running_loop()
        self._client = CoreClient(self.vllm_config, self._on_message_threadsafe,
                                  core_cls or DEFAULT_CORE)

    async def _wait_core(self) -> None:
        from vllm import envs

        await asyncio.to_thread(self._client.wait_ready, float(envs.VLLM_ENGINE_READY_TIMEOUT_S))
        self.stats = dict(self._client.ready_info)
        self._publish_stats()

    # ---- messages from the core (reader thread -> loop) ---------------------------------
    def _on_message_threadsafe(self, msg: tuple) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._on_message, msg)
            except RuntimeError:  # loop closed during shutdown
                pass

    def _on_message(self, msg: tuple) -> None:
        kind = msg[0]
        if kind == "outputs":
            self.stats = msg[2]
            self._process_outputs(msg[1])
            self._publish_stats()
        elif kind == "stats":
            self.stats = msg[1]
            self._publish_stats()
        elif kind == "reject":
            self._reject(msg[1], str(msg[2]))
        elif kind == "dead":
            self._mark_dead(str(msg[1]))

    def _publish_stats(self) -> None:
        if self.metrics is not None:
            self.metrics.on_scheduler_stats(self.stats)

    def _reject(self, child_id: str, message: str) -> None:
        """The core refused a request (e.g. its prompt can never fit the KV cache)."""
        entry = self._children.get(child_id)
        if entry is None:
            return
        parent = entry[0]
        self._children.pop(child_id, None)
        self.output_processor.abort([child_id])
        parent.error = ValueError(message)
        parent.event.set()

    def _mark_dead(self, reason: str) -> None:
        if self.errored:
            return
        self.errored = True
        self.dead_reason = reason
        logger.error("engine core died: %s", reason)
        for parent in self._parents.values():
            parent.error = EngineDeadError(f"engine core died: {reason.splitlines()[0]}")
            parent.event.set()

    def _process_outputs(self, core_outputs: list[Any]) -> None:
        try:
            request_outputs, to_abort = self.output_processor.process(core_outputs)
        except Exception as exc:  # noqa: BLE001 - never kill the loop; fail the requests
            logger.exception("output processing failed")
            for parent in self._parents.values():
                parent.error = exc
                parent.event.set()
            return
        if to_abort:
            self._client.send(("abort", list(to_abort)))
        now = time.monotonic()
        for ro in request_outputs:
            entry = self._children.get(ro.request_id)
            if entry is None:
                continue  # aborted meanwhile
            parent, index = entry
            self._update_parent(parent, index, ro, now)

    def _update_parent(self, parent: _Parent, index: int, ro: RequestOutput, now: float) -> None:
        for co in ro.outputs:
            co.index = index
            parent.outputs[index] = co
            parent.changed.add(index)
            new = len(co.token_ids) - parent.tokens_seen.get(index, 0)
            if new > 0:
                self._token_metrics(parent, index, new, now)
                parent.tokens_seen[index] = len(co.token_ids)
        if index == 0:
            parent.prompt_logprobs = ro.prompt_logprobs
            parent.num_cached_tokens = ro.num_cached_tokens
        if ro.finished:
            parent.finished.add(index)
            self._children.pop(ro.request_id, None)
            if len(parent.finished) == parent.n:
                self._parents.pop(parent.request_id, None)
                self._finish_metrics(parent, now)
        parent.event.set()

    def _token_metrics(self, parent: _Parent, index: int, new: int, now: float) -> None:
        if self.metrics is None:
            return
        if parent.first_token_time is None:
            parent.first_token_time = now
            self.metrics.on_first_token(now - parent.arrival)
        last = parent.last_token_time.get(index)
        if last is not None:
            self.metrics.on_inter_token(now - last, new)
        parent.last_token_time[index] = now
        self.metrics.on_generation_tokens(new)

    def _finish_metrics(self, parent: _Parent, now: float) -> None:
        if self.metrics is None:
            return
        reasons = [o.finish_reason or "abort" for o in parent.outputs.values()]
        self.metrics.on_request_finished(now - parent.arrival, len(parent.prompt_token_ids),
                                         reasons)

    # ---- requests -----------------------------------------------------------------------
    def _add_children(self, parent: _Parent, prompt: str | list[int], params: SamplingParams,
                      priority: int) -> list[tuple[str, Any]]:
        requests = []
        for i in range(parent.n):
            child = params.clone()
            child.n = 1
            if params.seed is not None and i:
                child.seed = (params.seed + i) % (2**63)
            cid = parent.request_id if parent.n == 1 else f"{parent.request_id}-{i}"
            source = prompt if not requests else requests[0][1].prompt_token_ids
            req = self.input_processor.process(cid, source, child, priority)
            requests.append((cid, req))
            parent.prompt_token_ids = list(req.prompt_token_ids)
        return requests

    def generate(self, prompt: str | list[int], params: SamplingParams, request_id: str,
                 priority: int = 0) -> AsyncIterator[RequestOutput]:
        """Validate and submit now (a bad input raises ValueError here, before any output);
        the returned stream yields RequestOutputs carrying the choices that changed since the
        last one (each cumulative), the last with ``finished=True``. Leaving it early (or
        ``abort``) aborts the request in the core."""
        if self.errored:
            raise EngineDeadError(f"engine core is dead: {self.dead_reason.splitlines()[0]}")
        if request_id in self._parents:
            raise ValueError(f"request_id {request_id!r} is already in use")
        parent = _Parent(request_id, params.n, prompt if isinstance(prompt, str) else None, [],
                         time.monotonic())
        requests = self._add_children(parent, prompt, params, priority)  # may raise ValueError
        if parent.prompt is None and self.tokenizer is not None:
            parent.prompt = self.tokenizer.decode(parent.prompt_token_ids)
        self._parents[request_id] = parent
        for index, (cid, req) in enumerate(requests):
            self.output_processor.add_request(cid, parent.prompt, req.prompt_token_ids,
                                              req.sampling_params)
            self._children[cid] = (parent, index)
            self._client.send(("add", req))
        return self._stream(parent)

    async def _stream(self, parent: _Parent) -> AsyncIterator[RequestOutput]:
        done = False
        try:
            while not done:
                await parent.event.wait()
                parent.event.clear()
                if parent.error is not None:
                    raise parent.error
                changed = [parent.outputs[i] for i in sorted(parent.changed)]
                parent.changed.clear()
                done = len(parent.finished) == parent.n
                yield RequestOutput(parent.request_id, parent.prompt, parent.prompt_token_ids,
                                    changed, done, parent.prompt_logprobs,
                                    parent.num_cached_tokens)
        finally:
            if not done:
                self.abort(parent.request_id)

    def abort(self, request_id: str) -> None:
        """Abort a request (all its choices); frees its KV blocks in the core."""
        parent = self._parents.pop(request_id, None)
        if parent is None:
            return
        ids = [cid for cid, (p, _) in list(self._children.items()) if p is parent]
        for cid in ids:
            self._children.pop(cid, None)
        if ids:
            self.output_processor.abort(ids)
            if self._client is not None and not self.errored:
                self._client.send(("abort", ids))
        if self.metrics is not None:
            self.metrics.on_request_aborted()

    # ---- health / shutdown --------------------------------------------------------------
    def is_healthy(self) -> bool:
        return not self.errored and self._client is not None and self._client.is_alive()

    @property
    def num_unfinished(self) -> int:
        return len(self._parents)

    async def shutdown(self) -> None:
        """Abort what is still running (its streams end with an error), stop the core."""
        for request_id, parent in list(self._parents.items()):
            parent.error = EngineDeadError("the server is shutting down")
            parent.event.set()
            self.abort(request_id)
        if self._client is not None:
            await asyncio.to_thread(self._client.shutdown)
        self._loop = None
