"""POST /v1/completions."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from vllm.entrypoints.openai.errors import APIError, from_value_error, parse_body
from vllm.entrypoints.openai.protocol import (
    CompletionChoice,
    CompletionLogProbs,
    CompletionRequest,
    CompletionResponse,
    UsageInfo,
    random_id,
)
from vllm.entrypoints.openai.serving_engine import (
    ServerContext,
    merge_streams,
    sse,
    start_streams,
    token_text,
    top_entries,
    until_disconnected,
)
from vllm.outputs import CompletionOutput, RequestOutput


def _prompts(req: CompletionRequest) -> list[str | list[int]]:
    p = req.prompt
    if isinstance(p, str):
        prompts: list[Any] = [p]
    elif p and all(isinstance(x, int) for x in p):
        prompts = [list(p)]
    else:
        prompts = list(p)
    if not prompts:
        raise APIError(400, "prompt must not be empty", param="prompt")
    return prompts


def _logprobs(ctx: ServerContext, token_ids: list[int], positions: list[Any] | None, k: int,
              offset: int) -> CompletionLogProbs:
    out = CompletionLogProbs()
    tok = ctx.engine.tokenizer
    for pos, tid in enumerate(token_ids):
        entry = positions[pos] if positions and pos < len(positions) else None
        sampled = entry.get(tid) if entry else None
        text = token_text(tok, tid, sampled)
        out.tokens.append(text)
        out.text_offset.append(offset)
        offset += len(text)
        out.token_logprobs.append(sampled.logprob if sampled is not None else None)
        if entry is None:
            out.top_logprobs.append(None)
        else:
            out.top_logprobs.append(
                {token_text(tok, t, lp): lp.logprob for t, lp in top_entries(entry, k)})
    return out


class _Choices:
    """Per-choice streaming state: how much text/tokens were already sent."""

    def __init__(self, req: CompletionRequest, ctx: ServerContext) -> None:
        self.req, self.ctx = req, ctx
        self.sent_text: dict[int, int] = {}
        self.sent_tokens: dict[int, int] = {}
        self.prompt_tokens: dict[int, int] = {}
        self.completion_tokens: dict[int, int] = {}
        self.had_new_tokens = False  # set by delta(): did that choice bring new tokens?

    def delta(self, j: int, ro: RequestOutput, co: CompletionOutput) -> CompletionChoice:
        index = j * self.req.n + co.index
        first = index not in self.sent_text
        t0, n0 = self.sent_text.get(index, 0), self.sent_tokens.get(index, 0)
        text = co.text[t0:]
        if first and self.req.echo:
            text = (ro.prompt or "") + text
        logprobs = None
        if self.req.logprobs is not None:
            logprobs = _logprobs(self.ctx, co.token_ids[n0:], (co.logprobs or [])[n0:],
                                 self.req.logprobs, t0)
        self.had_new_tokens = len(co.token_ids) > n0
        self.sent_text[index], self.sent_tokens[index] = len(co.text), len(co.token_ids)
        self.prompt_tokens[j] = len(ro.prompt_token_ids)
        self.completion_tokens[index] = len(co.token_ids)
        return CompletionChoice(index=index, text=text, logprobs=logprobs,
                                finish_reason=co.finish_reason, stop_reason=co.stop_reason)

    def usage(self) -> UsageInfo:
        p, c = sum(self.prompt_tokens.values()), sum(self.completion_tokens.values())
        return UsageInfo(prompt_tokens=p, completion_tokens=c, total_tokens=p + c)


def _sampling(ctx: ServerContext, req: CompletionRequest) -> Any:
    if req.suffix:
        raise APIError(400, "suffix is not supported", param="suffix")
    if req.best_of is not None and req.best_of != req.n:
        raise APIError(400, f"best_of must equal n={req.n} (no beam/best-of selection), "
                       f"got {req.best_of}", param="best_of")
    try:
        return req.sampling_params(req.max_tokens, req.logprobs, ctx.max_logprobs,
                                   defaults=ctx.sampling_defaults)
    except ValueError as exc:
        raise from_value_error(exc) from None


async def create_completion(ctx: ServerContext, request: Request, raw: bytes) -> Any:
    req = parse_body(raw, CompletionRequest)
    ctx.check_model(req.model)
    params = _sampling(ctx, req)
    base_id = random_id("cmpl")
    streams = start_streams(ctx, _prompts(req), params, base_id, req.priority)
    state = _Choices(req, ctx)
    if req.stream:
        return StreamingResponse(_stream(ctx, req, base_id, streams, state),
                                 media_type="text/event-stream")

    async def collect() -> CompletionResponse:
        choices: dict[int, CompletionChoice] = {}
        async for j, ro in merge_streams(streams):
            for co in ro.outputs:
                choice = state.delta(j, ro, co)
                prev = choices.get(choice.index)
                if prev is not None:
                    choice = _join(prev, choice)
                choices[choice.index] = choice
        ordered = [choices[i] for i in sorted(choices)]
        return CompletionResponse(id=base_id, model=ctx.model_name, choices=ordered,
                                  usage=state.usage())

    response = await until_disconnected(request, collect)
    return JSONResponse(response.model_dump())


def _join(prev: CompletionChoice, new: CompletionChoice) -> CompletionChoice:
    logprobs = prev.logprobs
    if prev.logprobs is not None and new.logprobs is not None:
        logprobs = CompletionLogProbs(
            text_offset=prev.logprobs.text_offset + new.logprobs.text_offset,
            token_logprobs=prev.logprobs.token_logprobs + new.logprobs.token_logprobs,
            tokens=prev.logprobs.tokens + new.logprobs.tokens,
            top_logprobs=prev.logprobs.top_logprobs + new.logprobs.top_logprobs)
    return CompletionChoice(index=new.index, text=prev.text + new.text, logprobs=logprobs,
                            finish_reason=new.finish_reason, stop_reason=new.stop_reason)


class _ChunkRenderer:
    """SSE text of a streamed completion chunk. Chunks without logprobs (nearly all) are
    rendered from a per-stream prefix, about 2.5x cheaper than building and dumping the pydantic
    models for every token of every stream; the JSON has the same fields and values."""

    def __init__(self, base_id: str, model: str) -> None:
        self.base_id, self.model = base_id, model
        self.head = ('data: {"id":' + json.dumps(base_id) + ',"object":"text_completion",'
                     f'"created":{int(time.time())},"model":' + json.dumps(model) + ',"choices":[')

    def render(self, choices: list[CompletionChoice]) -> str:
        if any(c.logprobs is not None for c in choices):
            chunk = CompletionResponse(id=self.base_id, model=self.model, choices=choices)
            return sse(chunk.model_dump(exclude={"usage"}))
        dumps = json.dumps
        body = ",".join(
            f'{{"index":{c.index},"text":{dumps(c.text)},"logprobs":null,'
            f'"finish_reason":{dumps(c.finish_reason)},"stop_reason":{dumps(c.stop_reason)}}}'
            for c in choices)
        return f"{self.head}{body}]}}\n\n"


async def _stream(ctx: ServerContext, req: CompletionRequest, base_id: str,
                  streams: list[AsyncIterator[RequestOutput]], state: _Choices
                  ) -> AsyncIterator[str]:
    renderer = _ChunkRenderer(base_id, ctx.model_name)
    # One prompt: its last chunk goes out together with the usage chunk and [DONE] (one
    # socket write instead of three at the end of every request).
    hold_last = len(streams) == 1
    tail = ""
    try:
        async for j, ro in merge_streams(streams):
            # A choice with new tokens is sent even when its text is still empty (special
            # tokens, a held-back stop string or partial UTF-8): clients see every step, and
            # time-to-first-token is measured at the first token, not the first character.
            choices = []
            for co in ro.outputs:
                c = state.delta(j, ro, co)
                if c.text or c.finish_reason or c.logprobs or state.had_new_tokens:
                    choices.append(c)
            if choices:
                text = renderer.render(choices)
                if hold_last and ro.finished:
                    tail += text
                else:
                    yield tail + text
                    tail = ""
        if req.include_usage:
            chunk = CompletionResponse(id=base_id, model=ctx.model_name, choices=[],
                                       usage=state.usage())
            tail += sse(chunk)
    except ValueError as exc:
        tail += sse(from_value_error(exc).body())
    except APIError as exc:
        tail += sse(exc.body())
    except Exception as exc:  # noqa: BLE001 - the status line is already sent
        tail += sse(APIError(500, f"{type(exc).__name__}: {exc}").body())
    yield tail + sse("[DONE]")
