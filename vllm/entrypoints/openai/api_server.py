"""FastAPI app factory of `vllm serve`.

``build_app(engine_factory, ...)`` starts the engine in the app's lifespan (so it runs on
uvicorn's event loop) and stops it on shutdown. Bodies are parsed by hand so that every bad
input gets an OpenAI-format 400 (not FastAPI's 422), and an ASGI middleware enforces the API key
and the body-size limit before any handler runs.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from vllm.entrypoints.openai.errors import APIError, EngineDeadError, from_value_error
from vllm.entrypoints.openai.metrics import ServerMetrics
from vllm.entrypoints.openai.protocol import ModelCard, ModelList
from vllm.entrypoints.openai.serving_chat import create_chat_completion
from vllm.entrypoints.openai.serving_completion import create_completion
from vllm.entrypoints.openai.serving_engine import EngineClient, ServerContext
from vllm.entrypoints.openai.serving_tokenize import detokenize, tokenize
from vllm.logger import init_logger
from vllm.version import __version__

logger = init_logger(__name__)

_OPEN_PATHS = ("/health", "/version", "/metrics", "/ping")


class GuardMiddleware:
    """API key (``Authorization: Bearer``) and request-size limit, as plain ASGI."""

    def __init__(self, app: Any, api_key: str | None, max_bytes: int) -> None:
        self.app, self.api_key, self.max_bytes = app, api_key, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.api_key and scope["path"] not in _OPEN_PATHS:
            given = headers.get("authorization", "")
            token = given[7:] if given.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(token.encode(), self.api_key.encode()):
                return await APIError(401, "missing or invalid API key (Authorization: Bearer)",
                                      code="invalid_api_key").response()(scope, receive, send)
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._too_large()(scope, receive, send)
        seen = 0

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise APIError(413, f"request body exceeds {self.max_bytes} bytes "
                                   "(VLLM_MAX_REQUEST_BYTES)")
            return message

        await self.app(scope, counting_receive, send)

    def _too_large(self) -> JSONResponse:
        return APIError(413, f"request body exceeds {self.max_bytes} bytes "
                        "(VLLM_MAX_REQUEST_BYTES)").response()


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(ValueError)
    async def _value_error(_: Request, exc: ValueError) -> JSONResponse:
        return from_value_error(exc).response()

    @app.exception_handler(EngineDeadError)
    async def _dead(_: Request, exc: EngineDeadError) -> JSONResponse:
        return APIError(500, str(exc), code="engine_dead").response()

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("internal error")
        return APIError(500, f"internal error: {type(exc).__name__}: {exc}").response()


def _install_routes(app: FastAPI) -> None:
    def ctx_of(request: Request) -> ServerContext:
        ctx = getattr(request.app.state, "ctx", None)
        if ctx is None:
            raise APIError(503, "the engine is not ready")
        return ctx

    @app.get("/health")
    async def health(request: Request) -> Response:
        ctx = getattr(request.app.state, "ctx", None)
        if ctx is None or not ctx.engine.is_healthy():
            return APIError(503, "engine is not healthy", code="engine_dead").response()
        return Response(status_code=200)

    @app.get("/version")
    async def version() -> dict[str, str]:
        return {"version": __version__}

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        body, content_type = ctx_of(request).metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        ctx = ctx_of(request)
        card = ModelCard(id=ctx.model_name, root=ctx.model_name,
                         max_model_len=ctx.engine.max_model_len)
        return ModelList(data=[card]).model_dump()

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        return await create_completion(ctx_of(request), request, await request.body())

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        return await create_chat_completion(ctx_of(request), request, await request.body())

    @app.post("/tokenize")
    async def tokenize_route(request: Request) -> Any:
        return tokenize(ctx_of(request), await request.body())

    @app.post("/detokenize")
    async def detokenize_route(request: Request) -> Any:
        return detokenize(ctx_of(request), await request.body())


def build_app(
    engine_factory: Callable[[ServerMetrics], Awaitable[EngineClient]],
    model_name: str,
    aliases: set[str] | None = None,
    api_key: str | None = None,
    max_request_bytes: int = 8 * 1024 * 1024,
    max_logprobs: int = 20,
    on_ready: Callable[[], None] | None = None,
) -> Any:
    """The ASGI app. ``engine_factory(metrics)`` is awaited at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        metrics = ServerMetrics(model_name)
        engine = await engine_factory(metrics)
        from vllm.engine.processing import sampling_defaults

        app.state.ctx = ServerContext(engine, model_name, set(aliases or ()), max_logprobs,
                                      metrics, sampling_defaults(getattr(engine, "resolved", None)))
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            app.state.ctx = None
            await engine.shutdown()

    app = FastAPI(title="vllm", version=__version__, lifespan=lifespan)
    app.state.ctx = None
    _install_error_handlers(app)
    _install_routes(app)
    app.add_middleware(GuardMiddleware, api_key=api_key, max_bytes=max_request_bytes)
    return app
