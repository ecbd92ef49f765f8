"""RMSNorm (with optional fused residual add) and LayerNorm."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vllm import _custom_ops as ops
from vllm.model_executor.custom_op import CustomOp


@CustomOp.register("rms_norm")
class RMSNorm(CustomOp):
    """y = x / sqrt(mean(x^2) + eps) * weight; with ``residual``: returns (y, x + residual)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size, dtype=dtype))

    def forward_native(
        self, x: torch.Tensor, residual: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        orig_dtype = x.dtype
        xf = x.float()
        if residual is not None:
            xf = xf + residual.float()
            residual = xf.to(orig_dtype)
        var = xf.pow(2).mean(dim=-1, keepdim=True)
        y = (xf * torch.rsqrt(var + self.eps)).to(orig_dtype) * self.weight
        return y if residual is None else (y, residual)

    def _forward_kernel(
        self, x: torch.Tensor, residual: torch.Tensor | None, ns: str
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if residual is not None:
            # The kernel works in place: x <- norm(x + residual), residual <- x + residual.
            x = x.contiguous()
            ops.fused_add_rms_norm(x, residual, self.weight, self.eps, ns=ns)
            return x, residual
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        ops.rms_norm(out, x, self.weight, self.eps, ns=ns)
        return out

    def forward_cpu(self, x, residual=None):  # type: ignore[no-untyped-def]
        return self._forward_kernel(x, residual, ops.CPU)

    def forward_cuda(self, x, residual=None):  # type: ignore[no-untyped-def]
        return self._forward_kernel(x, residual, ops.CUDA)

    def forward_hip(self, x, residual=None):  # type: ignore[no-untyped-def]
        return self._forward_kernel(x, residual, ops.CUDA)

    def forward_xpu(self, x, residual=None):  # type: ignore[no-untyped-def]
        from intel_extension_for_pytorch.llm.functional import fused_add_rms_norm, rms_norm

        if residual is not None:
            out = fused_add_rms_norm(x, residual, self.weight, None, self.eps, True)
            return out, residual
        return rms_norm(x, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, eps={self.eps}"


@CustomOp.register("layer_norm")
class LayerNorm(CustomOp):
    """Standard LayerNorm with bias (GPT-2). torch's fused kernel is the fast path everywhere."""

    def __init__(self, hidden_size: int, eps: float = 1e-5, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(hidden_size, dtype=dtype))

    def forward_native(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (self.hidden_size,), self.weight, self.bias, self.eps)
