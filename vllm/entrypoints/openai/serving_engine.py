"""Shared pieces of the serving handlers: the engine-client interface, request context,
stream merging, SSE framing and abort-on-disconnect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Request
from pydantic import BaseModel

from vllm.entrypoints.openai.errors import APIError, from_value_error
from vllm.outputs import RequestOutput
from vllm.sampling_params import SamplingParams


class EngineClient(Protocol):
    """What the HTTP layer needs from an engine (AsyncLLM, or a fake in tests)."""

    tokenizer: Any
    max_model_len: int
    errored: bool
    stats: dict[str, float]

    def generate(self, prompt: str | list[int], params: SamplingParams, request_id: str,
                 priority: int = 0) -> AsyncIterator[RequestOutput]: ...

    def abort(self, request_id: str) -> None: ...

    def is_healthy(self) -> bool: ...

    async def shutdown(self) -> None: ...


@dataclass
class ServerContext:
    engine: EngineClient
    model_name: str
    aliases: set[str] = field(default_factory=set)
    max_logprobs: int = 20
    metrics: Any = None
    # The model's sampling defaults (generation config) for fields a request leaves unset.
    sampling_defaults: dict[str, Any] = field(default_factory=dict)

    def check_model(self, model: str | None) -> None:
        if model and model != self.model_name and model not in self.aliases:
            raise APIError(404, f"The model `{model}` does not exist; this server serves "
                           f"`{self.model_name}`", param="model", code="model_not_found")


def start_streams(ctx: ServerContext, prompts: list[str | list[int]], params: SamplingParams,
                  base_id: str, priority: int) -> list[AsyncIterator[RequestOutput]]:
    """Register one request per prompt; on a bad prompt abort the ones already started."""
    streams: list[AsyncIterator[RequestOutput]] = []
    ids: list[str] = []
    try:
        for j, prompt in enumerate(prompts):
            rid = base_id if len(prompts) == 1 else f"{base_id}-p{j}"
            streams.append(ctx.engine.generate(prompt, params.clone(), rid, priority))
            ids.append(rid)
    except ValueError as exc:
        for rid in ids:
            ctx.engine.abort(rid)
        error = from_value_error(exc)
        if len(prompts) > 1 and error.param is None:
            error.param = "prompt"
        raise error from None
    return streams


async def merge_streams(
    streams: list[AsyncIterator[RequestOutput]],
) -> AsyncIterator[tuple[int, RequestOutput]]:
    """Interleave several streams as (stream index, output); cancelling closes them all."""
    if len(streams) == 1:
        async for out in streams[0]:
            yield 0, out
        return
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
    done = object()

    async def pump(j: int, stream: AsyncIterator[RequestOutput]) -> None:
        try:
            async for out in stream:
                await queue.put((j, out))
            await queue.put((j, done))
        except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer
            await queue.put((j, exc))

    tasks = [asyncio.create_task(pump(j, s)) for j, s in enumerate(streams)]
    remaining = len(streams)
    try:
        while remaining:
            j, item = await queue.get()
            if item is done:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield j, item
    finally:
        for task in tasks:
            task.cancel()
        for stream in streams:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()


def sse(payload: BaseModel | dict[str, Any] | str) -> str:
    if isinstance(payload, str):
        return f"data: {payload}\n\n"
    if isinstance(payload, BaseModel):
        return f"data: {payload.model_dump_json(exclude_none=False)}\n\n"
    return f"data: {json.dumps(payload)}\n\n"


async def until_disconnected(request: Request, work: Callable[[], Any]) -> Any:
    """Run a non-streaming handler; if the client goes away first, cancel it (which aborts
    its engine requests through the generators' cleanup)."""
    task = asyncio.ensure_future(work())

    async def watch() -> None:
        while not task.done():
            message = await request.receive()
            if message.get("type") == "http.disconnect":
                task.cancel()
                return

    watcher = asyncio.ensure_future(watch())
    try:
        return await task
    finally:
        watcher.cancel()


def token_text(tokenizer: Any, token_id: int, logprob: Any) -> str:
    decoded = getattr(logprob, "decoded_token", None)
    if decoded is not None:
        return decoded
    return tokenizer.decode([token_id]) if tokenizer is not None else str(token_id)


def top_entries(position: dict[int, Any], k: int) -> list[tuple[int, Any]]:
    """The top-k (by rank, then logprob) entries of one position's logprob dict."""
    items = sorted(position.items(), key=lambda kv: (kv[1].rank if kv[1].rank is not None
                                                     else 1 << 30, -kv[1].logprob))
    return items[:k]
