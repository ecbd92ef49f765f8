"""The one dispatch point of unquantized GEMMs (see DESIGN.md §9).

Every unquantized linear layer calls ``dispatch_unquantized_gemm()(x, weight, bias)``. A kernel
developer routes all of them to their own function without editing model code, either with the
environment variable ``VLLM_GEMM_OVERRIDE=module:function`` or with ``set_gemm_override(...)``
(what the engine calls when its config names one). The function must accept
``(x [*, in], weight [out, in], bias [out] | None)`` and return ``[*, out]``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch
import torch.nn.functional as F

GemmFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]

_override: str | GemmFn | None = None


def default_unquantized_gemm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """x [*, in] @ weight[out, in].T + bias -> [*, out]. torch's linear is right on every platform
    today (cuBLAS / hipBLASLt / oneDNN underneath)."""
    return F.linear(x, weight, bias)


def resolve_gemm_spec(spec: str) -> GemmFn:
    """'package.module:function' -> the callable; a clear ValueError when it cannot be found."""
    module_name, sep, fn_name = spec.partition(":")
    if not sep or not module_name or not fn_name:
        raise ValueError(f"VLLM_GEMM_OVERRIDE={spec!r} must have the form 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"VLLM_GEMM_OVERRIDE={spec!r}: cannot import module {module_name!r}: {e}") from e
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise ValueError(f"VLLM_GEMM_OVERRIDE={spec!r}: {module_name} has no callable {fn_name!r}")
    return fn


def set_gemm_override(fn_or_spec: str | GemmFn | None) -> None:
    """Route unquantized GEMMs of layers built from now on to ``fn_or_spec`` (None: default).

    Takes precedence over the environment variable."""
    global _override
    if isinstance(fn_or_spec, str):
        resolve_gemm_spec(fn_or_spec)  # fail early on a bad name
    _override = fn_or_spec


def dispatch_unquantized_gemm() -> GemmFn:
    """The GEMM that a linear layer uses: config override, else env override, else the
    platform's own (``Platform.unquantized_gemm``), else torch's linear."""
    from vllm import envs

    choice = _override if _override is not None else envs.VLLM_GEMM_OVERRIDE
    if choice is None:
        from vllm.platforms import current_platform

        return current_platform.unquantized_gemm() or default_unquantized_gemm
    if isinstance(choice, str):
        return resolve_gemm_spec(choice)
    return choice
