"""The Triton prefill/varlen paged attention kernel against the native reference.

Runs on a GPU, or on the CPU through Triton's interpreter (``TRITON_INTERPRET=1``, set before
triton is imported); skipped where triton is not installed."""

from __future__ import annotations

import os

import pytest
import torch
from attn_utils import make_batch

from vllm.attention.paged_attention import paged_attention_native

triton_ops = pytest.importorskip("vllm.attention.ops.triton_paged_attention")
if not triton_ops.available():
    pytest.skip("triton is not installed", allow_module_level=True)
DEV = "cuda" if torch.cuda.is_available() else "cpu"
if DEV == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no GPU and TRITON_INTERPRET is not 1", allow_module_level=True)

if DEV == "cpu":
    # Triton 3.6's interpreter turns a loaded scalar (a size-1 numpy array) into a loop bound
    # with int(array), which numpy >= 2.4 rejects; take the element explicitly instead.
    from triton.runtime import interpreter as _interp

    _orig_patch = _interp._patch_lang_tensor

    def _patch_lang_tensor(tensor, scope):  # type: ignore[no-untyped-def]
        _orig_patch(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    _interp._patch_lang_tensor = _patch_lang_tensor

CASES = [
    [(0, 9), (5, 1), (15, 1), (0, 1), (30, 3)],  # prefills and decodes mixed
    [(0, 70)],  # one prompt longer than a query tile and a key block
    [(17, 40), (0, 33)],  # a chunk continuing cached context
    [(5, 1), (100, 1), (0, 1), (63, 1)],  # decodes only: the 16-row launch
]


def _run(seqs, hq: int, hk: int, d: int, block_size: int, dtype: torch.dtype) -> None:  # type: ignore[no-untyped-def]
    q, k, v, cache, meta, _, _ = make_batch(seqs, hq, hk, d, block_size, dtype, seed=7,
                                            fill=0.0, device="cpu")
    flat = cache.view(2, -1, hk, d)
    n = meta.num_actual_tokens
    flat[0, meta.slot_mapping[:n]] = k[:n]  # the step's K/V are in the cache before attention
    flat[1, meta.slot_mapping[:n]] = v[:n]
    args = (cache[0], cache[1], meta.block_tables, meta.seq_lens, meta.query_start_loc,
            meta.max_query_len, meta.max_seq_len, d ** -0.5)
    ref = torch.zeros_like(q)
    paged_attention_native(ref, q, *args)
    dev_args = tuple(a.to(DEV) if isinstance(a, torch.Tensor) else a for a in args)
    out = torch.zeros_like(q).to(DEV)
    triton_ops.triton_paged_attention(out, q.to(DEV), *dev_args)
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(out.cpu().float(), ref.float(), atol=tol, rtol=tol)


@pytest.mark.parametrize("seqs", CASES)
@pytest.mark.parametrize("hq,hk", [(4, 4), (8, 2), (14, 2)])
def test_matches_native(seqs, hq: int, hk: int) -> None:  # type: ignore[no-untyped-def]
    _run(seqs, hq, hk, 64, 16, torch.float32)


@pytest.mark.parametrize("d", [80, 128])
def test_head_sizes(d: int) -> None:
    _run(CASES[0], 4, 2, d, 16, torch.float32)


def test_half_precision_block_8() -> None:
    dtype = torch.bfloat16 if DEV == "cuda" else torch.float16
    _run(CASES[2], 8, 2, 64, 8, dtype)
