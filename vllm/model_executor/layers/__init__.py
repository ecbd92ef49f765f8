"""Layers. Importing this package registers every in-tree CustomOp."""

from vllm.model_executor.layers import activation, kv_cache, layernorm, rotary_embedding  # noqa: F401
