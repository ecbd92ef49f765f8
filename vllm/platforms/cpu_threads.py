"""Binding the compute threads of a CPU worker to cores (called once by the CPU platform)."""

from __future__ import annotations

import os

import torch

from vllm.logger import init_logger

logger = init_logger(__name__)
_bound: tuple[int, ...] | None = None


def parse_cores(spec: str) -> list[int]:
    """'0-3,6' -> [0, 1, 2, 3, 6]."""
    cores: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            cores.extend(range(int(lo), int(hi) + 1))
        else:
            cores.append(int(part))
    if not cores:
        raise ValueError(f"VLLM_CPU_OMP_THREADS_BIND={spec!r} names no cores")
    return cores


def bind_threads(spec: str | None, num_threads: int | None) -> tuple[int, ...]:
    """Pin this process (and its OpenMP threads, via the _C_cpu helper when built) to cores."""
    global _bound
    if spec in (None, "off"):
        return ()
    available = sorted(os.sched_getaffinity(0))
    cores = available if spec == "auto" else parse_cores(spec)
    bad = [c for c in cores if c not in available]
    if bad:
        raise ValueError(f"VLLM_CPU_OMP_THREADS_BIND names cores {bad} outside {available}")
    if num_threads is not None:
        cores = cores[:num_threads]
    if _bound == tuple(cores):
        return _bound
    torch.set_num_threads(len(cores))
    try:
        from vllm import _C_cpu  # type: ignore[attr-defined]

        _C_cpu.bind_omp_threads(cores)
    except (ImportError, AttributeError):
        os.sched_setaffinity(0, cores)
    _bound = tuple(cores)
    logger.debug("CPU compute threads bound to cores %s", cores)
    return _bound
