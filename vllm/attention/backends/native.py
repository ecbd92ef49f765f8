"""Reference backend: gathers pages per sequence and runs masked SDPA in fp32. Any device."""

from __future__ import annotations

import torch

from vllm.attention.backends.abstract import AttentionBackend, AttentionMetadata
from vllm.attention.paged_attention import paged_attention_native


class NativeAttentionBackend(AttentionBackend):
    name = "native"
    method = "native"

    @staticmethod
    def supported_head_sizes() -> tuple[int, ...]:
        return ()  # any

    @classmethod
    def attend(cls, out: torch.Tensor, query: torch.Tensor, kv_cache: torch.Tensor,
               meta: AttentionMetadata, scale: float) -> None:
        paged_attention_native(
            out, query, kv_cache[0], kv_cache[1], meta.block_tables, meta.seq_lens,
            meta.query_start_loc, meta.max_query_len, meta.max_seq_len, scale,
        )
