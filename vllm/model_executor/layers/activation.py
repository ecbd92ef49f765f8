"""Gated activations (SiLU/GELU and-mul) and the plain GELU variants."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vllm import _custom_ops as ops
from vllm.model_executor.custom_op import CustomOp


def _gated_out(x: torch.Tensor) -> torch.Tensor:
    d = x.shape[-1] // 2
    return torch.empty(x.shape[:-1] + (d,), dtype=x.dtype, device=x.device)


@CustomOp.register("silu_and_mul")
class SiluAndMul(CustomOp):
    """[..., 2d] -> [..., d]: silu(x[..., :d]) * x[..., d:]."""

    def forward_native(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1] // 2
        return F.silu(x[..., :d]) * x[..., d:]

    def forward_cpu(self, x: torch.Tensor) -> torch.Tensor:
        out = _gated_out(x)
        ops.silu_and_mul(out, x, ns=ops.CPU)
        return out

    def forward_cuda(self, x: torch.Tensor) -> torch.Tensor:
        out = _gated_out(x)
        ops.silu_and_mul(out, x, ns=ops.CUDA)
        return out

    forward_hip = forward_cuda

    def forward_xpu(self, x: torch.Tensor) -> torch.Tensor:
        import intel_extension_for_pytorch as ipex

        out = _gated_out(x)
        ipex.llm.functional.silu_and_mul(x, out)
        return out


@CustomOp.register("gelu_and_mul")
class GeluAndMul(CustomOp):
    """[..., 2d] -> [..., d]: gelu(x[..., :d]) * x[..., d:], exact ('none') or 'tanh'."""

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GeluAndMul approximate={approximate!r}; expected 'none' or 'tanh'")
        self.approximate = approximate
        super().__init__()

    def forward_native(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1] // 2
        return F.gelu(x[..., :d], approximate=self.approximate) * x[..., d:]

    def forward_cpu(self, x: torch.Tensor) -> torch.Tensor:
        out = _gated_out(x)
        ops.gelu_and_mul(out, x, self.approximate, ns=ops.CPU)
        return out

    def forward_cuda(self, x: torch.Tensor) -> torch.Tensor:
        out = _gated_out(x)
        ops.gelu_and_mul(out, x, self.approximate, ns=ops.CUDA)
        return out

    forward_hip = forward_cuda

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class NewGELU(torch.nn.Module):
    """GPT-2's gelu_new: the tanh approximation (torch's fused op is exact to it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


class QuickGELU(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def get_act_fn(name: str) -> torch.nn.Module:
    """HF ``hidden_act`` name -> module (ungated)."""
    table = {
        "gelu": lambda: torch.nn.GELU(),
        "gelu_new": NewGELU,
        "gelu_pytorch_tanh": NewGELU,
        "gelu_fast": NewGELU,
        "quick_gelu": QuickGELU,
        "relu": lambda: torch.nn.ReLU(),
        "silu": lambda: torch.nn.SiLU(),
    }
    if name not in table:
        raise ValueError(f"activation {name!r} is not supported; supported: {sorted(table)}")
    return table[name]()


def get_gated_act_fn(name: str) -> CustomOp:
    """HF ``hidden_act`` of a gated MLP -> fused and-mul CustomOp."""
    if name in ("silu", "swish"):
        return SiluAndMul()
    if name == "gelu":
        return GeluAndMul("none")
    if name in ("gelu_pytorch_tanh", "gelu_new", "gelu_fast"):
        return GeluAndMul("tanh")
    raise ValueError(f"gated activation {name!r} is not supported; supported: silu, gelu, gelu_pytorch_tanh")


