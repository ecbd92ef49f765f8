"""The CPU backend's direct path takes q/k/v as strided views of one fused qkv row (no copies)."""

from __future__ import annotations

import pytest
import torch
from attn_utils import make_batch

from vllm.attention.backends.native import NativeAttentionBackend
from vllm.attention.selector import load_backend


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("seqs", [[(0, 7), (5, 1), (17, 1)], [(30, 1), (3, 1), (16, 1), (0, 1)]])
def test_strided_qkv_views_match_native(dtype: torch.dtype, seqs: list[tuple[int, int]]) -> None:
    backend = load_backend("cpu")
    ok, why = backend.available()
    if not ok:
        pytest.skip(f"cpu backend unavailable: {why}")
    hq, hk, d = 6, 2, 64
    q, k, v, cache, meta, _, _ = make_batch(seqs, hq, hk, d, 16, dtype, seed=7, fill=0.0,
                                            device="cpu")
    t = q.shape[0]
    qkv = torch.cat([q.reshape(t, -1), k.reshape(t, -1), v.reshape(t, -1)], dim=-1)  # [T, (6+2+2)*D]
    qs, ks, vs = (x.view(t, -1, d) for x in qkv.split([hq * d, hk * d, hk * d], dim=-1))
    assert not qs.is_contiguous() and qs.stride(0) == (hq + 2 * hk) * d
    ref_cache = cache.clone()
    ref = NativeAttentionBackend.forward(q, k, v, ref_cache, meta, d ** -0.5)
    out = backend.forward(qs, ks, vs, cache, meta, d ** -0.5)
    tol = 2e-5 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(out.float(), ref.float(), atol=tol, rtol=tol)
    torch.testing.assert_close(cache, ref_cache)  # the same K/V written at the same slots
