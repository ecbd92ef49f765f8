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


def top_k_top_p_sparse(logits: torch.Tensor, k: torch.Tensor | None, p: torch.Tensor | None,
                       num_candidates: int, k_max: int | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Top-k/top-p on each row's ``num_candidates`` largest logits instead of a full sort.

    Returns (vals [N, K] with dropped entries at -inf, their token ids [N, K], exact): ``exact``
    (bool [N], or None meaning every row) says whether the row's kept set lies inside its
    candidates. ``k_max`` (host int) bounds every row's k: when it fits in the candidates, every
    row is exact by construction (no device read needed)."""
    vocab = logits.shape[-1]
    kc = max(1, min(num_candidates, vocab))
    vals, idx = logits.topk(kc, dim=-1)  # [N, K], descending
    rank = torch.arange(kc, device=logits.device)[None, :]
    all_fit = kc == vocab or (k is not None and k_max is not None and k_max <= kc)
    exact = None
    if k is not None:
        k_eff = torch.where(k <= 0, vocab, k).clamp(max=vocab).to(torch.int64)  # [N]
        vals = vals.masked_fill(rank >= k_eff[:, None], float("-inf"))
        if not all_fit:
            exact = k_eff <= kc  # the row's whole top-k set is among the candidates
    if p is not None:
        # Unnormalised weights and a running (sequential) sum: the result does not depend on how
        # many candidates the batch asked for. The row's total mass is over what top-k left:
        # the candidates when its top-k fits in them, otherwise the full row.
        w = (vals.float() - vals[:, :1].float()).exp()  # [N, K], 1 for the top token
        cw = w.cumsum(dim=-1)
        total = cw[:, -1:]  # [N, 1]
        if not all_fit:
            full = (torch.logsumexp(logits.float(), dim=-1, keepdim=True)
                    - vals[:, :1].float()).exp()
            total = full if exact is None else torch.where(exact[:, None], total, full)
        p_eff = torch.where(p >= 1.0, float("inf"), p.float())  # p >= 1: top-p off
        drop = (cw - w >= p_eff[:, None] * total) & (rank > 0)  # mass before >= p
        vals = vals.masked_fill(drop, float("-inf"))
        if not all_fit:  # the nucleus closed inside the candidates: everything past them is out
            closed = drop.any(dim=-1)
            exact = closed if exact is None else (exact | closed)
    return vals, idx, exact


def top_k_top_p_candidates(logits: torch.Tensor, k: torch.Tensor | None, p: torch.Tensor | None,
                           num_candidates: int, k_max: int | None = None
                           ) -> tuple[torch.Tensor, bool]:
    """``top_k_top_p_sparse`` scattered back to [N, V] logits; returns (logits, all rows exact)."""
    vals, idx, exact = top_k_top_p_sparse(logits, k, p, num_candidates, k_max)
    out = torch.full_like(logits, float("-inf")).scatter_(-1, idx, vals)
    return out, True if exact is None else bool(exact.all())


def top_k_top_p_host(logits: torch.Tensor, k: torch.Tensor | None, p: torch.Tensor | None,
                     k_max: int | None) -> torch.Tensor:
    """For host-memory devices, where reading a flag costs nothing: try a few hundred candidates
    per row, widen while some row's nucleus reaches past them (a full sort is ~30x a small topk
    on a 50k-150k vocabulary). Rows with top-p off (p >= 1) keep everything top-k left."""
    vocab = logits.shape[-1]
    if p is None:
        return logits if k is None else top_k_only(logits, k, k_max or vocab)
    off = p >= 1.0
    if bool(off.any()):
        if bool(off.all()):
            return top_k_top_p_host(logits, k, None, k_max)
        out = torch.empty_like(logits)
        for rows, rows_p in ((off.nonzero().squeeze(1), None), ((~off).nonzero().squeeze(1), p)):
            part_p = rows_p[rows] if rows_p is not None else None
            out[rows] = top_k_top_p_host(logits[rows], k[rows] if k is not None else None,
                                         part_p, k_max)
        return out
    n = k_max if k_max is not None and k_max < vocab else 256
    while True:
        out, exact = top_k_top_p_candidates(logits, k, p, n, k_max)
        if exact or n >= vocab:
            return out
        n *= 4


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
        if p is not None and k is not None and k_max is not None and k_max < logits.shape[-1]:
            return top_k_top_p_candidates(logits, k, p, k_max, k_max)[0]  # every row fits: exact
        return top_k_top_p_sort(logits, k, p)

    def forward_cuda(self, logits, k, p, k_max=None):  # type: ignore[no-untyped-def]
        return self._fast(logits, k, p, k_max)

    def forward_hip(self, logits, k, p, k_max=None):  # type: ignore[no-untyped-def]
        return self._fast(logits, k, p, k_max)

    def forward_cpu(self, logits, k, p, k_max=None):  # type: ignore[no-untyped-def]
        if p is None:
            return self._fast(logits, k, p, k_max)
        return top_k_top_p_host(logits, k, p, k_max)

    def forward_xpu(self, logits, k, p, k_max=None):  # type: ignore[no-untyped-def]
        return self._fast(logits, k, p, k_max)
