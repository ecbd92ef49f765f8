"""Intel GPU (XPU) platform: no extension of ours; intel-extension-for-pytorch ops where installed."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch

from vllm.platforms.interface import Platform, copy_after_event


def ipex_available() -> bool:
    return importlib.util.find_spec("intel_extension_for_pytorch") is not None


class XpuPlatform(Platform):
    name = "xpu"
    device_type = "xpu"
    dispatch_key = "XPU"
    extensions = ()
    op_method_order = ("xpu", "native")
    supported_dtypes = (torch.bfloat16, torch.float16, torch.float32)
    default_attention_backend = "xpu"
    async_device_execution = True
    dist_backend = "xccl"

    def method_available(self, method: str) -> tuple[bool, str]:
        if method == "xpu":
            if ipex_available():
                return True, "intel_extension_for_pytorch importable"
            return False, "intel_extension_for_pytorch not installed"
        return super().method_available(method)

    def device(self, local_rank: int = 0) -> torch.device:
        return torch.device("xpu", local_rank)

    def set_device(self, device: torch.device) -> None:
        torch.xpu.set_device(device)

    def synchronize(self) -> None:
        torch.xpu.synchronize()

    def device_count(self) -> int:
        return torch.xpu.device_count()

    def memory_info(self) -> tuple[int, int]:
        props = torch.xpu.get_device_properties()
        used = torch.xpu.memory_reserved()
        return props.total_memory - used, props.total_memory

    def device_name(self) -> str:
        return torch.xpu.get_device_name()

    def copy_to_host_async(self, tensors: list[torch.Tensor]) -> Callable[[], list[torch.Tensor]]:
        return copy_after_event(tensors, torch.xpu.Event())

    def default_dtype(self, config_dtype: torch.dtype) -> torch.dtype:
        return torch.float16 if config_dtype == torch.float32 else config_dtype
