"""The paged_attention kernel's few-rows (decode) path: many sequences (work items covering
several kv heads), short multi-token queries, contexts spanning several key chunks, block sizes
that are not a multiple of the vector width, odd head sizes, and 1 vs 2 threads."""

from __future__ import annotations

import pytest
import torch

from .attention_ref import make_batch, ref_paged_attention
from .conftest import Impl, assert_close
from .test_paged_attention import _run

# name -> (q_lens, ctx_lens, hq, hk, head_size, block_size)
CASES = {
    # 24 decodes: enough sequences that one work item takes all kv heads of a sequence
    "many_decodes": ([1] * 24, [1 + (37 * i) % 300 for i in range(24)], 9, 3, 64, 16),
    # contexts around the 256-key chunk and longer (several online-softmax chunks)
    "chunk_edges": ([1, 1, 1, 1, 1], [255, 256, 257, 512, 700], 4, 2, 64, 16),
    # short queries (speculative / small chunks): causal mask inside the few-rows path
    "short_queries": ([2, 3, 5, 4, 1, 6], [2, 300, 5, 260, 9, 517], 6, 2, 64, 16),
    # block size 8 (not a multiple of 16 lanes), odd head size (padded rows)
    "small_blocks_odd_dim": ([1, 2, 1, 3], [40, 77, 1, 130], 4, 1, 36, 8),
    # big blocks: one block per chunk
    "big_blocks": ([1, 1, 3], [129, 600, 383], 8, 2, 128, 128),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("case", list(CASES))
def test_decode_path(impl: Impl, device: str, case: str, dtype, threads: int) -> None:
    q_lens, ctx_lens, hq, hk, d, bs = CASES[case]
    if impl.method in ("cuda", "hip"):
        from vllm.attention.backends.cuda import CudaAttentionBackend

        if d not in CudaAttentionBackend.supported_head_sizes():
            pytest.skip(f"_C paged_attention is compiled for head sizes "
                        f"{CudaAttentionBackend.supported_head_sizes()}, not {d}")
    batch = make_batch(q_lens, ctx_lens, hq, hk, d, bs, dtype, device)
    scale = d**-0.5
    expected = ref_paged_attention(**batch, scale=scale)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = _run(impl, batch, scale)
    finally:
        torch.set_num_threads(before)
    assert_close(out, expected, f"paged_attention {case}")


def test_decode_matches_batch_of_one(impl: Impl, device: str) -> None:
    """A sequence's output does not depend on how many others share the batch (work split)."""
    ctx = [5, 130, 64, 300, 17, 256, 99, 1, 200, 31] * 2
    batch = make_batch([1] * len(ctx), ctx, 9, 3, 64, 16, torch.float32, device)
    full = _run(impl, batch, 0.125)
    i = 3
    one = {k: v for k, v in batch.items()}
    one["query"] = batch["query"][i : i + 1]
    one["block_tables"] = batch["block_tables"][i : i + 1]
    one["seq_lens"] = batch["seq_lens"][i : i + 1]
    one["query_start_loc"] = torch.tensor([0, 1], dtype=torch.int32, device=device)
    torch.testing.assert_close(_run(impl, one, 0.125), full[i : i + 1], atol=1e-6, rtol=1e-5)
