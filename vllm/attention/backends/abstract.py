"""The attention backend interface and the per-step attention metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch


@dataclass
class AttentionMetadata:
    """Built once per step by the model runner from the flat batch (S sequences, T tokens).

    Query token j of sequence i is flat token ``query_start_loc[i] + j`` and sits at position
    ``seq_lens[i] - q_len_i + j``; it attends to KV positions <= its own. Tokens at index
    >= ``num_actual_tokens`` are padding (e.g. a CUDA-graph bucket): they are neither written to
    the cache (their slot is -1) nor attended; their output rows are zero.
    """

    num_actual_tokens: int
    max_query_len: int
    max_seq_len: int
    query_start_loc: torch.Tensor  # int32 [S+1] on device
    seq_lens: torch.Tensor  # int32 [S] on device: context length incl. new tokens
    block_tables: torch.Tensor  # int32 [S, max_blocks] on device
    slot_mapping: torch.Tensor  # int64 [T] on device (-1: don't write)
    query_start_loc_cpu: torch.Tensor  # int32 [S+1] host copy
    seq_lens_cpu: torch.Tensor  # int32 [S] host copy

    @property
    def num_seqs(self) -> int:
        return int(self.seq_lens.shape[0])


class AttentionBackend:
    """One per file in ``backends/``. Stateless: everything is a static/class method.

    KV cache layout (every backend): ``(2, num_blocks, block_size, num_kv_heads, head_size)``,
    ``[0]`` = keys, ``[1]`` = values, so ``cache[0][b, s]`` holds the key of slot
    ``b * block_size + s``.
    """

    name: ClassVar[str] = "abstract"
    # CustomOp method (forward_<method>) of `paged_attention` this backend corresponds to.
    method: ClassVar[str] = "native"

    @staticmethod
    def get_kv_cache_shape(
        num_blocks: int, block_size: int, num_kv_heads: int, head_size: int
    ) -> tuple[int, ...]:
        return (2, num_blocks, block_size, num_kv_heads, head_size)

    @staticmethod
    def default_block_size() -> int:
        return 16

    @staticmethod
    def supported_head_sizes() -> tuple[int, ...]:
        return ()

    @staticmethod
    def decode_context_buckets() -> tuple[int, ...]:
        """Context lengths below which this backend's decode kernel choice changes (it plans
        from ``max_seq_len``): decode graphs are captured once per bucket (plus one for any
        length) and replayed by the batch's longest context. Empty: one graph per size."""
        return ()

    @staticmethod
    def supported_dtypes() -> tuple[torch.dtype, ...]:
        return (torch.float32, torch.float16, torch.bfloat16)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether this backend's kernels can run in this process, and why (not)."""
        return True, "reference PyTorch implementation"

    @classmethod
    def supports(cls, head_size: int, dtype: torch.dtype) -> tuple[bool, str]:
        """Whether this backend handles ``head_size``/``dtype``, and why not."""
        sizes = cls.supported_head_sizes()
        if sizes and head_size not in sizes:
            return False, f"head_size={head_size} not in {list(sizes)}"
        if dtype not in cls.supported_dtypes():
            return False, f"dtype={dtype} not in {[str(d) for d in cls.supported_dtypes()]}"
        return True, "ok"

    # ---- the two steps of one attention call -----------------------------------------
    @classmethod
    def write_kv(
        cls, key: torch.Tensor, value: torch.Tensor, kv_cache: torch.Tensor,
        slot_mapping: torch.Tensor,
    ) -> None:
        """Store new keys/values [T, Hk, D] at their slots (through the ReshapeAndCache op)."""
        from vllm.attention.paged_attention import reshape_and_cache_op

        reshape_and_cache_op()(key, value, kv_cache[0], kv_cache[1], slot_mapping)

    @classmethod
    def attend(
        cls, out: torch.Tensor, query: torch.Tensor, kv_cache: torch.Tensor,
        meta: AttentionMetadata, scale: float,
    ) -> None:
        """out = causal paged attention of query [num_actual_tokens, Hq, D] over the cache."""
        raise NotImplementedError

    @classmethod
    def forward(
        cls,
        query: torch.Tensor,  # [T, Hq, D]
        key: torch.Tensor,  # [T, Hk, D]
        value: torch.Tensor,  # [T, Hk, D]
        kv_cache: torch.Tensor,  # (2, num_blocks, block_size, Hk, D)
        meta: AttentionMetadata,
        scale: float,
    ) -> torch.Tensor:  # [T, Hq, D]
        """Write this step's K/V into the cache, then attend over the cached context."""
        n = meta.num_actual_tokens
        if n == query.shape[0]:  # no padding rows (every eager step): no slicing, no zeroing
            cls.write_kv(key, value, kv_cache, meta.slot_mapping)
            out = torch.empty(query.shape, dtype=query.dtype, device=query.device)
            cls.attend(out, query, kv_cache, meta, scale)
            return out
        cls.write_kv(key[:n], value[:n], kv_cache, meta.slot_mapping[:n])
        # The kernels write every row of out[:n]; only padding rows need zeros (no full memset).
        out = torch.empty_like(query)
        if n < out.shape[0]:
            out[n:].zero_()
        # Kernels require query_start_loc[-1] == query.size(0): pass only the real tokens.
        cls.attend(out[:n], query[:n], kv_cache, meta, scale)
        return out
