"""Qwen2: Llama with a bias on the q/k/v projections (not on o_proj)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from vllm.model_executor.models.llama import LlamaAttention, LlamaDecoderLayer, LlamaForCausalLM


class Qwen2DecoderLayer(LlamaDecoderLayer):
    def make_attention(self, config: Any, dtype: torch.dtype, prefix: str) -> nn.Module:
        return LlamaAttention(config, dtype, prefix, qkv_bias=True, o_bias=False)


class Qwen2ForCausalLM(LlamaForCausalLM):
    layer_cls = Qwen2DecoderLayer
