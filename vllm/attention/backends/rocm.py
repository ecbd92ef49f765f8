"""ROCm backend: the same ``_C`` paged attention op, from the hipified CUDA sources."""

from __future__ import annotations

from vllm.attention.backends.cuda import CudaAttentionBackend


class RocmAttentionBackend(CudaAttentionBackend):
    name = "rocm"
    method = "hip"
