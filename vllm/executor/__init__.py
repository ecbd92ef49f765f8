"""Executors run the workers: ``uni`` (in process); ``mp`` and ``ray`` come as further classes."""

from __future__ import annotations

import importlib
from typing import Any

from vllm.executor.abstract import Executor

_BACKENDS = {
    "uni": "vllm.executor.uniproc:UniProcExecutor",
    "mp": "vllm.executor.multiproc:MultiprocExecutor",
    "ray": "vllm.executor.ray:RayExecutor",
}


def get_executor_class(backend: str) -> type[Executor]:
    target = _BACKENDS.get(backend)
    if target is None:
        raise ValueError(f"distributed_executor_backend={backend!r}; one of {sorted(_BACKENDS)}")
    module, _, attr = target.partition(":")
    try:
        cls: Any = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"executor backend {backend!r} is not available: {e}") from e
    return cls


__all__ = ["Executor", "get_executor_class"]
