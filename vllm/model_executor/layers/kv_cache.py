"""Writing new keys/values into the paged KV cache by slot mapping."""

from __future__ import annotations

import torch

from vllm import _custom_ops as ops
from vllm.model_executor.custom_op import CustomOp


@CustomOp.register("reshape_and_cache")
class ReshapeAndCache(CustomOp):
    """cache[slot // block_size, slot % block_size] = kv for each token; slots < 0 are skipped.

    key/value: [T, Hk, D]; key_cache/value_cache: [num_blocks, block_size, Hk, D];
    slot_mapping: int64 [T].
    """

    def forward_native(
        self,
        key: torch.Tensor,
        value: torch.Tensor,
        key_cache: torch.Tensor,
        value_cache: torch.Tensor,
        slot_mapping: torch.Tensor,
    ) -> None:
        valid = slot_mapping >= 0
        slots = slot_mapping[valid]
        flat_k = key_cache.view(-1, *key_cache.shape[2:])  # [num_blocks * block_size, Hk, D]
        flat_v = value_cache.view(-1, *value_cache.shape[2:])
        flat_k.index_copy_(0, slots, key[valid].to(key_cache.dtype))
        flat_v.index_copy_(0, slots, value[valid].to(value_cache.dtype))

    def forward_cpu(self, key, value, key_cache, value_cache, slot_mapping):  # type: ignore[no-untyped-def]
        ops.reshape_and_cache(key, value, key_cache, value_cache, slot_mapping, ns=ops.CPU)

    def forward_cuda(self, key, value, key_cache, value_cache, slot_mapping):  # type: ignore[no-untyped-def]
        ops.reshape_and_cache(key, value, key_cache, value_cache, slot_mapping, ns=ops.CUDA)

    def forward_hip(self, key, value, key_cache, value_cache, slot_mapping):  # type: ignore[no-untyped-def]
        ops.reshape_and_cache(key, value, key_cache, value_cache, slot_mapping, ns=ops.CUDA)
