"""CPU platform: `_C_cpu` kernels (AVX2 baseline, AVX-512 where present), gloo, RAM-backed KV."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from vllm import envs
from vllm.platforms.interface import Platform

if TYPE_CHECKING:
    from vllm.config import VllmConfig

_GIB = 1 << 30


def cpu_flags() -> set[str]:
    """Feature flags of this CPU as the kernel reports them (e.g. {'avx2', 'avx512f'})."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_isa() -> str:
    """Best vector ISA the running CPU has that our kernels use: avx512_bf16|avx512|avx2|scalar."""
    flags = cpu_flags()
    if {"avx512f", "avx512bw", "avx512vl", "avx512_bf16"} <= flags:
        return "avx512_bf16"
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "scalar"


class CpuPlatform(Platform):
    name = "cpu"
    device_type = "cpu"
    dispatch_key = "CPU"
    extensions = ("_C_cpu",)
    op_method_order = ("cpu", "native")
    supported_dtypes = (torch.float32, torch.bfloat16, torch.float16)
    default_attention_backend = "cpu"
    dist_backend = "gloo"
    kv_cache_in_host_memory = True
    default_max_num_batched_tokens = 4096
    # `vllm serve` default (offline keeps 4096): one step's prefill stalls every running
    # stream, and on 2-4 cores a 4096-token step takes seconds. 2048 still takes a burst of 16
    # 128-token prompts in one step (GEMMs are most efficient at large M); smaller budgets
    # (512) lowered mean TTFT but not p99 and raised p99 ITL (benchmarks/cpu_serve.md).
    serving_max_num_batched_tokens = 2048

    def memory_info(self) -> tuple[int, int]:
        total = free = 0
        with open("/proc/meminfo") as f:
            for line in f:
                key, value = line.split(":", 1)
                if key == "MemTotal":
                    total = int(value.split()[0]) * 1024
                elif key == "MemAvailable":
                    free = int(value.split()[0]) * 1024
        return free, total

    def device_name(self) -> str:
        return f"cpu ({os.cpu_count()} cores, {cpu_isa()})"

    def default_dtype(self, config_dtype: torch.dtype) -> torch.dtype:
        # Without native bf16 dot products (AVX2, or AVX-512 without the bf16 extension),
        # reduced precision is emulated and several times slower than fp32.
        if cpu_isa() == "avx512_bf16" and config_dtype == torch.bfloat16:
            return torch.bfloat16
        return torch.float32

    def unquantized_gemm(self) -> Callable[..., torch.Tensor] | None:
        """Few-row bf16 GEMMs through `_C_cpu`'s packed-weight kernel where the CPU has
        avx512_bf16 (oneDNN streams decode-sized weights at a third of memory speed here)."""
        from vllm import _custom_ops as ops

        if cpu_isa() != "avx512_bf16" or not ops.has_op(ops.CPU, "gemm_bf16_packed"):
            return None
        from vllm.platforms.cpu_gemm import cpu_gemm

        return cpu_gemm

    def kv_cache_bytes(self) -> int:
        """RAM given to the KV cache: VLLM_CPU_KVCACHE_SPACE GiB, else a quarter of free RAM."""
        space = envs.VLLM_CPU_KVCACHE_SPACE
        if space is not None:
            if space <= 0:
                raise ValueError(f"VLLM_CPU_KVCACHE_SPACE={space} must be > 0 (GiB)")
            return int(space * _GIB)
        free, _ = self.memory_info()
        return max(free // 4, _GIB // 4)

    def check_and_update_config(self, config: VllmConfig) -> VllmConfig:
        from vllm.platforms.cpu_threads import bind_threads

        bind_threads(envs.VLLM_CPU_OMP_THREADS_BIND, envs.VLLM_CPU_NUM_THREADS)
        return config

    def engine_step_hook(self) -> Callable[[], object] | None:
        """Housekeeping a serving engine core runs between steps: the contention governor
        (``cpu_threads.ContentionGovernor``), when the threads were bound automatically and
        the user fixed neither the cores nor their number."""
        from vllm.platforms.cpu_threads import ContentionGovernor, bound_cores

        cores = bound_cores()
        if (len(cores) < 2 or envs.VLLM_CPU_OMP_THREADS_BIND != "auto"
                or envs.VLLM_CPU_NUM_THREADS is not None):
            return None
        return ContentionGovernor(cores, own_pids=(os.getppid(),)).tick

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__, "cpu_isa": cpu_isa()}
