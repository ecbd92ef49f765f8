"""Llama (and Mistral): RMSNorm, rotary attention with GQA, gated SiLU MLP.

The building blocks here are reused by Qwen2 (qkv bias), Qwen3 (per-head q/k norm) and the MoE
models (their own MLP)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn as nn

from vllm.attention.layer import Attention
from vllm.distributed.parallel_state import get_tp_size
from vllm.model_executor.custom_op import DirectCall
from vllm.model_executor.layers.activation import get_gated_act_fn
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.layers.linear import MergedColumnParallelLinear, QKVParallelLinear, RowParallelLinear
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.vocab_embedding import ParallelLMHead, VocabParallelEmbedding
from vllm.model_executor.models.utils import (
    LLAMA_STACKED,
    get_shared_rope,
    head_dim,
    load_by_name,
    rope_config,
    shared_rope_scope,
)


class LlamaMLP(DirectCall):
    def __init__(
        self, hidden_size: int, intermediate_size: int, hidden_act: str, bias: bool,
        dtype: torch.dtype, prefix: str,
    ) -> None:
        super().__init__()
        self.gate_up_proj = MergedColumnParallelLinear(
            hidden_size, [intermediate_size] * 2, bias, dtype, f"{prefix}.gate_up_proj"
        )
        self.down_proj = RowParallelLinear(
            intermediate_size, hidden_size, bias, dtype=dtype, prefix=f"{prefix}.down_proj"
        )
        self.act_fn = get_gated_act_fn(hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_up_proj(x)))  # [T, H]


class LlamaAttention(DirectCall):
    """qkv -> (optional per-head q/k RMSNorm) -> rope -> attention -> o_proj."""

    def __init__(
        self, config: Any, dtype: torch.dtype, prefix: str,
        qkv_bias: bool = False, o_bias: bool = False, qk_norm: bool = False,
    ) -> None:
        super().__init__()
        tp = get_tp_size()
        self.head_dim = head_dim(config)
        total_heads = config.num_attention_heads
        total_kv = getattr(config, "num_key_value_heads", None) or total_heads
        self.qkv_proj = QKVParallelLinear(
            config.hidden_size, self.head_dim, total_heads, total_kv, qkv_bias, dtype, f"{prefix}.qkv_proj"
        )
        self.o_proj = RowParallelLinear(
            total_heads * self.head_dim, config.hidden_size, o_bias, dtype=dtype, prefix=f"{prefix}.o_proj"
        )
        self.num_heads = total_heads // tp
        self.num_kv_heads = self.qkv_proj.num_kv_heads
        self.q_norm = self.k_norm = None
        if qk_norm:
            self.q_norm = RMSNorm(self.head_dim, config.rms_norm_eps, dtype)
            self.k_norm = RMSNorm(self.head_dim, config.rms_norm_eps, dtype)
        theta, scaling = rope_config(config)
        rotary_dim = int(self.head_dim * getattr(config, "partial_rotary_factor", 1.0))
        self.rotary_emb = get_shared_rope(
            self.head_dim, rotary_dim, config.max_position_embeddings, theta, True, scaling, dtype,
        )  # cache in the model dtype, like HF's cos/sin
        self.attn = Attention(
            self.num_heads, self.head_dim, self.head_dim**-0.5, self.num_kv_heads, prefix=f"{prefix}.attn"
        )

    def _head_norm(self, x: torch.Tensor, norm: RMSNorm) -> torch.Tensor:
        t = x.shape[0]
        return norm(x.reshape(t, -1, self.head_dim).contiguous()).reshape(t, -1)  # [T, h*D]

    def forward(self, positions: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_proj.split_qkv(self.qkv_proj(hidden))  # [T, Hq*D], [T, Hk*D] x2
        if self.q_norm is not None and self.k_norm is not None:
            q, k = self._head_norm(q, self.q_norm), self._head_norm(k, self.k_norm)
        # q/k/v stay strided views of the fused output (rows of Hq*D, Hk*D, Hk*D inside a row of
        # qkv): the kernels take a token stride, and rotary rotates q and k in place.
        q, k = self.rotary_emb(positions, q, k)
        return self.o_proj(self.attn(q, k, v))  # [T, H]


class LlamaDecoderLayer(DirectCall):
    def __init__(self, config: Any, dtype: torch.dtype, prefix: str, layer_idx: int = 0) -> None:
        super().__init__()
        self.self_attn = self.make_attention(config, dtype, f"{prefix}.self_attn")
        self.mlp = self.make_mlp(config, dtype, f"{prefix}.mlp", layer_idx)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, dtype)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, dtype)

    def make_attention(self, config: Any, dtype: torch.dtype, prefix: str) -> nn.Module:
        bias = bool(getattr(config, "attention_bias", False))
        return LlamaAttention(config, dtype, prefix, qkv_bias=bias, o_bias=bias)

    def make_mlp(self, config: Any, dtype: torch.dtype, prefix: str, layer_idx: int) -> nn.Module:
        bias = bool(getattr(config, "mlp_bias", False))
        return LlamaMLP(config.hidden_size, config.intermediate_size, config.hidden_act, bias, dtype, prefix)

    def forward(
        self, positions: torch.Tensor, hidden: torch.Tensor, residual: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if residual is None:
            residual = hidden
            hidden = self.input_layernorm(hidden)
        else:
            hidden, residual = self.input_layernorm(hidden, residual)
        hidden = self.self_attn(positions, hidden)
        hidden, residual = self.post_attention_layernorm(hidden, residual)
        return self.mlp(hidden), residual


class LlamaModel(nn.Module):
    def __init__(
        self, config: Any, dtype: torch.dtype, prefix: str,
        layer_cls: Callable[..., nn.Module] = LlamaDecoderLayer,
    ) -> None:
        super().__init__()
        self.embed_tokens = VocabParallelEmbedding(
            config.vocab_size, config.hidden_size, dtype, prefix=f"{prefix}.embed_tokens"
        )
        self.layers = nn.ModuleList(
            layer_cls(config, dtype, f"{prefix}.layers.{i}", i) for i in range(config.num_hidden_layers)
        )
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps, dtype)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        hidden = self.embed_tokens(input_ids)  # [T, H]
        residual = None
        for layer in self.layers:
            hidden, residual = layer(positions, hidden, residual)
        hidden, _ = self.norm(hidden, residual)
        return hidden


class LlamaForCausalLM(nn.Module):
    layer_cls: Callable[..., nn.Module] = LlamaDecoderLayer
    stacked = LLAMA_STACKED

    def __init__(self, hf_config: Any, dtype: torch.dtype = torch.float32, prefix: str = "") -> None:
        super().__init__()
        self.config = hf_config
        self.dtype = dtype
        with shared_rope_scope():  # one cos/sin cache for all layers
            self.model = LlamaModel(hf_config, dtype, "model", type(self).layer_cls)
        self.tie_word_embeddings = bool(getattr(hf_config, "tie_word_embeddings", False))
        self.lm_head = ParallelLMHead(
            hf_config.vocab_size, hf_config.hidden_size, dtype=dtype, prefix="lm_head"
        )
        if self.tie_word_embeddings:
            self.lm_head.tie_weights(self.model.embed_tokens)
        self.logits_processor = LogitsProcessor(hf_config.vocab_size)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, positions)  # [T] -> [T, H]

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.logits_processor(self.lm_head, hidden)  # [N, H] -> [N, vocab] fp32

    def skip_weight(self, name: str) -> bool:
        if "rotary_emb.inv_freq" in name:
            return True
        return self.tie_word_embeddings and name.startswith("lm_head.")

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        return load_by_name(self, weights, self.stacked, skip=self.skip_weight)
