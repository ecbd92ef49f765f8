"""CUDA backend: the ``_C`` paged attention kernel (prefill chunks and decodes in one launch)."""

from __future__ import annotations

import torch

from vllm import _custom_ops as ops
from vllm.attention.backends._kernel import KernelAttentionBackend


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
