"""Intel GPU backend: IPEX's varlen paged flash attention (same cache layout as ours)."""

from __future__ import annotations

import importlib.util

import torch

from vllm.attention.backends.abstract import AttentionBackend, AttentionMetadata
from vllm.attention.paged_attention import paged_attention_xpu


class XpuAttentionBackend(AttentionBackend):
    name = "xpu"
    method = "xpu"

    @staticmethod
    def default_block_size() -> int:
        return 64

    @staticmethod
    def supported_head_sizes() -> tuple[int, ...]:
        return (64, 80, 96, 128, 256)

    @staticmethod
    def supported_dtypes() -> tuple[torch.dtype, ...]:
        return (torch.float16, torch.bfloat16)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if importlib.util.find_spec("intel_extension_for_pytorch") is None:
            return False, "intel_extension_for_pytorch not installed"
        return True, "intel_extension_for_pytorch importable"

    @classmethod
    def attend(cls, out: torch.Tensor, query: torch.Tensor, kv_cache: torch.Tensor,
               meta: AttentionMetadata, scale: float) -> None:
        paged_attention_xpu(
            out, query, kv_cache[0], kv_cache[1], meta.block_tables, meta.seq_lens,
            meta.query_start_loc, meta.max_query_len, meta.max_seq_len, scale,
        )
