"""Shared body of the backends that call our compiled ``paged_attention`` kernel."""

from __future__ import annotations

import torch

from vllm import _custom_ops as ops
from vllm.attention.backends.abstract import AttentionBackend, AttentionMetadata


class KernelAttentionBackend(AttentionBackend):
    """Calls ``torch.ops.<namespace>.paged_attention`` (schema in ``vllm/_custom_ops.py``)."""

    namespace: str = ops.CUDA

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not ops.loaded(cls.namespace):
            return False, f"vllm.{cls.namespace} is not built/loadable"
        if not ops.has_op(cls.namespace, "paged_attention"):
            return False, f"vllm.{cls.namespace} has no paged_attention op"
        return True, f"vllm.{cls.namespace} loaded"

    @classmethod
    def attend(cls, out: torch.Tensor, query: torch.Tensor, kv_cache: torch.Tensor,
               meta: AttentionMetadata, scale: float) -> None:
        ops.paged_attention(
            out, query.contiguous(), kv_cache[0], kv_cache[1], meta.block_tables, meta.seq_lens,
            meta.query_start_loc, meta.max_query_len, meta.max_seq_len, scale,
            ns=cls.namespace,
        )
