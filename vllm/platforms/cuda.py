"""NVIDIA CUDA platform: `_C` kernels, NCCL, CUDA graphs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from vllm.platforms.interface import Platform, copy_after_event

if TYPE_CHECKING:
    from vllm.config import VllmConfig


class CudaPlatform(Platform):
    name = "cuda"
    device_type = "cuda"
    dispatch_key = "CUDA"
    extensions = ("_C",)
    op_method_order = ("cuda", "native")
    supported_dtypes = (torch.bfloat16, torch.float16, torch.float32)
    default_attention_backend = "cuda"
    async_device_execution = True
    dist_backend = "nccl"
    # `vllm serve` keeps 8,192 tokens per step on every GPU: decodes that share a step with a
    # prompt chunk wait less than with the larger offline budget below.
    serving_max_num_batched_tokens = 8192
    # GPUs with at least this much memory (H100/H200/MI300 class) take 16,384 tokens per offline
    # step: the 8B shape's throughput run gained 1-2% over 8,192 (benchmarks/gpu_throughput.md).
    LARGE_MEMORY_BYTES = 70 * 2**30

    @property
    def default_max_num_batched_tokens(self) -> int:  # type: ignore[override]
        """Per-step token budget for offline runs: 16,384 on large-memory GPUs, else 8,192."""
        return 16384 if self.total_memory() >= self.LARGE_MEMORY_BYTES else 8192

    def total_memory(self) -> int:
        """Bytes of memory of the current device. Unlike `memory_info`, this creates no CUDA
        context (a front-end process that never computes keeps its hands off the GPU)."""
        return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory

    def device(self, local_rank: int = 0) -> torch.device:
        return torch.device("cuda", local_rank)

    def set_device(self, device: torch.device) -> None:
        torch.cuda.set_device(device)

    def synchronize(self) -> None:
        torch.cuda.synchronize()

    def device_count(self) -> int:
        return torch.cuda.device_count()

    def memory_info(self) -> tuple[int, int]:
        return torch.cuda.mem_get_info()

    def device_name(self) -> str:
        return torch.cuda.get_device_name()

    def default_dtype(self, config_dtype: torch.dtype) -> torch.dtype:
        return torch.float16 if config_dtype == torch.float32 else config_dtype

    def supports_graphs(self) -> bool:
        return True

    def copy_to_host_async(self, tensors: list[torch.Tensor]) -> Callable[[], list[torch.Tensor]]:
        return copy_after_event(tensors, torch.cuda.Event())

    def unquantized_gemm(self) -> Callable[..., torch.Tensor] | None:
        """Products of 1-2 rows through `_C::gemv` (see platforms/cuda_gemm.py)."""
        from vllm import _custom_ops as ops

        if not ops.has_op(ops.CUDA, "gemv"):
            return None
        from vllm.platforms.cuda_gemm import cuda_gemm

        return cuda_gemm

    def graph_pool(self) -> Any:
        # One pool per set of graphs (per model runner): a pool whose graphs were all freed
        # must not be captured into again.
        return torch.cuda.graph_pool_handle()

    def new_graph(self, pool: Any) -> _CudaGraph:
        return _CudaGraph(pool)

    def check_and_update_config(self, config: VllmConfig) -> VllmConfig:
        return config

    def versions(self) -> dict[str, str]:
        out = {"torch": torch.__version__, "cuda": str(torch.version.cuda)}
        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            out["compute_capability"] = f"{major}.{minor}"
        return out


class _CudaGraph:
    """A CUDA (or HIP) graph of one forward; replays write into the captured output tensor."""

    def __init__(self, pool: Any) -> None:
        self.graph = torch.cuda.CUDAGraph()
        self.pool = pool

    def capture(self, fn: Any) -> torch.Tensor:
        # One eager run on a side stream first: lazy initialisation (cuBLAS handles and
        # workspaces, kernel loading) must not happen under capture.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            fn()
        torch.cuda.current_stream().wait_stream(side)
        with torch.cuda.graph(self.graph, pool=self.pool):
            out = fn()
        return out

    def replay(self) -> None:
        self.graph.replay()
