"""Shared pieces of `vllm bench latency|throughput`: the model argument (a folder, a hub id, a
.gguf file, or ``random:<shape>``), random token prompts, the LLM build and JSON output."""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from typing import Any

import click

RANDOM_PREFIX = "random:"


def resolve_model_arg(model: str | None, seed: int = 0) -> str:
    """``random:<shape>`` -> a seeded random-weight checkpoint folder (made once, then reused);
    anything else is returned unchanged."""
    if not model or not model.startswith(RANDOM_PREFIX):
        return model or ""
    from vllm.testing.checkpoints import SIZES, make_checkpoint

    shape = model[len(RANDOM_PREFIX):]
    if shape not in SIZES:
        raise click.BadParameter(
            f"random shape {shape!r} is unknown; one of {', '.join(sorted(SIZES))}", param_hint="--model"
        )
    arch = SIZES[shape][0]
    out = os.path.join(tempfile.gettempdir(), f"vllm-random-{shape}-seed{seed}")
    if not os.path.isfile(os.path.join(out, "config.json")):
        click.echo(f"making a random {shape} checkpoint in {out} ...", err=True)
        make_checkpoint(arch, out, size=shape, seed=seed)
    return out


def random_token_prompts(num: int, length: int, vocab_size: int, seed: int = 0) -> list[list[int]]:
    if length < 1:
        raise click.BadParameter(f"input length {length} must be >= 1", param_hint="--input-len")
    rng = random.Random(seed)
    hi = max(vocab_size - 1, 1)
    return [[rng.randrange(hi) for _ in range(length)] for _ in range(num)]


def build_llm(kwargs: dict[str, Any]) -> tuple[Any, float]:
    """Build ``vllm.LLM`` from the engine CLI options; returns it and the start-up seconds
    (from ``LLM(...)`` to ready, after any random checkpoint exists)."""
    from vllm.engine.arg_utils import engine_kwargs_from_cli
    from vllm.entrypoints.llm import LLM

    engine_kwargs = engine_kwargs_from_cli(kwargs)
    engine_kwargs["model"] = resolve_model_arg(engine_kwargs.get("model"), engine_kwargs.get("seed", 0))
    start = time.perf_counter()
    try:
        llm = LLM(**engine_kwargs)
    except (ValueError, TypeError) as e:
        raise click.ClickException(str(e)) from None
    return llm, time.perf_counter() - start


def vocab_size_of(llm: Any) -> int:
    return int(llm.llm_engine.input_processor.vocab_size)


def machine_info() -> dict[str, Any]:
    from vllm.platforms import current_platform

    return {"device": current_platform.device_name(), "cpu_count": os.cpu_count()}


def write_json(path: str | None, result: dict[str, Any]) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
        click.echo(f"wrote {path}")
