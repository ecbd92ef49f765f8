"""Every VLLM_* environment variable, typed and documented. Read nowhere else.

Values are read lazily on attribute access (``vllm.envs.VLLM_PLATFORM``) so tests can
monkeypatch ``os.environ``. Unknown values for enumerated variables fail with the allowed list.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TARGET_DEVICES = ("auto", "cuda", "rocm", "cpu", "xpu", "empty")
PLATFORMS = ("cpu", "cuda", "rocm", "xpu")


def _choice(name: str, allowed: tuple[str, ...], default: str | None) -> Callable[[], str | None]:
    def read() -> str | None:
        raw = os.environ.get(name)
        if raw is None or raw == "":
            return default
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"{name}={raw!r} is not valid; allowed values: {', '.join(allowed)}")
        return value

    return read


def _int(name: str, default: int | None) -> Callable[[], int | None]:
    def read() -> int | None:
        raw = os.environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} must be an integer") from None

    return read


def _float(name: str, default: float | None) -> Callable[[], float | None]:
    def read() -> float | None:
        raw = os.environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} must be a number") from None

    return read


def _str(name: str, default: str | None) -> Callable[[], str | None]:
    return lambda: os.environ.get(name) or default


def _bool(name: str, default: bool) -> Callable[[], bool]:
    def read() -> bool:
        raw = os.environ.get(name)
        if raw is None or raw == "":
            return default
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}={raw!r} must be one of 1/0/true/false")

    return read


@dataclass(frozen=True)
class _Var:
    read: Callable[[], Any]
    doc: str


_VARS: dict[str, _Var] = {
    "VLLM_TARGET_DEVICE": _Var(
        _choice("VLLM_TARGET_DEVICE", TARGET_DEVICES, "auto"),
        "Build-time: which extension CMake builds (auto picks from the installed torch).",
    ),
    "VLLM_PLATFORM": _Var(
        _choice("VLLM_PLATFORM", PLATFORMS, None),
        "Run-time: force the platform instead of probing the hardware.",
    ),
    "VLLM_CUDA_ARCHS": _Var(
        _str("VLLM_CUDA_ARCHS", "90"),
        "Build-time: CUDA architectures for _C (CMAKE_CUDA_ARCHITECTURES syntax).",
    ),
    "VLLM_ROCM_ARCHS": _Var(
        _str("VLLM_ROCM_ARCHS", "gfx90a;gfx942"),
        "Build-time: AMD GPU targets for the ROCm extensions.",
    ),
    "VLLM_CPU_KVCACHE_SPACE": _Var(
        _float("VLLM_CPU_KVCACHE_SPACE", None),
        "CPU: GiB of RAM for the KV cache (default: derived from free memory).",
    ),
    "VLLM_CPU_OMP_THREADS_BIND": _Var(
        _str("VLLM_CPU_OMP_THREADS_BIND", "auto"),
        "CPU: 'auto', 'off', or a core list like '0-3' to bind OpenMP threads to.",
    ),
    "VLLM_CPU_NUM_THREADS": _Var(
        _int("VLLM_CPU_NUM_THREADS", None),
        "CPU: number of compute threads (default: all cores bound).",
    ),
    "VLLM_GEMM_OVERRIDE": _Var(
        _str("VLLM_GEMM_OVERRIDE", None),
        "'module:function' that replaces the unquantized GEMM of every linear layer.",
    ),
    "VLLM_API_KEY": _Var(_str("VLLM_API_KEY", None), "API key required by `vllm serve`."),
    "VLLM_LOGGING_LEVEL": _Var(_str("VLLM_LOGGING_LEVEL", "INFO"), "Log level of the vllm logger."),
    "VLLM_ALLOW_PICKLE_WEIGHTS": _Var(
        _bool("VLLM_ALLOW_PICKLE_WEIGHTS", False),
        "Allow loading pickle (.bin/.pt) checkpoints. Off: they can run arbitrary code.",
    ),
    "VLLM_ENGINE_READY_TIMEOUT_S": _Var(
        _int("VLLM_ENGINE_READY_TIMEOUT_S", 600),
        "Seconds the API server waits for the engine process to become ready.",
    ),
    "VLLM_MAX_REQUEST_BYTES": _Var(
        _int("VLLM_MAX_REQUEST_BYTES", 8 * 1024 * 1024),
        "Largest HTTP request body `vllm serve` accepts (413 above it).",
    ),
    "VLLM_HOST_IP": _Var(_str("VLLM_HOST_IP", None), "Address other ranks use to reach this node."),
    "VLLM_WORKER_START_TIMEOUT_S": _Var(
        _int("VLLM_WORKER_START_TIMEOUT_S", 300),
        "Seconds the multiproc/ray executor waits for its workers to come up.",
    ),
}


def __getattr__(name: str) -> Any:
    var = _VARS.get(name)
    if var is None:
        raise AttributeError(f"module 'vllm.envs' has no attribute {name!r}")
    return var.read()


def __dir__() -> list[str]:
    return sorted(_VARS)


def describe() -> dict[str, str]:
    """Name -> documentation of every variable (for `vllm collect-env` and docs)."""
    return {name: var.doc for name, var in _VARS.items()}
