"""Long prefill tiles of the CPU paged attention in bf16 (smollm2-like GQA 9/3, head 64): on
AVX512-BF16 they take the chunked bf16-dot path with ~32-row tiles; every ISA must agree with
the fp32 reference, including tiles that continue a cached context and odd tile tails."""

from __future__ import annotations

import pytest
import torch

from vllm import _custom_ops as ops

from .attention_ref import make_batch, ref_paged_attention
from .conftest import Impl, assert_close


@pytest.mark.parametrize("q_lens,ctx_lens", [([128, 128], [128, 128]), ([37, 100, 1], [37, 250, 9]),
                                             ([64], [300])])
@pytest.mark.parametrize("layout", [(9, 3, 64, 16), (4, 1, 128, 16), (2, 2, 32, 32)])
def test_bf16_prefill_tiles(impl: Impl, device: str, q_lens, ctx_lens, layout) -> None:
    if impl.method != "cpu":
        pytest.skip("CPU kernel tiling")
    hq, hk, d, bs = layout
    batch = make_batch(q_lens, ctx_lens, hq, hk, d, bs, torch.bfloat16, device)
    out = torch.empty_like(batch["query"])
    ops.paged_attention(out, batch["query"], batch["key_cache"], batch["value_cache"],
                        batch["block_tables"], batch["seq_lens"], batch["query_start_loc"],
                        max(q_lens), max(ctx_lens), d**-0.5, ns=ops.CPU)
    expected = ref_paged_attention(**batch, scale=d**-0.5)
    assert_close(out, expected, f"bf16 prefill tiles {layout}")
