"""Shared fixtures for the kernel tests: which implementations exist here, dtypes, tolerances.

`impl` iterates over every non-native CustomOp method the current platform can run (for
forward_cpu, once per vector ISA compiled into `_C_cpu` that this CPU supports), so the same
tests check `_C_cpu` on a CPU host and `_C` on a GPU host.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import pytest
import torch

from vllm import _custom_ops as ops
from vllm.platforms import current_platform

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# (atol, rtol) per dtype: kernels compute in fp32 and round once, the reference may round twice.
TOLS = {
    torch.float32: (2e-5, 1e-5),
    torch.bfloat16: (3e-2, 2e-2),
    torch.float16: (4e-3, 3e-3),
}

CPU_LOADED = ops.loaded(ops.CPU)
requires_cpu_ext = pytest.mark.skipif(not CPU_LOADED, reason="vllm._C_cpu is not built (target empty?)")


class Impl(NamedTuple):
    method: str  # CustomOp method suffix: "cpu", "cuda", ...
    isa: str | None  # _C_cpu ISA forced for this run (None: the extension's default)

    def __str__(self) -> str:
        return self.method + (f"-{self.isa}" if self.isa else "")


def cpu_isas() -> list[str]:
    """ISAs compiled into _C_cpu that this CPU can run (empty when not built)."""
    if not CPU_LOADED:
        return []
    from vllm import _C_cpu  # type: ignore[attr-defined]

    supported = []
    default = _C_cpu.isa()
    for isa in _C_cpu.compiled_isas():
        try:
            _C_cpu.set_isa(isa)
            supported.append(isa)
        except ValueError:
            pass
    _C_cpu.set_isa(default)
    return supported


def available_impls() -> list[Impl]:
    impls: list[Impl] = []
    for method in current_platform.op_method_order:
        if method == "native" or not current_platform.method_available(method)[0]:
            continue
        if method == "cpu":
            impls += [Impl("cpu", isa) for isa in cpu_isas()]
        else:
            impls.append(Impl(method, None))
    return impls


IMPLS = available_impls()
IMPL_PARAMS = [pytest.param(i, id=str(i)) for i in IMPLS] or [
    pytest.param(None, marks=pytest.mark.skip(reason="no compiled kernels on this platform"))
]


@pytest.fixture(params=IMPL_PARAMS)
def impl(request: pytest.FixtureRequest) -> Iterator[Impl]:
    """One available implementation; forces the _C_cpu ISA for the test's duration."""
    chosen: Impl = request.param
    if chosen.isa is None:
        yield chosen
        return
    from vllm import _C_cpu  # type: ignore[attr-defined]

    default = _C_cpu.isa()
    _C_cpu.set_isa(chosen.isa)
    try:
        yield chosen
    finally:
        _C_cpu.set_isa(default)


@pytest.fixture
def device() -> str:
    return current_platform.device_type


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str = "") -> None:
    atol, rtol = TOLS[expected.dtype]
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol, msg=lambda m: f"{what}: {m}")


def run_impl(op: torch.nn.Module, impl: Impl, *args: object) -> object:
    """Call op.forward_<impl.method> directly (bypassing the construction-time dispatch)."""
    return getattr(op, f"forward_{impl.method}")(*args)
