"""The ``Attention`` layer every model uses: KV write + paged attention through a backend."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vllm.attention.backends.abstract import AttentionBackend
from vllm.attention.selector import get_attn_backend
from vllm.forward_context import get_forward_context


class Attention(nn.Module):
    """Multi-head / grouped-query attention over the paged KV cache.

    forward(q [T, Hq*D], k [T, Hk*D], v [T, Hk*D]) -> [T, Hq*D]. Under a forward context with
    metadata, the step's K/V are written at ``slot_mapping`` and each query attends causally to
    its sequence's cached context. Without metadata (profiling, standalone model tests) the
    whole batch is one causal sequence and no cache is touched.
    """

    def __init__(self, num_heads: int, head_size: int, scale: float,
                 num_kv_heads: int | None = None, prefix: str = "") -> None:
        super().__init__()
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if num_heads <= 0 or num_kv_heads <= 0 or head_size <= 0:
            raise ValueError(f"{prefix or 'Attention'}: num_heads={num_heads}, "
                             f"num_kv_heads={num_kv_heads}, head_size={head_size} must be > 0")
        if num_heads % num_kv_heads:
            raise ValueError(f"{prefix or 'Attention'}: num_heads={num_heads} must be a multiple "
                             f"of num_kv_heads={num_kv_heads}")
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_size = head_size
        self.scale = float(scale)
        self.prefix = prefix
        self.kv_cache: torch.Tensor = torch.empty(0)  # bound by the runner (bind_kv_cache)
        self._select_backend(torch.get_default_dtype())

    def _select_backend(self, dtype: torch.dtype) -> None:
        self.backend_dtype = dtype
        self.attn_backend: type[AttentionBackend] = get_attn_backend(self.head_size, dtype)

    def bind(self, kv_cache: torch.Tensor) -> None:
        """Attach this layer's cache ``(2, num_blocks, block_size, Hk, D)``."""
        if kv_cache.dim() != 5 or kv_cache.shape[0] != 2 or tuple(kv_cache.shape[3:]) != (
            self.num_kv_heads, self.head_size
        ):
            raise ValueError(
                f"{self.prefix}: kv_cache shape {tuple(kv_cache.shape)} must be "
                f"(2, num_blocks, block_size, {self.num_kv_heads}, {self.head_size})"
            )
        self.kv_cache = kv_cache
        self._select_backend(kv_cache.dtype)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        num_tokens = q.shape[0]
        q = q.view(num_tokens, self.num_heads, self.head_size)  # [T, Hq, D]
        k = k.view(num_tokens, self.num_kv_heads, self.head_size)  # [T, Hk, D]
        v = v.view(num_tokens, self.num_kv_heads, self.head_size)
        meta = get_forward_context().attn_metadata
        if meta is None:
            out = self._causal_no_cache(q, k, v)
        else:
            if self.kv_cache.numel() == 0:
                raise RuntimeError(f"Attention layer {self.prefix!r}: no KV cache bound "
                                   "(call bind_kv_cache before running with attention metadata)")
            if self.kv_cache.dtype != self.backend_dtype:
                self._select_backend(self.kv_cache.dtype)
            out = self.attn_backend.forward(q, k, v, self.kv_cache, meta, self.scale)
        return out.reshape(num_tokens, self.num_heads * self.head_size)

    def _causal_no_cache(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                         ) -> torch.Tensor:
        """The whole batch as one causal sequence, in fp32 like the native backend."""
        group = self.num_heads // self.num_kv_heads
        # 4-D [1, H, T, D]: lets torch pick its fused (flash) kernel instead of T x T scores.
        qf = q.float().transpose(0, 1)[None]  # [1, Hq, T, D]
        kf = k.float().repeat_interleave(group, dim=1).transpose(0, 1)[None]
        vf = v.float().repeat_interleave(group, dim=1).transpose(0, 1)[None]
        out = F.scaled_dot_product_attention(qf, kf, vf, is_causal=True, scale=self.scale)
        return out[0].transpose(0, 1).to(q.dtype)  # [T, Hq, D]

    def extra_repr(self) -> str:
        return (f"num_heads={self.num_heads}, num_kv_heads={self.num_kv_heads}, "
                f"head_size={self.head_size}, scale={self.scale:.4g}, "
                f"backend={self.attn_backend.name}")


def bind_kv_cache(model: nn.Module, kv_caches: list[torch.Tensor]) -> None:
    """Give the model's Attention layers, in module order, one cache each."""
    layers = [m for m in model.modules() if isinstance(m, Attention)]
    if len(layers) != len(kv_caches):
        raise ValueError(f"model has {len(layers)} Attention layers but {len(kv_caches)} "
                         "KV caches were given")
    for layer, cache in zip(layers, kv_caches, strict=True):
        layer.bind(cache)
