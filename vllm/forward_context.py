"""Per-step state the model's layers read without it being threaded through every call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vllm.attention.backends.abstract import AttentionMetadata


@dataclass
class ForwardContext:
    # None: no paged KV cache (profiling runs, standalone model tests): each Attention layer
    # treats the whole batch as one causal sequence.
    attn_metadata: AttentionMetadata | None = None


_EMPTY = ForwardContext()
_current: ForwardContext = _EMPTY


@contextmanager
def set_forward_context(attn_metadata: AttentionMetadata | None) -> Iterator[None]:
    """Make ``attn_metadata`` visible to every Attention layer for the duration of a forward."""
    global _current
    prev = _current
    _current = ForwardContext(attn_metadata=attn_metadata)
    try:
        yield
    finally:
        _current = prev


def get_forward_context() -> ForwardContext:
    """The innermost active context (``attn_metadata`` is None when none is set)."""
    return _current
