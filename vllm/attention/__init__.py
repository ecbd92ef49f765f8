"""Attention: the `Attention` layer, one backend per file in `backends/`, and the selector.

Kept import-light: `vllm.model_executor.layers` imports `vllm.attention.paged_attention` to
register the `paged_attention` CustomOp, so nothing here may import the layers package eagerly.
"""
