"""CPU backend: the ``_C_cpu`` paged attention kernel (vectorized, OpenMP)."""

from __future__ import annotations

import torch

from vllm import _custom_ops as ops
from vllm.attention.backends._kernel import KernelAttentionBackend


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
