"""Qwen3: Llama with per-head RMSNorm of q and k before rope (and an explicit head_dim)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from vllm.model_executor.models.llama import LlamaAttention, LlamaDecoderLayer, LlamaForCausalLM


class Qwen3DecoderLayer(LlamaDecoderLayer):
    def make_attention(self, config: Any, dtype: torch.dtype, prefix: str) -> nn.Module:
        bias = bool(getattr(config, "attention_bias", False))
        return LlamaAttention(config, dtype, prefix, qkv_bias=bias, o_bias=bias, qk_norm=True)


class Qwen3ForCausalLM(LlamaForCausalLM):
    layer_cls = Qwen3DecoderLayer
