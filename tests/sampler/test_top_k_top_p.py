"""top_k_top_p: exact nucleus and top-k sets, native vs the fast path."""

from __future__ import annotations

import pytest
import torch

from vllm.model_executor.layers.top_k_top_p import TopKTopP, top_k_only, top_k_top_p_sort


def _nucleus(logits: torch.Tensor, p: float) -> set[int]:
    """Smallest set of most likely tokens with mass >= p, computed in fp64 one token at a time."""
    probs = logits.double().softmax(-1)
    order = probs.argsort(descending=True).tolist()
    kept, mass = set(), 0.0
    for tok in order:
        kept.add(tok)
        mass += float(probs[tok])
        if mass >= p:
            return kept
    return kept


def _far_from_boundaries(logits: torch.Tensor, p: float) -> bool:
    cum = logits.double().softmax(-1).sort(descending=True).values.cumsum(-1)
    return bool((cum - p).abs().min() > 1e-4)


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.8, 0.95, 0.999])
def test_top_p_keeps_exactly_the_nucleus(p: float) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 50, generator=g) * 2
    out = top_k_top_p_sort(logits, None, torch.full((6,), p))
    for row in range(6):
        if not _far_from_boundaries(logits[row], p):
            continue
        kept = set(torch.nonzero(out[row] > float("-inf")).flatten().tolist())
        assert kept == _nucleus(logits[row], p)
        # Kept logits are unchanged.
        idx = sorted(kept)
        assert torch.equal(out[row, idx], logits[row, idx])


def test_top_k_keeps_exactly_k() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 40, generator=g)
    k = torch.tensor([1, 3, 0, 40, 7])  # 0: off
    for out in (top_k_top_p_sort(logits, k, None), top_k_only(logits, k, 40)):
        for row, kk in enumerate(k.tolist()):
            kept = set(torch.nonzero(out[row] > float("-inf")).flatten().tolist())
            n = 40 if kk == 0 else kk
            assert kept == set(logits[row].topk(n).indices.tolist())


def test_top_k_then_top_p() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.07, 0.03]]))
    # top-k=3 renormalises to (0.555, 0.278, 0.167): p=0.8 needs the first two (0.833).
    out = top_k_top_p_sort(logits, torch.tensor([3]), torch.tensor([0.8]))
    assert (out[0] > float("-inf")).tolist() == [True, True, False, False, False]


def test_customop_dispatch_matches_native() -> None:
    op = TopKTopP()
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(4, 30, generator=g)
    k, p = torch.tensor([2, 5, 0, 30]), torch.tensor([0.9, 0.5, 0.7, 1.0])
    torch.testing.assert_close(op(logits, k, p, None), op.forward_native(logits, k, p))
    torch.testing.assert_close(op._fast(logits, k, None, 30), op.forward_native(logits, k, None))
    assert op(logits, None, None) is logits
