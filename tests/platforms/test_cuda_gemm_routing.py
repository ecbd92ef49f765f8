"""Which products the CUDA platform's GEMM sends to `_C::gemv` (checked on any host: the
kernel is replaced by a recording stand-in; tests/kernels/test_gemv.py runs the real one)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vllm.platforms import cuda_gemm as cg


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    seen: list[tuple[int, ...]] = []

    def fake_gemv(out: torch.Tensor, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                  rows_per_warp: int) -> None:
        assert x.dim() == 2 and out.shape == (x.shape[0], w.shape[0])
        seen.append(tuple(x.shape))
        out.copy_(F.linear(x, w, b))

    monkeypatch.setattr(cg, "_gemv", fake_gemv)
    monkeypatch.setattr(cg, "DEVICE_TYPE", "cpu")  # these tensors stand in for CUDA ones
    return seen


@pytest.mark.parametrize("rows,routed", [(1, True), (2, True), (3, False), (256, False)])
def test_rows_limit(calls: list, rows: int, routed: bool) -> None:
    x = torch.randn(rows, 64, dtype=torch.bfloat16)
    w = torch.randn(32, 64, dtype=torch.bfloat16)
    torch.testing.assert_close(cg.cuda_gemm(x, w), F.linear(x, w))
    assert bool(calls) == routed


def test_leading_dims_flatten(calls: list) -> None:
    x = torch.randn(2, 1, 64, dtype=torch.float16)
    w = torch.randn(16, 64, dtype=torch.float16)
    assert cg.cuda_gemm(x, w).shape == (2, 1, 16)
    assert calls == [(2, 64)]


@pytest.mark.parametrize("case", ["fp32", "k_not_multiple_of_8", "mixed_dtype", "weight_transposed",
                                  "misaligned_x", "bias_dtype"])
def test_unsupported_operands_fall_back(calls: list, case: str) -> None:
    dt = torch.float32 if case == "fp32" else torch.bfloat16
    k = 60 if case == "k_not_multiple_of_8" else 64
    x = torch.randn(2, k, dtype=dt)
    w = torch.randn(32, k, dtype=torch.float16 if case == "mixed_dtype" else dt)
    b = torch.randn(32, dtype=torch.float32) if case == "bias_dtype" else None
    if case == "weight_transposed":
        w = torch.randn(k, 32, dtype=dt).T
    if case == "misaligned_x":
        x = torch.randn(2 * k + 1, dtype=dt)[1:].view(2, k)  # 2-byte offset
    if case in ("mixed_dtype", "bias_dtype"):
        with pytest.raises(RuntimeError):  # torch's own error for mixed dtypes
            cg.cuda_gemm(x, w, b)
    else:
        torch.testing.assert_close(cg.cuda_gemm(x, w, b), F.linear(x, w, b))
    assert calls == []


def test_host_tensors_never_reach_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer left on the CPU of a CUDA host (tests, CPU offload) uses torch."""
    monkeypatch.setattr(cg, "_gemv", None)
    x, w = torch.randn(1, 64, dtype=torch.bfloat16), torch.randn(32, 64, dtype=torch.bfloat16)
    torch.testing.assert_close(cg.cuda_gemm(x, w), F.linear(x, w))
