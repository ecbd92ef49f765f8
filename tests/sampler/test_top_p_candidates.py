"""The candidate-based top-k/top-p paths (no full sort) keep exactly the tokens the full-sort
reference keeps: mixed per-row k and p, rows with either filter off, flat and peaked rows, and
nuclei wider than the first candidate set (the host path widens)."""

from __future__ import annotations

import pytest
import torch

from vllm.model_executor.layers.top_k_top_p import (
    top_k_top_p_candidates,
    top_k_top_p_host,
    top_k_top_p_sort,
)


def _rows(n: int, vocab: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scale = torch.rand(n, 1, generator=g) * 8  # from nearly flat rows to very peaked ones
    return torch.randn(n, vocab, generator=g) * scale


def _same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert torch.equal(a > float("-inf"), b > float("-inf"))
    keep = b > float("-inf")
    assert torch.equal(a[keep], b[keep])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("vocab", [50, 3000])
def test_host_path_matches_sort(seed: int, vocab: int) -> None:
    n = 12
    logits = _rows(n, vocab, seed)
    g = torch.Generator().manual_seed(100 + seed)
    p = torch.rand(n, generator=g) * 0.99 + 0.01
    p[::4] = 1.0  # top-p off in some rows
    k = torch.randint(0, 60, (n,), generator=g)
    k[1::3] = 0  # top-k off in some rows
    off = p >= 1.0
    for kk, pp in ((None, p), (k, p), (k, None)):
        k_max = None if kk is None else int(torch.where(kk > 0, kk, vocab).max())
        out = top_k_top_p_host(logits, kk, pp, k_max)
        ref = top_k_top_p_sort(logits, kk, pp)
        if pp is not None:  # p == 1 is "off" (fp32 rounding makes the sort drop tail tokens)
            ref[off] = top_k_top_p_sort(logits, kk, None)[off]
        _same(out, ref)


def test_wide_nucleus_widens() -> None:
    logits = torch.zeros(2, 5000)
    logits[1, :10] = 20.0  # row 0 flat: its nucleus holds 4252 tokens; row 1 peaked
    p = torch.tensor([0.8503, 0.85])
    out, exact = top_k_top_p_candidates(logits, None, p, 256)
    assert not exact  # row 0's nucleus does not fit in 256 candidates
    host = top_k_top_p_host(logits, None, p, None)
    assert int((host[0] > float("-inf")).sum()) == 4252  # mass before token j: j / 5000
    assert int((host[1] > float("-inf")).sum()) == 9  # 10 equal logits: mass 0.8 before the 9th


def test_all_rows_top_k_is_exact_without_widening() -> None:
    logits = _rows(8, 2000, 7)
    k = torch.tensor([5, 40, 1, 17, 40, 3, 9, 22])
    p = torch.tensor([0.5, 0.9, 0.3, 1.0, 0.99, 0.7, 0.2, 0.95])
    out, exact = top_k_top_p_candidates(logits, k, p, int(k.max()), int(k.max()))
    assert exact
    _same(out, top_k_top_p_sort(logits, k, p))


def _sampler_rows(params_list, logits):  # type: ignore[no-untyped-def]
    from vllm.model_executor.layers.sampler import (
        Sampler,
        SamplingRequestState,
        build_sampling_metadata,
    )

    states = [SamplingRequestState(p, [1], [], torch.Generator().manual_seed(p.seed)
                                   if p.seed is not None else None) for p in params_list]
    meta = build_sampling_metadata(states, logits.shape[-1], logits.device)
    return Sampler()(logits, meta).sampled_token_ids.tolist()


def test_top_k_rows_same_tokens_whatever_the_batch_k_max() -> None:
    """A seeded top-k request draws the same tokens next to rows with a larger top-k (another
    candidate count), rows without top-k (the other path) or alone."""
    from vllm.sampling_params import SamplingParams

    vocab = 500
    target = dict(seed=77, temperature=0.9, top_k=7, top_p=0.8)
    companions = [[], [SamplingParams(temperature=1.0, top_k=300)],
                  [SamplingParams(temperature=0.7), SamplingParams(temperature=1.0, top_p=0.5)]]
    runs = []
    for others in companions:
        toks = []
        params = [SamplingParams(**target)] + [o.clone() for o in others]
        states_params = params
        for step in range(20):
            g = torch.Generator().manual_seed(step)
            logits = torch.randn(len(params), vocab, generator=g) * 2
            toks.append(_sampler_rows(states_params, logits)[0])
            states_params = params  # same params objects: generators are rebuilt per call
        runs.append(toks)
    assert runs[0] == runs[1] == runs[2]


def test_top_k_rows_follow_the_distribution() -> None:
    from vllm.sampling_params import SamplingParams

    torch.manual_seed(0)
    logits = torch.tensor([[2.0, 1.0, 0.5, 3.0, -1.0, 0.0]]).repeat(4000, 1)
    out = torch.tensor(_sampler_rows([SamplingParams(temperature=1.0, top_k=3)] * 4000, logits))
    freq = torch.bincount(out, minlength=6).double() / 4000
    want = torch.zeros(6, dtype=torch.float64)
    want[[3, 0, 1]] = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64).softmax(0)
    assert freq[[2, 4, 5]].sum() == 0  # outside the top 3: never
    assert torch.allclose(freq, want, atol=0.03)
