"""Reference (forward_native-style) paged attention: gather each sequence's pages, then a
causal masked softmax in fp32. The oracle for the `paged_attention` kernel tests."""

from __future__ import annotations

import torch


def ref_paged_attention(
    query: torch.Tensor,  # [T, Hq, D]
    key_cache: torch.Tensor,  # [num_blocks, block_size, Hk, D]
    value_cache: torch.Tensor,
    block_tables: torch.Tensor,  # int32 [S, max_blocks]
    seq_lens: torch.Tensor,  # int32 [S]
    query_start_loc: torch.Tensor,  # int32 [S + 1]
    scale: float,
) -> torch.Tensor:
    out = torch.empty_like(query)
    block_size, hk = key_cache.shape[1], key_cache.shape[2]
    group = query.shape[1] // hk
    for i in range(seq_lens.numel()):
        start, end = int(query_start_loc[i]), int(query_start_loc[i + 1])
        ctx, q_len = int(seq_lens[i]), end - start
        if q_len == 0:
            continue
        blocks = block_tables[i, : (ctx + block_size - 1) // block_size].long()
        k = key_cache[blocks].reshape(-1, hk, key_cache.shape[-1])[:ctx].float()  # [L, Hk, D]
        v = value_cache[blocks].reshape(-1, hk, value_cache.shape[-1])[:ctx].float()
        k = k.repeat_interleave(group, dim=1)  # [L, Hq, D]
        v = v.repeat_interleave(group, dim=1)
        q = query[start:end].float()  # [q_len, Hq, D]
        scores = torch.einsum("qhd,khd->hqk", q, k) * scale  # [Hq, q_len, L]
        q_pos = torch.arange(ctx - q_len, ctx, device=query.device).unsqueeze(1)  # [q_len, 1]
        mask = torch.arange(ctx, device=query.device).unsqueeze(0) > q_pos  # [q_len, L]: future keys
        scores = scores.masked_fill(mask, float("-inf"))
        probs = scores.softmax(dim=-1)
        out[start:end] = torch.einsum("hqk,khd->qhd", probs, v).to(query.dtype)
    return out


def make_batch(
    q_lens: list[int],
    ctx_lens: list[int],
    hq: int,
    hk: int,
    head_size: int,
    block_size: int,
    dtype: torch.dtype,
    device: str = "cpu",
    extra_blocks: int = 3,
) -> dict[str, torch.Tensor]:
    """Random query and paged K/V for a mixed batch; blocks are shuffled across sequences."""
    need = [(c + block_size - 1) // block_size for c in ctx_lens]
    num_blocks = sum(need) + extra_blocks
    perm = torch.randperm(num_blocks).to(torch.int32)
    max_blocks = max(need) + 1
    block_tables = torch.zeros(len(ctx_lens), max_blocks, dtype=torch.int32)
    used = 0
    for i, n in enumerate(need):
        block_tables[i, :n] = perm[used : used + n]
        used += n
    qsl = torch.zeros(len(q_lens) + 1, dtype=torch.int32)
    qsl[1:] = torch.tensor(q_lens).cumsum(0)
    cache_shape = (num_blocks, block_size, hk, head_size)
    return {
        "query": torch.randn(int(qsl[-1]), hq, head_size, dtype=dtype, device=device),
        "key_cache": torch.randn(cache_shape, dtype=dtype, device=device),
        "value_cache": torch.randn(cache_shape, dtype=dtype, device=device),
        "block_tables": block_tables.to(device),
        "seq_lens": torch.tensor(ctx_lens, dtype=torch.int32, device=device),
        "query_start_loc": qsl.to(device),
    }
