"""The Platform interface: the one place that knows the hardware.

A platform is declarative: its name, torch device type, which compiled extensions it loads,
the CustomOp method order it prefers, its dtypes, attention backend, distributed backend, a
memory query and one config hook. Model and engine code ask it for capabilities; they never
test which hardware they run on.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import torch

if TYPE_CHECKING:
    from vllm.config import VllmConfig


def copy_after_event(tensors: list[torch.Tensor], event: Any) -> Callable[[], list[torch.Tensor]]:
    """Device platforms' ``copy_to_host_async``: non-blocking copies into pinned host memory,
    then ``event`` (a fresh device event) recorded after them; waiting on it does not wait for
    work queued later on the stream."""
    host = [t.to("cpu", non_blocking=True) for t in tensors]
    event.record()

    def wait() -> list[torch.Tensor]:
        event.synchronize()
        return host

    return wait


class Platform:
    """Base class. Subclasses override the class attributes and a few methods."""

    name: ClassVar[str] = "base"
    device_type: ClassVar[str] = "cpu"
    dispatch_key: ClassVar[str] = "CPU"
    # Compiled extension modules (under the `vllm` package) this platform loads.
    extensions: ClassVar[tuple[str, ...]] = ()
    # CustomOp methods in order of preference, without the "forward_" prefix.
    op_method_order: ClassVar[tuple[str, ...]] = ("native",)
    supported_dtypes: ClassVar[tuple[torch.dtype, ...]] = (torch.float32,)
    default_attention_backend: ClassVar[str] = "native"
    dist_backend: ClassVar[str] = "gloo"
    # True where the KV cache lives in host RAM (sized from RAM, not by profiling device memory).
    kv_cache_in_host_memory: ClassVar[bool] = False
    # Per-step token budget when the scheduler config leaves it unset.
    default_max_num_batched_tokens: ClassVar[int] = 8192
    # True where kernels run asynchronously to the host (GPUs): the engine core then launches
    # step N+1 before handing back step N's outputs, so output processing overlaps the device.
    # False where the forward runs on the host's own cores (that would only delay outputs).
    async_device_execution: ClassVar[bool] = False
    # Per-step token budget for `vllm serve` when the flag leaves it unset (None: as offline).
    serving_max_num_batched_tokens: ClassVar[int | None] = None
    # Why this platform was chosen (filled by detection, shown by `vllm collect-env`).
    selection_reason: str = ""

    # ---- extensions -------------------------------------------------------------------
    @cached_property
    def loaded_extensions(self) -> dict[str, str | None]:
        """Extension name -> None if loaded, else the import error text."""
        from vllm import _custom_ops

        status: dict[str, str | None] = {}
        for ext in self.extensions:
            if _custom_ops.loaded(ext):
                status[ext] = None
                continue
            built = _custom_ops.built_extensions()
            if built is not None and ext not in built:
                status[ext] = f"not part of this build (built extensions: {list(built) or 'none'})"
                continue
            try:  # not loadable: find out why, for collect-env and dispatch reasons
                importlib.import_module(f"vllm.{ext}")
                status[ext] = None
            except ImportError as e:  # not built, or built for another target
                status[ext] = str(e)
        return status

    def has_extension(self, ext: str) -> bool:
        return self.loaded_extensions.get(ext, "not an extension of this platform") is None

    def kernel_namespace(self, method: str) -> str | None:
        """torch.ops namespace whose kernels `forward_<method>` calls (None: no extension)."""
        return {"cuda": "_C", "hip": "_C", "cpu": "_C_cpu"}.get(method)

    def method_available(self, method: str) -> tuple[bool, str]:
        """Whether `forward_<method>` can run here, and why (or why not)."""
        if method == "native":
            return True, "reference PyTorch implementation"
        ns = self.kernel_namespace(method)
        if ns is None or ns not in self.extensions:
            return False, f"no kernels for forward_{method} on {self.name}"
        if not self.has_extension(ns):
            return False, f"vllm.{ns} not loaded: {self.loaded_extensions.get(ns)}"
        return True, f"vllm.{ns} loaded"

    # ---- device -----------------------------------------------------------------------
    def device(self, local_rank: int = 0) -> torch.device:
        return torch.device(self.device_type)

    def set_device(self, device: torch.device) -> None:
        """Make `device` current for this process (no-op where devices are not indexed)."""

    def synchronize(self) -> None:
        """Wait for queued device work (no-op on CPU)."""

    def device_count(self) -> int:
        """How many ranks of one host this platform can place on distinct devices (CPU ranks
        are processes sharing the host's cores: one per core)."""
        return max(1, os.cpu_count() or 1)

    def memory_info(self) -> tuple[int, int]:
        """(free bytes, total bytes) of the memory the KV cache is carved from."""
        raise NotImplementedError

    def device_name(self) -> str:
        return self.name

    def kv_cache_bytes(self) -> int:
        """Host-memory platforms: bytes given to the KV cache (others profile device memory)."""
        raise NotImplementedError(f"{self.name} sizes its KV cache by profiling device memory")

    def default_dtype(self, config_dtype: torch.dtype) -> torch.dtype:
        """The dtype `--dtype auto` resolves to, given the checkpoint's torch_dtype."""
        return config_dtype if config_dtype in self.supported_dtypes else torch.float32

    def supports_graphs(self) -> bool:
        """Whether decode steps can be captured as device graphs (CUDA graphs)."""
        return False

    def engine_step_hook(self) -> Any:
        """A callable the serving engine core runs between steps (platform housekeeping such as
        adapting the CPU thread count), or None."""
        return None

    def unquantized_gemm(self) -> Any:
        """This platform's default for unquantized linear layers, ``(x, weight, bias) -> y``,
        or None for torch's ``F.linear`` (see model_executor/layers/utils.py)."""
        return None

    def copy_to_host_async(self, tensors: list[torch.Tensor]) -> Callable[[], list[torch.Tensor]]:
        """Start copying device tensors to the host; the returned callable waits for this copy
        alone (not for work queued after it) and returns the host tensors. Here the device is
        synchronous with the host, so the copy happens when it is called."""
        return lambda: [t.cpu() for t in tensors]

    def graph_pool(self) -> Any:
        """A fresh memory pool for one set of device graphs (None where graphs need none)."""
        return None

    def new_graph(self, pool: Any) -> Any:
        """A fresh device graph (``vllm.worker.graph_runner.DeviceGraph``: ``capture(fn)``
        returns fn's output tensor, ``replay()`` re-runs the recording into it) allocating from
        ``pool``. Only platforms whose ``supports_graphs()`` is True."""
        raise NotImplementedError(f"platform {self.name} has no device graphs")

    def check_and_update_config(self, config: VllmConfig) -> VllmConfig:
        """Return the config with this platform's defaults filled in."""
        return config

    def versions(self) -> dict[str, str]:
        """Runtime versions worth reporting (torch, CUDA, ROCm, ...)."""
        return {"torch": torch.__version__}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class UnspecifiedPlatform(Platform):
    name = "unspecified"
