"""The ``paged_attention`` CustomOp: causal varlen attention over the paged KV cache.

One call serves a mixed batch (prefill chunks and decodes). Arguments follow the kernel schema
in ``vllm/_custom_ops.py``: out/query [T, Hq, D], key_cache/value_cache
[num_blocks, block_size, Hk, D], block_tables int32 [S, max_blocks], seq_lens int32 [S],
query_start_loc int32 [S+1]. Rows of ``out`` past ``query_start_loc[-1]`` are left untouched.

``forward_native`` is the reference: it gathers each sequence's pages into a padded batch and
runs masked SDPA in fp32, with no host synchronisation (shapes come from the max_* ints).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from vllm import _custom_ops as ops
from vllm.model_executor.custom_op import CustomOp


def _token_coords(query_start_loc: torch.Tensor, num_tokens: int, max_query_len: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each flat token: (sequence index, index within its query, is a real token).

    Padding tokens (past ``query_start_loc[-1]``) get sequence index S: a spare row, so every
    index is in range and no boolean indexing (a host sync) is needed.
    """
    t = torch.arange(num_tokens, device=query_start_loc.device, dtype=torch.int64)
    starts = query_start_loc.to(torch.int64)
    seq = torch.searchsorted(starts[1:], t, right=True)  # [T] in [0, S]
    valid = seq < query_start_loc.shape[0] - 1
    local = (t - starts[seq.clamp(max=starts.shape[0] - 2)]).clamp(0, max(max_query_len - 1, 0))
    return seq, local, valid


def _gather_pages(cache: torch.Tensor, block_tables: torch.Tensor, num_blocks_used: int
                  ) -> torch.Tensor:
    """[num_blocks, bs, Hk, D] -> [S, num_blocks_used * bs, Hk, D] in sequence order."""
    table = block_tables[:, :num_blocks_used].to(torch.int64).clamp(0, cache.shape[0] - 1)
    pages = cache[table]  # [S, nb, bs, Hk, D]
    return pages.flatten(1, 2)


def paged_attention_native(
    out: torch.Tensor,
    query: torch.Tensor,
    key_cache: torch.Tensor,
    value_cache: torch.Tensor,
    block_tables: torch.Tensor,
    seq_lens: torch.Tensor,
    query_start_loc: torch.Tensor,
    max_query_len: int,
    max_seq_len: int,
    scale: float,
) -> None:
    num_tokens, num_heads, head_size = query.shape
    num_seqs = seq_lens.shape[0]
    if num_tokens == 0 or num_seqs == 0 or max_query_len == 0:
        return
    block_size, num_kv_heads = key_cache.shape[1], key_cache.shape[2]
    group = num_heads // num_kv_heads
    dev = query.device
    seq, local, valid = _token_coords(query_start_loc, num_tokens, max_query_len)

    # Padded queries [S (+1 spare row for padding tokens), Lq, Hq, D].
    q_pad = torch.zeros(num_seqs + 1, max_query_len, num_heads, head_size, device=dev,
                        dtype=torch.float32)
    q_pad[seq, local] = query.float()
    q_pad = q_pad[:num_seqs].transpose(1, 2)  # [S, Hq, Lq, D]

    nb = -(-max_seq_len // block_size)
    seq_lens64 = seq_lens.to(torch.int64)
    kpos = torch.arange(nb * block_size, device=dev)  # [Lk]
    kv_valid = kpos[None, :] < seq_lens64[:, None]  # [S, Lk]
    # Positions past a sequence's end hold stale data (maybe NaN): zero them so 0 * x stays 0.
    keep = kv_valid[:, :, None, None]
    k = torch.where(keep, _gather_pages(key_cache, block_tables, nb).float(), 0.0)
    v = torch.where(keep, _gather_pages(value_cache, block_tables, nb).float(), 0.0)
    # [S, Lk, Hk, D] -> [S, Hq, Lk, D]; query head h reads kv head h // group.
    k = k.repeat_interleave(group, dim=2).transpose(1, 2)
    v = v.repeat_interleave(group, dim=2).transpose(1, 2)

    q_lens = (query_start_loc[1:] - query_start_loc[:-1]).to(torch.int64)
    qpos = (seq_lens64 - q_lens)[:, None] + torch.arange(max_query_len, device=dev)  # [S, Lq]
    mask = (kpos[None, None, :] <= qpos[:, :, None]) & kv_valid[:, None, :]
    mask = mask | (kpos == 0)  # no fully-masked rows (padding rows are discarded anyway)
    o = F.scaled_dot_product_attention(q_pad, k, v, attn_mask=mask[:, None], scale=scale)
    o = F.pad(o.transpose(1, 2), (0, 0, 0, 0, 0, 0, 0, 1))[seq, local]  # [T, Hq, D]
    out.copy_(torch.where(valid[:, None, None], o.to(out.dtype), out))


def paged_attention_xpu(
    out: torch.Tensor, query: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor,
    block_tables: torch.Tensor, seq_lens: torch.Tensor, query_start_loc: torch.Tensor,
    max_query_len: int, max_seq_len: int, scale: float,
) -> None:
    """IPEX varlen flash attention over the same paged layout (untested here: no XPU)."""
    from intel_extension_for_pytorch.llm.modules import PagedAttention

    cu_seqlens_k = F.pad(seq_lens.cumsum(0, dtype=torch.int32), (1, 0))
    PagedAttention.flash_attn_varlen_func(
        out, query.contiguous(), key_cache, value_cache, query_start_loc, cu_seqlens_k,
        max_query_len, max_seq_len, scale, True, block_tables, None,
    )


# Decodes whose contexts are all this short go to Triton even in small batches. H100, 32/8 heads,
# d128, one sequence (benchmarks/scripts/attn_small_batch.py): 136 tokens 8.0 us Triton vs
# 19.8 us for the `_C` split-K kernel, whose fixed cost dominates; 1024 tokens 28.0 vs 24.6;
# 8192 tokens 233 vs 41 (one Triton program per kv head cannot spread a long context).
TRITON_SHORT_CONTEXT = 512


def paged_attention_cuda(
    out: torch.Tensor, query: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor,
    block_tables: torch.Tensor, seq_lens: torch.Tensor, query_start_loc: torch.Tensor,
    max_query_len: int, max_seq_len: int, scale: float,
) -> None:
    """CUDA/ROCm: the Triton tiled kernel for prefill chunks, for decode batches whose
    (sequence, kv head) programs fill the GPU twice over (it streams 64-key tiles) and for
    short contexts; the `_C` split-K kernel for decodes of a few, long, sequences. The choice
    depends on shapes and the ``max_seq_len`` hint only, so decode graphs are captured per
    context bucket (``CudaAttentionBackend.decode_context_buckets``)."""
    from vllm.attention.ops import triton_paged_attention as tri

    programs = seq_lens.shape[0] * key_cache.shape[2]
    if tri.available() and (max_query_len > 1 or programs >= 2 * _sm_count(query.device)
                            or max_seq_len <= TRITON_SHORT_CONTEXT):
        tri.triton_paged_attention(out, query, key_cache, value_cache, block_tables, seq_lens,
                                   query_start_loc, max_query_len, max_seq_len, scale)
    else:
        ops.paged_attention(out, query, key_cache, value_cache, block_tables, seq_lens,
                            query_start_loc, max_query_len, max_seq_len, scale, ns=ops.CUDA)


@functools.cache
def _sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


@CustomOp.register("paged_attention")
class PagedAttention(CustomOp):
    """Stateless op; see the module docstring for the arguments."""

    def forward_native(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        paged_attention_native(*args, **kwargs)

    def forward_cpu(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        ops.paged_attention(*args, **kwargs, ns=ops.CPU)

    def forward_cuda(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        paged_attention_cuda(*args, **kwargs)

    def forward_hip(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        paged_attention_cuda(*args, **kwargs)

    def forward_xpu(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        paged_attention_xpu(*args, **kwargs)


@functools.cache
def reshape_and_cache_op() -> CustomOp:
    """The process-wide KV-write op (stateless, so one instance serves every layer)."""
    from vllm.model_executor.layers.kv_cache import ReshapeAndCache

    return ReshapeAndCache()
