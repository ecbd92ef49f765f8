"""The CPU platform's unquantized GEMM: few-row bf16 products (decode batches) through the
`_C_cpu::linear_bf16_packed` kernel on CPUs with avx512_bf16, everything else through torch.

The kernel reads the weight packed as ``[ceil(N/16), K/2, 16, 2]``. Each layer's packed copy is
made on its first few-row call and kept on the weight tensor. Packing doubles the memory of the
weights: prefill-sized products still go to oneDNN with the original layout.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

# Rows up to which the packed kernel beats oneDNN on a 2-core Zen 4 (smollm2-135m shapes, see
# benchmarks/cpu_throughput.md, session 3): 1.4-2.5x at 16 rows, 1.1-1.5x at 64 for every K;
# with K <= 1024 still 1.2-1.3x at 128 rows and 1.05-1.15x at 256 (a decode batch plus a prompt
# chunk). Larger K (down_proj, 1536) loses to oneDNN above 64 rows; prefill goes to oneDNN.
MAX_ROWS = 64
MAX_ROWS_SHORT_K = 256
SHORT_K = 1024

_linear: Callable[..., torch.Tensor] | None = None  # torch.ops._C_cpu.linear_bf16_packed.default


def pack_bf16_weight(weight: torch.Tensor) -> torch.Tensor:
    """[N, K] bf16 -> [ceil(N/16), K/2, 16, 2]: 16 output columns x 2 k-values per vector."""
    n, k = weight.shape
    blocks = -(-n // 16)
    padded = weight.new_zeros(blocks * 16, k)
    padded[:n] = weight
    return padded.view(blocks, 16, k // 2, 2).permute(0, 2, 1, 3).contiguous()


def _packed_for(weight: torch.Tensor) -> torch.Tensor | None:
    """The weight's packed copy (made once), or None when the kernel can't take this weight."""
    if weight.dtype != torch.bfloat16 or weight.dim() != 2 or weight.shape[1] % 2:
        return None
    packed = pack_bf16_weight(weight.detach())
    weight._vllm_packed_bf16 = packed  # type: ignore[attr-defined]
    weight._vllm_packed_rows = MAX_ROWS_SHORT_K if weight.shape[1] <= SHORT_K else MAX_ROWS  # type: ignore[attr-defined]
    return packed


def cpu_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
             ) -> torch.Tensor:
    """x [*, K] @ weight[N, K].T + bias -> [*, N]."""
    global _linear
    packed = getattr(weight, "_vllm_packed_bf16", None)
    k = x.shape[-1]
    rows = x.numel() // k if k else 0
    if packed is None:
        if rows == 0 or rows > MAX_ROWS_SHORT_K or x.dtype != torch.bfloat16:
            return F.linear(x, weight, bias)
        packed = _packed_for(weight)
        if packed is None:
            return F.linear(x, weight, bias)
    if rows == 0 or rows > weight._vllm_packed_rows or x.dtype != torch.bfloat16:  # type: ignore[attr-defined]
        return F.linear(x, weight, bias)
    if _linear is None:
        _linear = torch.ops._C_cpu.linear_bf16_packed.default
    return _linear(x, packed, weight.shape[0], bias)  # [*, N]
