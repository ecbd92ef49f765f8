"""Hidden states -> float32 logits over the full (unpadded) vocabulary (the lm_head's dtype
inside ``reuse_logits_buffer(keep_dtype=True)``, for a greedy-only sampler)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn as nn

from vllm.distributed.parallel_state import tp_all_gather
from vllm.model_executor.layers.vocab_embedding import ParallelLMHead

_reuse_output = False  # set inside ``reuse_logits_buffer()``
_keep_dtype = False  # set by ``reuse_logits_buffer(keep_dtype=True)``


@contextlib.contextmanager
def reuse_logits_buffer(keep_dtype: bool = False) -> Iterator[None]:
    """Inside this block, logits land in a buffer each LogitsProcessor keeps between calls.

    The sampler's [N, vocab] fp32 logits are tens of MB for large vocabularies; a fresh tensor
    each step is fresh pages on the host (first-touch page faults, the allocator returning the
    memory to the OS and taking it back) or an allocation on a device. The returned tensor is
    only valid until the next call of the same processor inside such a block: the caller (the
    model runner's sampling step) consumes it before that.

    ``keep_dtype``: the caller only takes an argmax (plain greedy rows), so logits that need no
    scaling or soft cap stay in the lm_head's dtype: no fp32 copy at all (at batch 256 and a
    128k vocabulary that copy moves ~200 MB per step)."""
    global _reuse_output, _keep_dtype
    prev, _reuse_output = _reuse_output, True
    prev_keep, _keep_dtype = _keep_dtype, keep_dtype
    try:
        yield
    finally:
        _reuse_output = prev
        _keep_dtype = prev_keep


class LogitsProcessor(nn.Module):
    """logits = soft_cap(scale * (hidden @ lm_head.T + b)) gathered across ranks, float32."""

    def __init__(self, vocab_size: int, scale: float = 1.0, soft_cap: float | None = None) -> None:
        super().__init__()
        if soft_cap is not None and soft_cap <= 0:
            raise ValueError(f"logits soft_cap={soft_cap} must be > 0")
        self.vocab_size = vocab_size
        self.scale = scale
        self.soft_cap = soft_cap
        self._buffer: torch.Tensor | None = None  # fp32 [rows, vocab], grown on demand

    def _out_buffer(self, like: torch.Tensor) -> torch.Tensor:
        rows = like.shape[0]
        buf = self._buffer
        if buf is None or buf.shape[0] < rows or buf.device != like.device:
            buf = torch.empty(max(rows, 1), self.vocab_size, dtype=torch.float32, device=like.device)
            self._buffer = buf
        return buf[:rows]  # [N, vocab], contiguous

    def forward(self, lm_head: ParallelLMHead, hidden: torch.Tensor) -> torch.Tensor:
        # hidden [N, H] -> local [N, vocab_per_rank] -> full [N, padded vocab] -> [N, vocab]
        local = lm_head.gemm(hidden, lm_head.weight, lm_head.bias)
        gathered = tp_all_gather(local, dim=-1)[..., : self.vocab_size]
        if _keep_dtype and self.scale == 1.0 and self.soft_cap is None:
            return gathered  # [N, vocab] in the lm_head's dtype (see reuse_logits_buffer)
        if _reuse_output and gathered.dim() == 2 and gathered.dtype != torch.float32:
            logits = self._out_buffer(gathered).copy_(gathered)  # the bf16/fp16 -> fp32 step
        else:
            logits = gathered.float()  # no copy when the GEMM already gave fp32
        if self.scale != 1.0:
            logits = logits * self.scale
        if self.soft_cap is not None:
            logits = torch.tanh(logits / self.soft_cap) * self.soft_cap
        return logits

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, scale={self.scale}, soft_cap={self.soft_cap}"
