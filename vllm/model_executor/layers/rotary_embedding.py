"""Rotary position embedding (neox and gptj styles; linear, dynamic-NTK and llama3 scaling)."""

from __future__ import annotations

import math
from typing import Any

import torch

from vllm import _custom_ops as ops
from vllm.model_executor.custom_op import CustomOp


def _inv_freq(rotary_dim: int, base: float) -> torch.Tensor:
    return 1.0 / (base ** (torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim))


def _llama3_inv_freq(inv_freq: torch.Tensor, scaling: dict[str, Any]) -> torch.Tensor:
    factor = float(scaling["factor"])
    low = float(scaling.get("low_freq_factor", 1.0))
    high = float(scaling.get("high_freq_factor", 4.0))
    orig = float(scaling["original_max_position_embeddings"])
    low_wavelen, high_wavelen = orig / low, orig / high
    wavelen = 2 * math.pi / inv_freq
    smooth = (orig / wavelen - low) / (high - low)
    scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    mid = (1 - smooth) * inv_freq / factor + smooth * inv_freq
    is_mid = (wavelen <= low_wavelen) & (wavelen >= high_wavelen)
    return torch.where(is_mid, mid, scaled)


def build_cos_sin_cache(
    rotary_dim: int, max_position: int, base: float, scaling: dict[str, Any] | None
) -> torch.Tensor:
    """[max_position, rotary_dim] float32: cos in the first half of each row, sin in the second."""
    kind = (scaling or {}).get("rope_type") or (scaling or {}).get("type") or "default"
    inv_freq = _inv_freq(rotary_dim, base)
    t = torch.arange(max_position, dtype=torch.float64)
    if kind == "linear":
        t = t / float(scaling["factor"])  # type: ignore[index]
    elif kind == "dynamic":
        factor = float(scaling["factor"])  # type: ignore[index]
        orig = int(scaling.get("original_max_position_embeddings", max_position))  # type: ignore[union-attr]
        seq = max(max_position, orig)
        new_base = base * ((factor * seq / orig) - (factor - 1)) ** (rotary_dim / (rotary_dim - 2))
        inv_freq = _inv_freq(rotary_dim, new_base) if seq > orig else inv_freq
    elif kind == "llama3":
        inv_freq = _llama3_inv_freq(inv_freq, scaling)  # type: ignore[arg-type]
    elif kind != "default":
        raise ValueError(f"rope_scaling type {kind!r} is not supported; supported: linear, dynamic, llama3")
    freqs = torch.outer(t, inv_freq)  # [max_position, rotary_dim / 2]
    return torch.cat([freqs.cos(), freqs.sin()], dim=-1).float()


@CustomOp.register("rotary_embedding")
class RotaryEmbedding(CustomOp):
    """Rotates the first ``rotary_dim`` dims of each head of query and key by position."""

    def __init__(
        self,
        head_size: int,
        rotary_dim: int,
        max_position: int,
        base: float,
        is_neox_style: bool = True,
        rope_scaling: dict[str, Any] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if rotary_dim > head_size or rotary_dim % 2:
            raise ValueError(f"rotary_dim={rotary_dim} must be even and <= head_size={head_size}")
        self.head_size = head_size
        self.rotary_dim = rotary_dim
        self.is_neox_style = is_neox_style
        cache = build_cos_sin_cache(rotary_dim, max_position, base, rope_scaling).to(dtype)
        self.register_buffer("cos_sin_cache", cache, persistent=False)

    def _rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        # x: [T, H, rotary_dim]; cos/sin: [T, 1, rotary_dim / 2]
        if self.is_neox_style:
            x1, x2 = x.chunk(2, dim=-1)
        else:
            x1, x2 = x[..., ::2], x[..., 1::2]
        o1 = x1 * cos - x2 * sin
        o2 = x2 * cos + x1 * sin
        if self.is_neox_style:
            return torch.cat((o1, o2), dim=-1)
        return torch.stack((o1, o2), dim=-1).flatten(-2)

    def _rotate_heads(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(shape[0], -1, self.head_size)  # [T, H, D]
        rot = self._rotate(x[..., : self.rotary_dim].float(), cos, sin).to(x.dtype)
        return torch.cat((rot, x[..., self.rotary_dim :]), dim=-1).reshape(shape)

    def forward_native(
        self, positions: torch.Tensor, query: torch.Tensor, key: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        cos_sin = self.cos_sin_cache.index_select(0, positions.flatten()).float()
        cos, sin = cos_sin.unsqueeze(1).chunk(2, dim=-1)  # [T, 1, rotary_dim / 2]
        q = self._rotate_heads(query, cos, sin)
        k = self._rotate_heads(key, cos, sin) if key is not None else None
        return q, k

    def _forward_kernel(self, positions, query, key, ns):  # type: ignore[no-untyped-def]
        ops.rotary_embedding(
            positions, query, key, self.head_size, self.cos_sin_cache, self.is_neox_style, ns=ns
        )
        return query, key

    def forward_cpu(self, positions, query, key=None):  # type: ignore[no-untyped-def]
        return self._forward_kernel(positions, query, key, ops.CPU)

    def forward_cuda(self, positions, query, key=None):  # type: ignore[no-untyped-def]
        return self._forward_kernel(positions, query, key, ops.CUDA)

    def forward_hip(self, positions, query, key=None):  # type: ignore[no-untyped-def]
        return self._forward_kernel(positions, query, key, ops.CUDA)

    def forward_xpu(self, positions, query, key=None):  # type: ignore[no-untyped-def]
        import intel_extension_for_pytorch as ipex

        query = query.contiguous()  # IPEX's row-stride support is unverified; copy strided views
        key = key.contiguous() if key is not None else None
        ipex.llm.functional.rotary_embedding(
            query, key, self.cos_sin_cache.chunk(2, dim=-1)[1], self.cos_sin_cache.chunk(2, dim=-1)[0],
            self.rotary_dim, self.is_neox_style, positions,
        )
        return query, key

    def extra_repr(self) -> str:
        return f"head_size={self.head_size}, rotary_dim={self.rotary_dim}, neox={self.is_neox_style}"


def get_rope(
    head_size: int,
    rotary_dim: int,
    max_position: int,
    base: float,
    is_neox_style: bool = True,
    rope_scaling: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> RotaryEmbedding:
    return RotaryEmbedding(head_size, rotary_dim, max_position, base, is_neox_style, rope_scaling, dtype)
