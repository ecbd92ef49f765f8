"""CUDA backend: the Triton tiled kernel for steps with prefill chunks and for large decode
batches; the ``_C`` split-K kernel for decodes of a few (possibly long) sequences. Both are
graph-capturable."""

from __future__ import annotations

import torch

from vllm import _custom_ops as ops
from vllm.attention.backends._kernel import KernelAttentionBackend
from vllm.attention.backends.abstract import AttentionMetadata


class CudaAttentionBackend(KernelAttentionBackend):
    name = "cuda"
    method = "cuda"
    namespace = ops.CUDA

    @staticmethod
    def default_block_size() -> int:
        return 16

    @staticmethod
    def supported_head_sizes() -> tuple[int, ...]:
        return (64, 80, 96, 128, 256)  # instantiated in csrc/cuda/attention_launch.cuh

    @staticmethod
    def decode_context_buckets() -> tuple[int, ...]:
        from vllm.attention.paged_attention import TRITON_SHORT_CONTEXT

        return (TRITON_SHORT_CONTEXT,)

    @staticmethod
    def supported_dtypes() -> tuple[torch.dtype, ...]:
        return (torch.float16, torch.bfloat16, torch.float32)

    @classmethod
    def attend(cls, out: torch.Tensor, query: torch.Tensor, kv_cache: torch.Tensor,
               meta: AttentionMetadata, scale: float) -> None:
        from vllm.attention.paged_attention import paged_attention_cuda

        paged_attention_cuda(out, query, kv_cache[0], kv_cache[1], meta.block_tables,  # strided q ok
                             meta.seq_lens, meta.query_start_loc, meta.max_query_len,
                             meta.max_seq_len, scale)
