"""Every backend present on this machine against the native reference."""

from __future__ import annotations

import pytest
import torch
from attn_utils import make_batch

from vllm.attention.backends.native import NativeAttentionBackend
from vllm.attention.selector import BACKENDS, load_backend

MIXED = [(0, 9), (5, 1), (15, 1), (16, 1), (17, 1), (3, 4), (0, 1), (30, 3)]


def _backend_or_skip(name: str, device: str):  # type: ignore[no-untyped-def]
    backend = load_backend(name)
    ok, why = backend.available()
    if not ok:
        pytest.skip(f"{name} backend unavailable: {why}")
    if device != "cpu" and not torch.cuda.is_available():
        pytest.skip(f"{name} backend needs a GPU")
    return backend


def _device(name: str) -> str:
    return {"cpu": "cpu", "xpu": "xpu"}.get(name, "cuda")


def _compare(name: str, seqs, num_heads: int, num_kv_heads: int, head_size: int,  # type: ignore[no-untyped-def]
             block_size: int, dtype: torch.dtype, seed: int = 0, pad_tokens: int = 0) -> None:
    dev = _device(name)
    backend = _backend_or_skip(name, dev)
    ok, why = backend.supports(head_size, dtype)
    if not ok:
        pytest.skip(f"{name}: {why}")
    q, k, v, cache, meta, _, _ = make_batch(seqs, num_heads, num_kv_heads, head_size,
                                            block_size, dtype, seed=seed, pad_tokens=pad_tokens,
                                            fill=GARBAGE, device="cpu")
    to = lambda t: t.to(dev)  # noqa: E731
    meta_d = type(meta)(**{f: (to(x) if isinstance(x, torch.Tensor) else x)
                           for f, x in vars(meta).items()})
    # The reference runs on the backend's device: the platform's KV-write op expects it there.
    ref = NativeAttentionBackend.forward(to(q), to(k), to(v), to(cache.clone()), meta_d,
                                         head_size ** -0.5).cpu()
    cache_d = to(cache)
    out = backend.forward(to(q), to(k), to(v), cache_d, meta_d, head_size ** -0.5)
    flat = cache_d.view(2, -1, num_kv_heads, head_size).cpu()
    n = meta.num_actual_tokens
    torch.testing.assert_close(flat[0, meta.slot_mapping[:n]], k[:n])  # the step's K/V written
    torch.testing.assert_close(flat[1, meta.slot_mapping[:n]], v[:n])
    tol = 2e-5 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(out.cpu().float(), ref.float(), atol=tol, rtol=tol)


# Unused cache slots hold large finite garbage (as stale blocks do): attending to one shows.
GARBAGE = 1e3
KERNEL_BACKENDS = [b for b in BACKENDS if b != "native"]


@pytest.mark.parametrize("name", KERNEL_BACKENDS)
@pytest.mark.parametrize("num_heads,num_kv_heads", [(4, 4), (4, 2), (8, 1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mixed_batch_gqa(name: str, num_heads: int, num_kv_heads: int, dtype: torch.dtype) -> None:
    _compare(name, MIXED, num_heads, num_kv_heads, 64, 16, dtype)


@pytest.mark.parametrize("name", KERNEL_BACKENDS)
@pytest.mark.parametrize("head_size", [16, 64, 128, 256])
def test_head_sizes(name: str, head_size: int) -> None:
    _compare(name, MIXED, 4, 2, head_size, 16, torch.float32, seed=1)


@pytest.mark.parametrize("name", KERNEL_BACKENDS)
@pytest.mark.parametrize("block_size", [8, 16])
def test_block_boundaries(name: str, block_size: int) -> None:
    b = block_size
    seqs = [(b - 2, 1), (b - 1, 1), (b, 1), (0, b - 1), (0, b), (0, b + 1), (b - 1, 2), (b + 1, b)]
    _compare(name, seqs, 4, 1, 64, block_size, torch.float32, seed=2)


@pytest.mark.parametrize("name", KERNEL_BACKENDS)
def test_long_context(name: str) -> None:
    _compare(name, [(4093, 3)], 4, 1, 64, 16, torch.float32, seed=3)


@pytest.mark.parametrize("name", KERNEL_BACKENDS)
def test_padding_tokens(name: str) -> None:
    _compare(name, [(3, 2), (0, 5), (9, 1)], 4, 2, 64, 16, torch.float32, seed=4, pad_tokens=3)


@pytest.mark.parametrize("name", KERNEL_BACKENDS)
def test_fp16(name: str) -> None:
    _compare(name, MIXED, 4, 2, 64, 16, torch.float16, seed=5)


def test_paged_attention_customop_matches_native() -> None:
    from vllm.attention.paged_attention import PagedAttention, paged_attention_native

    q, _, _, cache, meta, _, _ = make_batch([(6, 2), (0, 4)], 4, 2, 64, 16, torch.float32)
    cache = torch.nan_to_num(cache)  # every context slot is written; unused ones are zero
    op = PagedAttention()  # dispatches to the platform's kernel: inputs are on its device
    args = (q, cache[0], cache[1], meta.block_tables, meta.seq_lens, meta.query_start_loc,
            meta.max_query_len, meta.max_seq_len, 0.125)
    out, ref = torch.zeros_like(q), torch.zeros_like(q)
    op(out, *args)
    paged_attention_native(ref, *args)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=2e-5)
