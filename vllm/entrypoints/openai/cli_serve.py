"""`vllm serve [MODEL]`: the OpenAI-compatible HTTP server."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import Any

import click

from vllm.engine.arg_utils import config_from_cli, engine_options
from vllm.logger import init_logger

logger = init_logger(__name__)


def _make_server(config: Any) -> Any:
    """uvicorn re-raises a caught SIGTERM after its graceful shutdown (exit -15); a SIGTERM'd
    `vllm serve` that drained cleanly should exit 0 instead."""
    import uvicorn

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            if sig == signal.SIGTERM and sig in self._captured_signals:
                self._captured_signals.remove(sig)

    return _Server(config)


def _served_name(model: str, served_model_name: str | None) -> str:
    if served_model_name:
        return served_model_name
    if model:
        return model
    from vllm.model_executor.model_loader import default_model_path

    try:
        path = default_model_path()
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    name = os.path.basename(path)
    return name.split(".")[0] if name.endswith(".gguf") else name


def _limit_api_threads() -> None:
    """The API process only tokenizes, detokenizes and formats JSON: give torch one thread so
    it never runs (or spins) OpenMP workers on the cores the engine core computes on. The
    engine core is a fresh spawned process and sets its own thread count."""
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or inter-op work already ran in this process
        pass


def lower_api_priority(increment: int) -> int:
    """Raise the nice value of every thread of this (API) process by ``increment``; returns
    the number of threads changed. Threads started later inherit it from their creator.

    Called once the engine core runs (a child spawned earlier keeps the normal priority).
    Where the API process shares cores with the core's compute threads, each of its bursts
    (a step's chunks for every stream) otherwise preempts a compute thread, and the other
    threads wait for it at the next barrier; at a lower priority that work fills the gaps
    between the core's parallel regions instead."""
    if increment <= 0 or not hasattr(os, "setpriority"):
        return 0
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # no per-thread view: the calling thread only
        tids = [0]
    changed = 0
    for tid in tids:
        try:
            now = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, min(19, now + increment))
            changed += 1
        except OSError:  # the thread ended meanwhile
            pass
    return changed


def serving_defaults(config: Any) -> Any:
    """Defaults that differ between serving and offline use: a platform may name a smaller
    per-step token budget for serving (``serving_max_num_batched_tokens``), which trades a
    little throughput for time-to-first-token. An explicit --max-num-batched-tokens wins."""
    from vllm.platforms import current_platform

    budget = current_platform.serving_max_num_batched_tokens
    sched = config.scheduler
    if budget is None or sched.max_num_batched_tokens is not None \
            or not sched.enable_chunked_prefill:
        return config
    return config.replace(scheduler={"max_num_batched_tokens": int(budget)})


@click.command("serve")
@click.argument("model", required=False, default="")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("--port", default=8000, show_default=True, type=int, help="port to bind")
@click.option("--api-key", default=None,
              help="require 'Authorization: Bearer KEY' on /v1/* (default: VLLM_API_KEY)")
@click.option("--uvicorn-log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug", "trace"]))
@click.option("--api-nice", default=0, show_default=True, type=click.IntRange(0, 19),
              help="once the engine is up, raise the API process's nice value by this much, "
                   "so that the engine's compute threads win cores they share with it")
@click.option("--graceful-shutdown-s", default=30.0, show_default=True, type=float,
              help="on SIGTERM, seconds to let in-flight requests finish before aborting them")
@engine_options(exclude={"model"})
def serve(model: str, host: str, port: int, api_key: str | None, uvicorn_log_level: str,
          api_nice: int, graceful_shutdown_s: float, **engine_kwargs: Any) -> None:
    """Serve MODEL (HF folder, hub id or .gguf; default: the embedded SmolLM2-135M-Instruct)
    over an OpenAI-compatible HTTP API."""
    import uvicorn

    from vllm import envs
    from vllm.engine.async_llm import AsyncLLM
    from vllm.entrypoints.openai.api_server import build_app

    try:
        config = config_from_cli({**engine_kwargs, "model": model or ""})
    except (ValueError, TypeError) as exc:
        raise click.UsageError(str(exc)) from None
    _limit_api_threads()
    config = serving_defaults(config)
    name = _served_name(config.model.model, config.model.served_model_name)
    aliases = {config.model.model} - {""}
    key = api_key or envs.VLLM_API_KEY

    async def factory(metrics: Any) -> AsyncLLM:
        return await AsyncLLM.start(config, metrics)

    def on_ready() -> None:
        lower_api_priority(api_nice)
        logger.info("vllm serve ready: http://%s:%d/v1 (model %r)", host, port, name)

    app = build_app(factory, name, aliases=aliases, api_key=key,
                    max_request_bytes=int(envs.VLLM_MAX_REQUEST_BYTES),
                    max_logprobs=config.model.max_logprobs, on_ready=on_ready)
    server = _make_server(uvicorn.Config(
        app, host=host, port=port, log_level=uvicorn_log_level, lifespan="on",
        timeout_graceful_shutdown=int(graceful_shutdown_s) or None, access_log=False))
    server.run()
    if not server.started:
        sys.exit(1)
    logger.info("vllm serve stopped")
