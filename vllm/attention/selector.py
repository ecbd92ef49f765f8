"""Pick the attention backend: the platform's default, else ``native`` (with the reason logged)."""

from __future__ import annotations

import functools
import importlib

import torch

from vllm.attention.backends.abstract import AttentionBackend
from vllm.logger import init_logger

logger = init_logger(__name__)

BACKENDS: dict[str, str] = {
    "native": "vllm.attention.backends.native:NativeAttentionBackend",
    "cpu": "vllm.attention.backends.cpu:CpuAttentionBackend",
    "cuda": "vllm.attention.backends.cuda:CudaAttentionBackend",
    "rocm": "vllm.attention.backends.rocm:RocmAttentionBackend",
    "xpu": "vllm.attention.backends.xpu:XpuAttentionBackend",
}


def load_backend(name: str) -> type[AttentionBackend]:
    """The backend class registered under ``name``."""
    if name not in BACKENDS:
        raise ValueError(f"attention backend {name!r} is unknown; one of {sorted(BACKENDS)}")
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def _why_not(backend: type[AttentionBackend], head_size: int, dtype: torch.dtype) -> str | None:
    """None if ``backend`` can serve this layer here, else the reason it cannot."""
    from vllm.attention.paged_attention import PagedAttention

    if backend.name == "native":
        return None
    dispatch = PagedAttention.resolve()
    if dispatch.reason == "disabled by custom_ops":
        return "paged_attention disabled by custom_ops"
    ok, why = backend.available()
    if not ok:
        return why
    ok, why = backend.supports(head_size, dtype)
    return None if ok else why


@functools.cache
def _select(platform_backend: str, head_size: int, dtype: torch.dtype
            ) -> tuple[type[AttentionBackend], str]:
    backend = load_backend(platform_backend)
    why = _why_not(backend, head_size, dtype)
    if why is None:
        return backend, f"{backend.name}: platform default"
    logger.info("attention backend %s unusable for head_size=%d dtype=%s (%s); using native",
                backend.name, head_size, dtype, why)
    return load_backend("native"), f"native: {backend.name} unusable ({why})"


def get_attn_backend(head_size: int, dtype: torch.dtype) -> type[AttentionBackend]:
    """The platform's default attention backend, or ``native`` where that cannot serve."""
    from vllm.platforms import current_platform

    return _select(current_platform.default_attention_backend, head_size, dtype)[0]


def explain_backend(head_size: int, dtype: torch.dtype) -> str:
    """Which backend ``get_attn_backend`` picks for this layer shape, and why."""
    from vllm.platforms import current_platform

    return _select(current_platform.default_attention_backend, head_size, dtype)[1]


def clear_cache() -> None:
    """Forget earlier selections (tests that change platform or custom_ops)."""
    _select.cache_clear()


def describe_backend() -> str:
    """One line for ``vllm collect-env``: the platform default and whether it is usable."""
    from vllm.platforms import current_platform

    name = current_platform.default_attention_backend
    try:
        backend = load_backend(name)
    except (ValueError, ImportError) as e:
        return f"{name} (cannot load: {e}); falls back to native"
    ok, why = backend.available()
    sizes = backend.supported_head_sizes() or "any"
    if not ok:
        return f"{name} unavailable ({why}); falls back to native"
    return f"{name} ({why}; head sizes {sizes}; block size {backend.default_block_size()})"
