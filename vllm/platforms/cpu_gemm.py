"""The CPU platform's unquantized GEMM: few-row bf16 products (decode batches) through the
`_C_cpu::gemm_bf16_packed` kernel on CPUs with avx512_bf16, everything else through torch.

The kernel reads the weight packed as ``[ceil(N/16), K/2, 16, 2]``. Each layer's packed copy is
made on its first few-row call and kept on the weight tensor. Packing doubles the memory of the
weights: prefill-sized products still go to oneDNN with the original layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Rows up to which the packed kernel beats oneDNN on a 2-core Zen 4 (smollm2-135m shapes: 1.3-1.75x
# at 16 rows, 1.35x at 32, 1.08x at 64; see benchmarks/cpu_throughput.md).
MAX_ROWS = 64


def pack_bf16_weight(weight: torch.Tensor) -> torch.Tensor:
    """[N, K] bf16 -> [ceil(N/16), K/2, 16, 2]: 16 output columns x 2 k-values per vector."""
    n, k = weight.shape
    blocks = -(-n // 16)
    padded = weight.new_zeros(blocks * 16, k)
    padded[:n] = weight
    return padded.view(blocks, 16, k // 2, 2).permute(0, 2, 1, 3).contiguous()


def cpu_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
             ) -> torch.Tensor:
    """x [*, K] @ weight[N, K].T + bias -> [*, N]."""
    k = x.shape[-1]
    rows = x.numel() // max(k, 1)
    if (rows == 0 or rows > MAX_ROWS or x.dtype != torch.bfloat16
            or weight.dtype != torch.bfloat16 or k % 2 or weight.dim() != 2):
        return F.linear(x, weight, bias)
    packed = getattr(weight, "_vllm_packed_bf16", None)
    if packed is None:
        packed = pack_bf16_weight(weight.detach())
        weight._vllm_packed_bf16 = packed  # type: ignore[attr-defined]
    n = weight.shape[0]
    x2 = x.reshape(rows, k).contiguous()  # [M, K]
    out = torch.empty(rows, n, dtype=torch.bfloat16, device=x.device)  # [M, N]
    torch.ops._C_cpu.gemm_bf16_packed(out, x2, packed, n)
    if bias is not None:
        out += bias
    return out.view(*x.shape[:-1], n)
