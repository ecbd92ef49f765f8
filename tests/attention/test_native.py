"""The native backend against a plain per-sequence fp64 reference (so the oracle is checked).

Inputs live on the platform's device (the KV write is a CustomOp); the reference runs on the CPU."""

from __future__ import annotations

import pytest
import torch
from attn_utils import make_batch, reference

from vllm.attention.backends.native import NativeAttentionBackend

MIXED = [(0, 7), (5, 1), (16, 1), (3, 4), (0, 1)]  # prefill, decodes, chunked prefill


@pytest.mark.parametrize("num_heads,num_kv_heads", [(4, 4), (4, 2), (8, 1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_native_matches_reference(num_heads: int, num_kv_heads: int, dtype: torch.dtype) -> None:
    q, k, v, cache, meta, fk, fv = make_batch(MIXED, num_heads, num_kv_heads, 16, 4, dtype)
    out = NativeAttentionBackend.forward(q, k, v, cache, meta, 0.25)
    ref = reference(q, meta, fk, fv, 0.25)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(out.cpu().double(), ref, atol=tol, rtol=tol)


@pytest.mark.parametrize("block_size", [4, 16])
def test_block_boundaries(block_size: int) -> None:
    b = block_size
    seqs = [(b - 2, 1), (b - 1, 1), (b, 1), (0, b - 1), (0, b), (0, b + 1), (b - 1, 2)]
    q, k, v, cache, meta, fk, fv = make_batch(seqs, 2, 1, 32, block_size, torch.float32, seed=1)
    out = NativeAttentionBackend.forward(q, k, v, cache, meta, 0.1)
    torch.testing.assert_close(out.cpu().double(), reference(q, meta, fk, fv, 0.1), atol=1e-5, rtol=1e-5)


def test_writes_kv_cache_at_slots() -> None:
    q, k, v, cache, meta, fk, fv = make_batch([(3, 2), (0, 5)], 2, 2, 16, 4, torch.float32)
    NativeAttentionBackend.forward(q, k, v, cache, meta, 1.0)
    flat = cache.view(2, -1, 2, 16)
    torch.testing.assert_close(flat[0, meta.slot_mapping], k)
    torch.testing.assert_close(flat[1, meta.slot_mapping], v)


def test_padding_tokens_not_written_and_zero() -> None:
    q, k, v, cache, meta, fk, fv = make_batch([(2, 3), (4, 1)], 2, 2, 16, 4, torch.float32,
                                              pad_tokens=3)
    before = cache.clone()
    out = NativeAttentionBackend.forward(q, k, v, cache, meta, 0.5)
    n = meta.num_actual_tokens
    assert torch.equal(out[n:], torch.zeros_like(out[n:]))
    torch.testing.assert_close(out[:n].cpu().double(), reference(q[:n], meta, fk, fv, 0.5),
                               atol=1e-5, rtol=1e-5)
    changed = ~(torch.isclose(before, cache) | (before.isnan() & cache.isnan()))
    assert int(changed.view(2, -1, 2 * 16).any(-1).any(0).sum()) == n  # only the real slots


def test_long_context_single_decode_and_chunk() -> None:
    q, k, v, cache, meta, fk, fv = make_batch([(4090, 6)], 2, 1, 16, 16, torch.float32, seed=3)
    out = NativeAttentionBackend.forward(q, k, v, cache, meta, 0.25)
    torch.testing.assert_close(out.cpu().double(), reference(q, meta, fk, fv, 0.25), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("head_size", [16, 256])
def test_head_sizes(head_size: int) -> None:
    q, k, v, cache, meta, fk, fv = make_batch(MIXED, 2, 1, head_size, 8, torch.float32, seed=4)
    scale = head_size ** -0.5
    out = NativeAttentionBackend.forward(q, k, v, cache, meta, scale)
    torch.testing.assert_close(out.cpu().double(), reference(q, meta, fk, fv, scale), atol=1e-5, rtol=1e-5)
