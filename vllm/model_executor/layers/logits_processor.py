"""Hidden states -> float32 logits over the full (unpadded) vocabulary."""

from __future__ import annotations

import torch
import torch.nn as nn

from vllm.distributed.parallel_state import tp_all_gather
from vllm.model_executor.layers.vocab_embedding import ParallelLMHead


class LogitsProcessor(nn.Module):
    """logits = soft_cap(scale * (hidden @ lm_head.T + b)) gathered across ranks, float32."""

    def __init__(self, vocab_size: int, scale: float = 1.0, soft_cap: float | None = None) -> None:
        super().__init__()
        if soft_cap is not None and soft_cap <= 0:
            raise ValueError(f"logits soft_cap={soft_cap} must be > 0")
        self.vocab_size = vocab_size
        self.scale = scale
        self.soft_cap = soft_cap

    def forward(self, lm_head: ParallelLMHead, hidden: torch.Tensor) -> torch.Tensor:
        # hidden [N, H] -> local [N, vocab_per_rank] -> full [N, padded vocab] -> [N, vocab]
        local = lm_head.gemm(hidden, lm_head.weight, lm_head.bias)
        logits = tp_all_gather(local, dim=-1)[..., : self.vocab_size].float()
        if self.scale != 1.0:
            logits = logits * self.scale
        if self.soft_cap is not None:
            logits = torch.tanh(logits / self.soft_cap) * self.soft_cap
        return logits

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, scale={self.scale}, soft_cap={self.soft_cap}"
