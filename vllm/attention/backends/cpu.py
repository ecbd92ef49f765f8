"""CPU backend: the ``_C_cpu`` paged attention kernel (vectorized, OpenMP)."""

from __future__ import annotations

import functools

import torch

from vllm import _custom_ops as ops
from vllm.attention.backends._kernel import KernelAttentionBackend
from vllm.attention.backends.abstract import AttentionMetadata


class CpuAttentionBackend(KernelAttentionBackend):
    name = "cpu"
    method = "cpu"
    namespace = ops.CPU

    @staticmethod
    def default_block_size() -> int:
        return 16

    @staticmethod
    def supported_head_sizes() -> tuple[int, ...]:
        return ()  # the kernel is generic in the head size

    @staticmethod
    def supported_dtypes() -> tuple[torch.dtype, ...]:
        return (torch.float32, torch.bfloat16, torch.float16)

    @staticmethod
    @functools.cache
    def _direct_kv_write() -> bool:
        """Whether the KV write resolves to the ``_C_cpu`` kernel (not disabled by custom_ops);
        fixed for the process, like the process-wide ``reshape_and_cache_op()`` it asks."""
        from vllm.attention.paged_attention import reshape_and_cache_op

        return reshape_and_cache_op().dispatch.method == "cpu"

    @classmethod
    def write_kv(cls, key: torch.Tensor, value: torch.Tensor, kv_cache: torch.Tensor,
                 slot_mapping: torch.Tensor) -> None:
        """Straight to the ``_C_cpu`` kernel (it takes strided key/value rows), skipping the
        CustomOp call, unless custom_ops routed the KV write elsewhere."""
        if not cls._direct_kv_write():
            super().write_kv(key, value, kv_cache, slot_mapping)
            return
        torch.ops._C_cpu.reshape_and_cache(key, value, kv_cache[0], kv_cache[1], slot_mapping)

    @classmethod
    def attend(cls, out: torch.Tensor, query: torch.Tensor, kv_cache: torch.Tensor,
               meta: AttentionMetadata, scale: float) -> None:
        ops.paged_attention(  # the kernel takes strided query rows: no contiguous copy
            out, query, kv_cache[0], kv_cache[1], meta.block_tables, meta.seq_lens,
            meta.query_start_loc, meta.max_query_len, meta.max_seq_len, scale, ns=cls.namespace,
        )
