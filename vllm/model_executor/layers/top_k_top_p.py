"""Top-k / top-p filtering of logits as a CustomOp (``top_k_top_p``).

Semantics (per row): top-k keeps the k largest logits (k <= 0 or k >= V: off); top-p then keeps
the nucleus of what is left: the smallest set of the most likely tokens whose probability mass
is >= p (p >= 1: off). Everything else becomes -inf. Ties at the boundary are broken by the sort
order. ``k``/``p`` are per-row tensors or None when no request in the batch uses that filter.
"""

from __future__ import annotations

import torch

from vllm.model_executor.custom_op import CustomOp


def top_k_top_p_sort(logits: torch.Tensor, k: torch.Tensor | None, p: torch.Tensor | None
                     ) -> torch.Tensor:
    """Reference: one descending sort, mask by rank (top-k) and by preceding mass (top-p)."""
    if k is None and p is None:
        return logits
    vocab = logits.shape[-1]
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # [N, V]
    rank = torch.arange(vocab, device=logits.device)[None, :]
    if k is not None:
        k_eff = torch.where(k <= 0, vocab, k).clamp(max=vocab).to(torch.int64)
        sorted_logits = sorted_logits.masked_fill(rank >= k_eff[:, None], float("-inf"))
    if p is not None:
        probs = sorted_logits.float().softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # mass of strictly more likely tokens
        drop = (mass_before >= p[:, None].float()) & (rank > 0)  # always keep the top token
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.empty_like(logits).scatter_(-1, order, sorted_logits)


def top_k_only(logits: torch.Tensor, k: torch.Tensor, k_max: int) -> torch.Tensor:
    """Top-k without a full sort: threshold at each row's k-th largest value (ties all kept).

    ``k_max`` (host int, from the metadata) bounds every row's k so no device read is needed.
    """
    vocab = logits.shape[-1]
    k_eff = torch.where(k <= 0, vocab, k).clamp(1, vocab).to(torch.int64)
    top = logits.topk(max(1, min(k_max, vocab)), dim=-1).values  # [N, k_max]
    threshold = top.gather(-1, (k_eff[:, None] - 1).clamp(max=top.shape[-1] - 1))
    return logits.masked_fill(logits < threshold, float("-inf"))


@CustomOp.register("top_k_top_p")
class TopKTopP(CustomOp):
    """forward(logits [N, V], k int [N] | None, p float [N] | None, k_max) -> filtered logits.

    ``k_max``: the largest k in the batch when every row uses top-k (lets the fast paths use
    ``topk`` instead of a full sort); None otherwise.
    """

    def forward_native(self, logits: torch.Tensor, k: torch.Tensor | None,
                       p: torch.Tensor | None, k_max: int | None = None) -> torch.Tensor:
        return top_k_top_p_sort(logits, k, p)

    def _fast(self, logits: torch.Tensor, k: torch.Tensor | None, p: torch.Tensor | None,
              k_max: int | None) -> torch.Tensor:
        if p is None and k is not None and k_max is not None:
            return top_k_only(logits, k, k_max)
        return top_k_top_p_sort(logits, k, p)

    def forward_cuda(self, logits, k, p, k_max=None):  # type: ignore[no-untyped-def]
        return self._fast(logits, k, p, k_max)

    def forward_hip(self, logits, k, p, k_max=None):  # type: ignore[no-untyped-def]
        return self._fast(logits, k, p, k_max)

    def forward_cpu(self, logits, k, p, k_max=None):  # type: ignore[no-untyped-def]
        return self._fast(logits, k, p, k_max)

    def forward_xpu(self, logits, k, p, k_max=None):  # type: ignore[no-untyped-def]
        return self._fast(logits, k, p, k_max)
