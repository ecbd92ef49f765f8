"""CUDA backend: the Triton tiled kernel for steps with prefill chunks and for large decode
batches; the ``_C`` split-K kernel for decodes of a few (possibly long) sequences. Both are
graph-capturable."""

from __future__ import annotations

import functools

import torch

from vllm import _custom_ops as ops
from vllm.attention.backends._kernel import KernelAttentionBackend
from vllm.attention.backends.abstract import AttentionMetadata
from vllm.attention.ops import triton_paged_attention as triton_attn


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
    def supported_dtypes() -> tuple[torch.dtype, ...]:
        return (torch.float16, torch.bfloat16, torch.float32)

    @classmethod
    def use_triton(cls, meta: AttentionMetadata, num_kv_heads: int, device: torch.device) -> bool:
        """Prefill chunks: Triton (query tiles share K/V pages, tensor cores). Decodes: Triton
        when (sequence, kv head) programs fill the GPU twice over (it streams 64-key tiles,
        beating the per-token `_C` kernel on short contexts); else the `_C` kernel, whose
        split-K spreads a few long contexts over every SM. Depends on shapes only, so a graph
        captured for a batch size keeps its kernel."""
        if not triton_attn.available():
            return False
        if meta.max_query_len > 1:
            return True
        return meta.num_seqs * num_kv_heads >= 2 * _sm_count(device)

    @classmethod
    def attend(cls, out: torch.Tensor, query: torch.Tensor, kv_cache: torch.Tensor,
               meta: AttentionMetadata, scale: float) -> None:
        if cls.use_triton(meta, kv_cache.shape[3], query.device):
            triton_attn.triton_paged_attention(
                out, query, kv_cache[0], kv_cache[1], meta.block_tables, meta.seq_lens,
                meta.query_start_loc, meta.max_query_len, meta.max_seq_len, scale,
            )
            return
        super().attend(out, query, kv_cache, meta, scale)


@functools.cache
def _sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count
