"""The CUDA platform's unquantized GEMM: products of 1 or 2 rows (decode batches of one or two
sequences) through `_C::gemv`, everything else through torch (cuBLAS).

Why: at batch 1, cuBLAS streams Llama-3.1-8B's weights at 2.0-2.9 TB/s (o_proj and down_proj
as split-K kernels, each followed by a reduce kernel) where `_C::gemv` reaches 2.5-3.1 TB/s; a
decode step is a pass over the weights, so that is time on every token. At 4 rows the kernel
loses to cuBLAS on most shapes (benchmarks/gpu_session4/gemv_bench.log), hence the limit of 2
here while the kernel itself takes up to 4.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

MAX_ROWS = 2  # measured; the kernel takes up to 4 (csrc/cuda/gemv.cuh, kGemvMaxRows)
DEVICE_TYPE = "cuda"  # host tensors (a CPU-side layer on a GPU host) go to torch
_DTYPES = (torch.bfloat16, torch.float16)

_gemv: Callable[..., None] | None = None  # torch.ops._C.gemv.default


def gemv_supported(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """Whether `_C::gemv` takes these operands (dtype, layout, alignment); rows are not checked."""
    k = x.shape[-1]
    return (x.device.type == DEVICE_TYPE and weight.device.type == DEVICE_TYPE
            and x.dtype in _DTYPES and weight.dtype == x.dtype and weight.dim() == 2
            and k % 8 == 0 and k > 0 and x.stride(-1) == 1
            and weight.stride(1) == 1 and weight.stride(0) % 8 == 0 and weight.data_ptr() % 16 == 0
            and (bias is None or (bias.dtype == x.dtype and bias.is_contiguous())))


def cuda_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
              ) -> torch.Tensor:
    """x [*, K] @ weight[N, K].T + bias -> [*, N]."""
    global _gemv
    k = x.shape[-1]
    rows = x.numel() // k if k else 0
    if not 0 < rows <= MAX_ROWS or not gemv_supported(x, weight, bias):
        return F.linear(x, weight, bias)
    x2 = x.reshape(rows, k)  # [M, K]; a view for the decode activations
    if x2.stride(0) % 8 or x2.data_ptr() % 16:
        return F.linear(x, weight, bias)
    if _gemv is None:
        _gemv = torch.ops._C.gemv.default
    out = x.new_empty(*x.shape[:-1], weight.shape[0])  # [*, N]
    _gemv(out.view(rows, -1), x2, weight, bias, 0)
    return out
