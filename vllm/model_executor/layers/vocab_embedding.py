"""Token embedding and LM head with the vocabulary split across tensor-parallel ranks.

The vocabulary is padded up to a multiple of ``padding_size * tp`` so every rank holds the same
number of rows; padding rows are zero and never looked up (the logits processor strips them).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vllm.distributed.parallel_state import get_tp_rank, get_tp_size, tp_all_reduce
from vllm.model_executor.layers.linear import copy_checked
from vllm.model_executor.layers.utils import dispatch_unquantized_gemm

DEFAULT_VOCAB_PADDING_SIZE = 64


def pad_vocab_size(vocab_size: int, multiple: int) -> int:
    return -(-vocab_size // multiple) * multiple


class VocabParallelEmbedding(nn.Module):
    """ids [T] -> [T, H]. Rank r holds rows [r * per_rank, (r + 1) * per_rank) of the padded
    vocabulary; ids outside that range produce zeros and the all-reduce fills them in."""

    def __init__(
        self, num_embeddings: int, embedding_dim: int, dtype: torch.dtype | None = None,
        padding_size: int = DEFAULT_VOCAB_PADDING_SIZE, prefix: str = "",
    ) -> None:
        super().__init__()
        self.tp_rank, self.tp_size = get_tp_rank(), get_tp_size()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padded_vocab = pad_vocab_size(num_embeddings, padding_size * self.tp_size)
        self.per_rank = self.padded_vocab // self.tp_size
        self.start = self.tp_rank * self.per_rank
        self.end = self.start + self.per_rank
        self.prefix = prefix
        weight = torch.zeros(self.per_rank, embedding_dim, dtype=dtype)  # [vocab / tp, H]
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.weight.weight_loader = self.weight_loader  # type: ignore[attr-defined]
        self.weight.param_name = f"{prefix}.weight" if prefix else "weight"  # type: ignore[attr-defined]

    def weight_loader(
        self, param: nn.Parameter, loaded_weight: torch.Tensor, shard_id: int | str | None = None
    ) -> None:
        name = param.param_name  # type: ignore[attr-defined]
        expected = (self.num_embeddings, self.embedding_dim)
        if tuple(loaded_weight.shape) != expected:
            raise ValueError(
                f"weight {name!r}: checkpoint shape {tuple(loaded_weight.shape)} does not match "
                f"the model's expected shape {expected}"
            )
        rows = max(0, min(self.end, self.num_embeddings) - self.start)
        with torch.no_grad():
            param.data.zero_()
        if rows:
            copy_checked(param.data[:rows], loaded_weight.narrow(0, self.start, rows), name)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.tp_size == 1:
            return F.embedding(input_ids, self.weight)  # [T, H]
        in_range = (input_ids >= self.start) & (input_ids < self.end)
        local = torch.where(in_range, input_ids - self.start, torch.zeros_like(input_ids))
        out = F.embedding(local, self.weight)  # [T, H]
        out = out * in_range.unsqueeze(-1).to(out.dtype)
        return tp_all_reduce(out)

    def extra_repr(self) -> str:
        return (
            f"vocab={self.num_embeddings}, padded={self.padded_vocab}, dim={self.embedding_dim}, "
            f"tp={self.tp_size}"
        )


class ParallelLMHead(VocabParallelEmbedding):
    """Output projection [vocab/tp, H]; the logits processor runs the GEMM. Not callable itself."""

    def __init__(
        self, num_embeddings: int, embedding_dim: int, bias: bool = False,
        dtype: torch.dtype | None = None, padding_size: int = DEFAULT_VOCAB_PADDING_SIZE,
        prefix: str = "",
    ) -> None:
        super().__init__(num_embeddings, embedding_dim, dtype, padding_size, prefix)
        self.gemm = dispatch_unquantized_gemm()
        self.bias: nn.Parameter | None = None
        if bias:
            self.bias = nn.Parameter(torch.zeros(self.per_rank, dtype=dtype), requires_grad=False)
            self.bias.weight_loader = self._bias_loader  # type: ignore[attr-defined]
            self.bias.param_name = f"{prefix}.bias"  # type: ignore[attr-defined]

    def _bias_loader(self, param: nn.Parameter, loaded_weight: torch.Tensor, shard_id: object = None) -> None:
        rows = max(0, min(self.end, self.num_embeddings) - self.start)
        with torch.no_grad():
            param.data.zero_()
        if rows:
            copy_checked(param.data[:rows], loaded_weight.narrow(0, self.start, rows), param.param_name)  # type: ignore[attr-defined]

    def tie_weights(self, embed_tokens: VocabParallelEmbedding) -> ParallelLMHead:
        """Share the embedding's weight (tied embeddings)."""
        self.weight = embed_tokens.weight
        return self

    def forward(self, *args: object) -> torch.Tensor:
        raise RuntimeError("ParallelLMHead is applied by LogitsProcessor, not called directly")
