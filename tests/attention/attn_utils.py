"""Helpers for attention tests: random paged batches and a plain per-sequence reference."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from vllm.attention.backends.abstract import AttentionMetadata


def platform_device() -> torch.device:
    """The current platform's device: where tensors fed to our layers must live."""
    from vllm.platforms import current_platform

    return current_platform.device()


def meta_to(meta: AttentionMetadata, device: torch.device | str) -> AttentionMetadata:
    """``meta`` with its device tensors on ``device`` (the ``*_cpu`` host copies stay put)."""
    moved = {f.name: getattr(meta, f.name) for f in dataclasses.fields(meta)}
    for name, value in moved.items():
        if isinstance(value, torch.Tensor) and not name.endswith("_cpu"):
            moved[name] = value.to(device)
    return type(meta)(**moved)


def make_batch(seqs: list[tuple[int, int]], num_heads: int, num_kv_heads: int, head_size: int,
               block_size: int, dtype: torch.dtype, seed: int = 0, num_blocks: int | None = None,
               pad_tokens: int = 0, fill: float = float("nan"),
               device: torch.device | str | None = None):
    """seqs: (context already cached, new query tokens) per sequence.

    Returns (query [T, Hq, D], key, value [T, Hk, D] of the new tokens, kv_cache with the cached
    context already written and ``fill`` (NaN by default) in every unused slot, metadata, and
    the full per-sequence K/V lists).
    Blocks are assigned in a shuffled order so the gather really follows the block table.
    Everything fed to a layer (query, key, value, kv_cache, metadata) is on ``device`` (default:
    the current platform's); the full K/V lists and the metadata's host copies stay on the CPU.
    """
    g = torch.Generator().manual_seed(seed)
    seq_lens = [c + n for c, n in seqs]
    blocks_per_seq = [-(-s // block_size) for s in seq_lens]
    total_blocks = num_blocks or sum(blocks_per_seq) + 3
    perm = torch.randperm(total_blocks, generator=g).tolist()
    max_blocks = max(blocks_per_seq)
    tables = torch.zeros(len(seqs), max_blocks, dtype=torch.int32)
    shape = (2, total_blocks, block_size, num_kv_heads, head_size)
    kv_cache = torch.full(shape, fill, dtype=dtype)
    full_k, full_v, qs, ks, vs, slots = [], [], [], [], [], []
    for i, ((ctx, new), n_blk) in enumerate(zip(seqs, blocks_per_seq, strict=True)):
        blocks = [perm.pop() for _ in range(n_blk)]
        tables[i, :n_blk] = torch.tensor(blocks, dtype=torch.int32)
        kk = torch.randn(ctx + new, num_kv_heads, head_size, generator=g).to(dtype)
        vv = torch.randn(ctx + new, num_kv_heads, head_size, generator=g).to(dtype)
        full_k.append(kk)
        full_v.append(vv)
        pos_slots = [blocks[p // block_size] * block_size + p % block_size for p in range(ctx + new)]
        flat = kv_cache.view(2, -1, num_kv_heads, head_size)
        for p in range(ctx):
            flat[0, pos_slots[p]] = kk[p]
            flat[1, pos_slots[p]] = vv[p]
        qs.append(torch.randn(new, num_heads, head_size, generator=g).to(dtype))
        ks.append(kk[ctx:])
        vs.append(vv[ctx:])
        slots += pos_slots[ctx:]
    q_lens = [n for _, n in seqs]
    qsl = torch.tensor([0] + torch.tensor(q_lens).cumsum(0).tolist(), dtype=torch.int32)
    query, key, value = torch.cat(qs), torch.cat(ks), torch.cat(vs)
    slot_mapping = torch.tensor(slots, dtype=torch.int64)
    if pad_tokens:
        query = torch.cat([query, torch.randn(pad_tokens, num_heads, head_size).to(dtype)])
        key = torch.cat([key, torch.randn(pad_tokens, num_kv_heads, head_size).to(dtype)])
        value = torch.cat([value, torch.randn(pad_tokens, num_kv_heads, head_size).to(dtype)])
        slot_mapping = torch.cat([slot_mapping, torch.full((pad_tokens,), -1, dtype=torch.int64)])
    sl = torch.tensor(seq_lens, dtype=torch.int32)
    meta = AttentionMetadata(
        num_actual_tokens=sum(q_lens), max_query_len=max(q_lens), max_seq_len=max(seq_lens),
        query_start_loc=qsl, seq_lens=sl, block_tables=tables, slot_mapping=slot_mapping,
        query_start_loc_cpu=qsl.clone(), seq_lens_cpu=sl.clone(),
    )
    dev = platform_device() if device is None else torch.device(device)
    query, key, value, kv_cache = (t.to(dev) for t in (query, key, value, kv_cache))
    return query, key, value, kv_cache, meta_to(meta, dev), full_k, full_v


def reference(query: torch.Tensor, meta: AttentionMetadata, full_k: list[torch.Tensor],
              full_v: list[torch.Tensor], scale: float) -> torch.Tensor:
    """Plain per-sequence causal attention in fp64, with explicit softmax (no SDPA), on the CPU
    (``query`` may be on any device; the result [T, Hq, D] is a CPU tensor)."""
    query = query.cpu()
    out = torch.zeros(query.shape, dtype=torch.float64)
    qsl = meta.query_start_loc_cpu.tolist()
    for i, (kk, vv) in enumerate(zip(full_k, full_v, strict=True)):
        q = query[qsl[i]:qsl[i + 1]].double()  # [n, Hq, D]
        n, ctx_len = q.shape[0], kk.shape[0]
        group = q.shape[1] // kk.shape[1]
        k = kk.cpu().double().repeat_interleave(group, dim=1)  # [L, Hq, D]
        v = vv.cpu().double().repeat_interleave(group, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) * scale
        qpos = torch.arange(ctx_len - n, ctx_len)[:, None]
        scores = scores.masked_fill(torch.arange(ctx_len)[None, :] > qpos, float("-inf"))
        out[qsl[i]:qsl[i + 1]] = torch.einsum("hqk,khd->qhd", F.softmax(scores, -1), v)
    return out
