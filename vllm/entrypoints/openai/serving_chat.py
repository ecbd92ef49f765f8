"""POST /v1/chat/completions."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from vllm.entrypoints.openai.errors import APIError, from_value_error, parse_body
from vllm.entrypoints.openai.protocol import (
    ChatChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatLogprobs,
    ChatMessage,
    ChatResponseMessage,
    ChatStreamChoice,
    DeltaMessage,
    TokenLogprob,
    TopLogprob,
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
from vllm.outputs import CompletionOutput


def render_chat(tokenizer: Any, messages: list[ChatMessage], add_generation_prompt: bool,
                chat_template: str | None = None) -> list[int]:
    """Apply the chat template; the rendered text already holds any BOS, so encode it
    without adding special tokens again."""
    try:
        conversation = [{"role": m.role, "content": m.text()} for m in messages]
        kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": add_generation_prompt}
        if chat_template:
            kwargs["chat_template"] = chat_template
        text = tokenizer.apply_chat_template(conversation, **kwargs)
    except ValueError as exc:
        raise APIError(400, f"messages could not be rendered with the chat template: {exc}",
                       param="messages") from None
    except Exception as exc:  # noqa: BLE001 - Jinja errors are user input errors here
        raise APIError(400, f"chat template error: {type(exc).__name__}: {exc}",
                       param="messages") from None
    return list(tokenizer.encode(text, add_special_tokens=False))


def _logprobs(ctx: ServerContext, token_ids: list[int], positions: list[Any] | None,
              k: int) -> ChatLogprobs:
    tok = ctx.engine.tokenizer
    content = []
    for pos, tid in enumerate(token_ids):
        entry = (positions[pos] if positions and pos < len(positions) else None) or {}
        sampled = entry.get(tid)
        text = token_text(tok, tid, sampled)
        tops = [TopLogprob(token=token_text(tok, t, lp), logprob=lp.logprob,
                           bytes=list(token_text(tok, t, lp).encode()))
                for t, lp in top_entries(entry, k)] if k else []
        content.append(TokenLogprob(token=text, logprob=sampled.logprob if sampled else 0.0,
                                    bytes=list(text.encode()), top_logprobs=tops))
    return ChatLogprobs(content=content)


class _ChatState:
    def __init__(self, req: ChatCompletionRequest, ctx: ServerContext, num_prompt: int) -> None:
        self.req, self.ctx, self.num_prompt = req, ctx, num_prompt
        self.sent_text: dict[int, int] = {}
        self.sent_tokens: dict[int, int] = {}
        self.completion_tokens: dict[int, int] = {}
        self.top_k = req.top_logprobs or 0

    def delta(self, co: CompletionOutput) -> tuple[str, ChatLogprobs | None]:
        t0, n0 = self.sent_text.get(co.index, 0), self.sent_tokens.get(co.index, 0)
        lp = None
        if self.req.logprobs:
            lp = _logprobs(self.ctx, co.token_ids[n0:], (co.logprobs or [])[n0:], self.top_k)
        self.sent_text[co.index], self.sent_tokens[co.index] = len(co.text), len(co.token_ids)
        self.completion_tokens[co.index] = len(co.token_ids)
        return co.text[t0:], lp

    def usage(self) -> UsageInfo:
        c = sum(self.completion_tokens.values())
        return UsageInfo(prompt_tokens=self.num_prompt, completion_tokens=c,
                         total_tokens=self.num_prompt + c)


def _sampling(ctx: ServerContext, req: ChatCompletionRequest) -> Any:
    if req.top_logprobs is not None and not req.logprobs:
        raise APIError(400, "top_logprobs requires logprobs=true", param="top_logprobs")
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None \
        else req.max_tokens
    logprobs = (req.top_logprobs or 0) if req.logprobs else None
    try:
        return req.sampling_params(max_tokens, logprobs, ctx.max_logprobs,
                                   defaults=ctx.sampling_defaults)
    except ValueError as exc:
        raise from_value_error(exc) from None


async def create_chat_completion(ctx: ServerContext, request: Request, raw: bytes) -> Any:
    req = parse_body(raw, ChatCompletionRequest)
    ctx.check_model(req.model)
    params = _sampling(ctx, req)
    prompt_ids = render_chat(ctx.engine.tokenizer, req.messages, req.add_generation_prompt,
                             req.chat_template)
    base_id = random_id("chatcmpl")
    streams = start_streams(ctx, [prompt_ids], params, base_id, req.priority)
    state = _ChatState(req, ctx, len(prompt_ids))
    if req.stream:
        return StreamingResponse(_stream(ctx, req, base_id, streams[0], state),
                                 media_type="text/event-stream")

    async def collect() -> ChatCompletionResponse:
        texts: dict[int, str] = {}
        lps: dict[int, list[TokenLogprob]] = {}
        final: dict[int, CompletionOutput] = {}
        async for _, ro in merge_streams(streams):
            for co in ro.outputs:
                text, lp = state.delta(co)
                texts[co.index] = texts.get(co.index, "") + text
                if lp is not None:
                    lps.setdefault(co.index, []).extend(lp.content or [])
                final[co.index] = co
        choices = [
            ChatChoice(index=i, message=ChatResponseMessage(content=texts[i]),
                       logprobs=ChatLogprobs(content=lps.get(i, [])) if req.logprobs else None,
                       finish_reason=final[i].finish_reason, stop_reason=final[i].stop_reason)
            for i in sorted(final)
        ]
        return ChatCompletionResponse(id=base_id, model=ctx.model_name, choices=choices,
                                      usage=state.usage())

    response = await until_disconnected(request, collect)
    return JSONResponse(response.model_dump())


def _plain_choice(c: ChatStreamChoice) -> str:
    """JSON of a streamed choice without role or logprobs, as ``model_dump(exclude_none=True)``
    writes it, without building the dict (most chunks of every stream are these)."""
    content = c.delta.content
    delta = "{}" if content is None else '{"content":' + json.dumps(content) + "}"
    finish = "" if c.finish_reason is None else ',"finish_reason":' + json.dumps(c.finish_reason)
    return f'{{"index":{c.index},"delta":{delta}{finish}}}'


async def _stream(ctx: ServerContext, req: ChatCompletionRequest, base_id: str,
                  stream: AsyncIterator[Any], state: _ChatState) -> AsyncIterator[str]:
    head = ('data: {"id":' + json.dumps(base_id) + ',"object":"chat.completion.chunk",'
            f'"created":{int(time.time())},"model":' + json.dumps(ctx.model_name) + ',"choices":[')

    def chunk(choices: list[ChatStreamChoice], usage: UsageInfo | None = None) -> str:
        if usage is None and choices and all(c.logprobs is None and c.delta.role is None
                                             for c in choices):
            return head + ",".join(_plain_choice(c) for c in choices) + "]}\n\n"
        body = ChatCompletionChunk(id=base_id, model=ctx.model_name, choices=choices,
                                   usage=usage).model_dump(exclude_none=True)
        return sse(body)

    try:
        yield chunk([ChatStreamChoice(index=i, delta=DeltaMessage(role="assistant", content=""))
                     for i in range(req.n)])
        async for _, ro in merge_streams([stream]):
            choices = []
            for co in ro.outputs:
                fresh = len(co.token_ids) > state.sent_tokens.get(co.index, 0)
                text, lp = state.delta(co)
                # new tokens with no text yet still make a chunk (see serving_completion)
                if text or lp and lp.content or co.finish_reason or fresh:
                    choices.append(ChatStreamChoice(
                        index=co.index, delta=DeltaMessage(content=text) if text else
                        DeltaMessage(), logprobs=lp, finish_reason=co.finish_reason))
            if choices:
                yield chunk(choices)
        if req.include_usage:
            yield chunk([], state.usage())
    except ValueError as exc:
        yield sse(from_value_error(exc).body())
    except APIError as exc:
        yield sse(exc.body())
    except Exception as exc:  # noqa: BLE001 - the status line is already sent
        yield sse(APIError(500, f"{type(exc).__name__}: {exc}").body())
    yield sse("[DONE]")
