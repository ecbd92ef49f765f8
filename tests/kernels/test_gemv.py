"""`_C::gemv` (decode-sized GEMMs, 1-4 rows) against an fp32 reference, and the CUDA
platform's routing of linear layers to it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vllm import _custom_ops as ops

CUDA_OK = torch.cuda.is_available() and torch.version.hip is None and ops.has_op(ops.CUDA, "gemv")
pytestmark = pytest.mark.skipif(not CUDA_OK, reason="needs an NVIDIA GPU and the built vllm._C")

TOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def _ref(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    y = x.float() @ w.float().T  # [M, N] fp32
    return y + b.float() if b is not None else y


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("n,k", [(1, 8), (37, 64), (1000, 264), (4096, 4096), (259, 14336)])
@pytest.mark.parametrize("rows_per_warp", [0, 1, 2, 4])
def test_gemv_matches_reference(dtype: torch.dtype, m: int, n: int, k: int, rows_per_warp: int) -> None:
    x = torch.randn(m, k, dtype=dtype, device="cuda")
    w = torch.randn(n, k, dtype=dtype, device="cuda") / k**0.5
    b = torch.randn(n, dtype=dtype, device="cuda") if n % 2 else None
    out = torch.full((m, n), float("nan"), dtype=dtype, device="cuda")
    ops.gemv(out, x, w, b, ns=ops.CUDA, rows_per_warp=rows_per_warp)
    torch.testing.assert_close(out.float(), _ref(x, w, b), atol=TOL[dtype], rtol=TOL[dtype])


def test_gemv_strided_rows_and_out() -> None:
    """x rows and out rows inside wider tensors (a slice of the qkv output, a padded buffer)."""
    base = torch.randn(3, 512 + 64, dtype=torch.bfloat16, device="cuda")
    x = base[:, 64:]  # row stride 576, offset 64 elements: still 16-byte aligned
    w = torch.randn(300, 512, dtype=torch.bfloat16, device="cuda") / 512**0.5
    out_base = torch.zeros(3, 320, dtype=torch.bfloat16, device="cuda")
    ops.gemv(out_base[:, :300], x, w, None, ns=ops.CUDA)
    torch.testing.assert_close(out_base[:, :300].float(), _ref(x, w, None), atol=1.6e-2, rtol=1.6e-2)
    assert out_base[:, 300:].abs().sum().item() == 0  # nothing written past n


@pytest.mark.parametrize("bad,match", [
    (dict(m=5), "rows"),
    (dict(k=12), "multiple of 8"),
    (dict(dtype=torch.float32), "not supported"),
    (dict(rows_per_warp=3), "rows_per_warp"),
])
def test_gemv_rejects_bad_arguments(bad: dict, match: str) -> None:
    m, k, dtype = bad.get("m", 2), bad.get("k", 64), bad.get("dtype", torch.bfloat16)
    x = torch.randn(m, k, dtype=dtype, device="cuda")
    w = torch.randn(16, k, dtype=dtype, device="cuda")
    out = torch.empty(m, 16, dtype=dtype, device="cuda")
    with pytest.raises(ValueError, match=match):
        ops.gemv(out, x, w, None, ns=ops.CUDA, rows_per_warp=bad.get("rows_per_warp", 0))


def test_gemv_in_cuda_graph() -> None:
    x = torch.randn(1, 4096, dtype=torch.bfloat16, device="cuda")
    w = torch.randn(4096, 4096, dtype=torch.bfloat16, device="cuda") / 64
    out = torch.empty(1, 4096, dtype=torch.bfloat16, device="cuda")
    ops.gemv(out, x, w, None, ns=ops.CUDA)  # warm-up outside the capture
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        ops.gemv(out, x, w, None, ns=ops.CUDA)
    x.copy_(torch.randn_like(x))
    g.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(out.float(), _ref(x, w, None), atol=1.6e-2, rtol=1.6e-2)


def test_platform_routes_few_rows_to_gemv() -> None:
    from vllm.platforms.cuda import CudaPlatform
    from vllm.platforms.cuda_gemm import cuda_gemm

    assert CudaPlatform().unquantized_gemm() is cuda_gemm
    w = torch.randn(256, 128, dtype=torch.bfloat16, device="cuda") / 12
    b = torch.randn(256, dtype=torch.bfloat16, device="cuda")
    for rows in (1, 2, 3, 64):
        x = torch.randn(rows, 128, dtype=torch.bfloat16, device="cuda")
        torch.testing.assert_close(cuda_gemm(x, w, b).float(), F.linear(x, w, b).float(),
                                   atol=3e-2, rtol=2e-2)
    x3 = torch.randn(2, 1, 128, dtype=torch.bfloat16, device="cuda")  # leading dims kept
    assert cuda_gemm(x3, w).shape == (2, 1, 256)
