"""POST /tokenize and POST /detokenize."""

from __future__ import annotations

from typing import Any

from vllm.entrypoints.openai.errors import APIError, parse_body
from vllm.entrypoints.openai.protocol import DetokenizeRequest, TokenizeRequest
from vllm.entrypoints.openai.serving_chat import render_chat
from vllm.entrypoints.openai.serving_engine import ServerContext


def tokenize(ctx: ServerContext, raw: bytes) -> dict[str, Any]:
    req = parse_body(raw, TokenizeRequest)
    ctx.check_model(req.model)
    tok = ctx.engine.tokenizer
    if (req.prompt is None) == (req.messages is None):
        raise APIError(400, "give exactly one of prompt or messages", param="prompt")
    if req.messages is not None:
        tokens = render_chat(tok, req.messages, req.add_generation_prompt)
    else:
        tokens = list(tok.encode(req.prompt, add_special_tokens=req.add_special_tokens))
    return {"tokens": tokens, "count": len(tokens), "max_model_len": ctx.engine.max_model_len}


def detokenize(ctx: ServerContext, raw: bytes) -> dict[str, Any]:
    req = parse_body(raw, DetokenizeRequest)
    ctx.check_model(req.model)
    vocab = len(ctx.engine.tokenizer)
    bad = [t for t in req.tokens if not 0 <= t < vocab]
    if bad:
        raise APIError(400, f"tokens {bad[:5]} are outside the vocabulary [0, {vocab})",
                       param="tokens")
    return {"prompt": ctx.engine.tokenizer.decode(req.tokens)}
