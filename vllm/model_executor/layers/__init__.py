"""Layers. Importing this package registers every in-tree CustomOp."""

from vllm.attention import paged_attention  # noqa: F401
from vllm.model_executor.layers import (  # noqa: F401
    activation,
    fused_moe,
    kv_cache,
    layernorm,
    linear,
    logits_processor,
    rotary_embedding,
    top_k_top_p,
    vocab_embedding,
)
