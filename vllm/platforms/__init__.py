"""Platform detection. `current_platform` is resolved once, lazily, on first use.

Order: out-of-tree plugins (entry-point group ``vllm.platform_plugins``), then the
``VLLM_PLATFORM`` override, then the built-in probes (CUDA, ROCm, XPU; CPU when none match).
A build for one target never picks another target's GPU by accident: probes for hardware the
build has no kernels for are skipped. Two matches is an error naming both.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import torch

from vllm import envs
from vllm.platforms.interface import Platform

if TYPE_CHECKING:
    current_platform: Platform

PLUGIN_GROUP = "vllm.platform_plugins"
_BUILTIN = {
    "cpu": "vllm.platforms.cpu:CpuPlatform",
    "cuda": "vllm.platforms.cuda:CudaPlatform",
    "rocm": "vllm.platforms.rocm:RocmPlatform",
    "xpu": "vllm.platforms.xpu:XpuPlatform",
}
# Which build targets may run on each GPU platform ("empty" and "auto" may run anywhere).
_COMPATIBLE_TARGETS = {
    "cuda": ("cuda", "empty", "auto"),
    "rocm": ("rocm", "empty", "auto"),
    "xpu": ("xpu", "empty", "auto"),
}


def build_target() -> str:
    """The VLLM_TARGET_DEVICE this install was built for ('auto' for a source tree)."""
    try:
        from vllm._build_info import TARGET_DEVICE

        return TARGET_DEVICE
    except ImportError:
        return "auto"


def _probe_cuda() -> tuple[bool, str]:
    if torch.version.cuda is None:
        return False, "torch has no CUDA support"
    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        return False, f"torch {torch.__version__} has CUDA but no device is visible"
    return True, f"torch CUDA {torch.version.cuda} with {torch.cuda.device_count()} device(s)"


def _probe_rocm() -> tuple[bool, str]:
    if getattr(torch.version, "hip", None) is None:
        return False, "torch has no ROCm support"
    if not torch.cuda.is_available():
        return False, "torch has ROCm but no device is visible"
    return True, f"torch ROCm {torch.version.hip} with {torch.cuda.device_count()} device(s)"


def _probe_xpu() -> tuple[bool, str]:
    xpu = getattr(torch, "xpu", None)
    if xpu is None or not xpu.is_available():
        return False, "no Intel GPU visible to torch"
    return True, f"torch XPU with {xpu.device_count()} device(s)"


# Tests replace entries to fake hardware.
PROBES: dict[str, Callable[[], tuple[bool, str]]] = {
    "cuda": _probe_cuda,
    "rocm": _probe_rocm,
    "xpu": _probe_xpu,
}


def _instantiate(spec: Any) -> Platform:
    if isinstance(spec, Platform):
        return spec
    if isinstance(spec, type) and issubclass(spec, Platform):
        return spec()
    if isinstance(spec, str):
        module, _, attr = spec.replace(":", ".").rpartition(".")
        return _instantiate(getattr(importlib.import_module(module), attr))
    raise TypeError(f"platform plugin returned {spec!r}; expected a Platform or 'module:Class'")


def _plugin_platforms() -> list[tuple[str, Any]]:
    """(plugin name, platform spec) of each installed plugin that reports its hardware present."""
    found = []
    for ep in entry_points(group=PLUGIN_GROUP):
        spec = ep.load()()
        if spec is not None:
            found.append((ep.name, spec))
    return found


def resolve_platform() -> Platform:
    """Run detection now (ignores any cached result)."""
    plugins = _plugin_platforms()
    if len(plugins) > 1:
        names = ", ".join(name for name, _ in plugins)
        raise RuntimeError(f"several platform plugins match this machine: {names}; uninstall one")
    if plugins:
        name, spec = plugins[0]
        try:
            platform = _instantiate(spec)
        except (TypeError, ImportError, AttributeError) as e:
            raise type(e)(f"platform plugin {name!r} ({PLUGIN_GROUP}): {e}") from e
        platform.selection_reason = f"platform plugin {name!r} ({PLUGIN_GROUP})"
        return platform

    forced = envs.VLLM_PLATFORM
    if forced is not None:
        platform = _instantiate(_BUILTIN[forced])
        platform.selection_reason = f"VLLM_PLATFORM={forced}"
        return platform

    target = build_target()
    matches: list[tuple[str, str]] = []
    skipped: list[str] = []
    for name, probe in PROBES.items():
        ok, why = probe()
        if ok and target not in _COMPATIBLE_TARGETS[name]:
            skipped.append(f"{name} ({why}) skipped: this vllm was built for {target}")
        elif ok:
            matches.append((name, why))
    if len(matches) > 1:
        both = "; ".join(f"{n}: {why}" for n, why in matches)
        raise RuntimeError(
            f"more than one platform matches this machine ({both}); set VLLM_PLATFORM to choose"
        )
    if matches:
        name, why = matches[0]
    else:
        name, why = "cpu", "no GPU platform probe matched" + (f"; {'; '.join(skipped)}" if skipped else "")
    platform = _instantiate(_BUILTIN[name])
    platform.selection_reason = why
    return platform


_current: Platform | None = None


def reset_platform() -> None:
    """Forget the cached platform (tests)."""
    global _current
    _current = None


def __getattr__(name: str) -> Any:
    global _current
    if name == "current_platform":
        if _current is None:
            _current = resolve_platform()
        return _current
    raise AttributeError(f"module 'vllm.platforms' has no attribute {name!r}")
