"""GPT-2: learned positions, pre-LayerNorm blocks, gelu_new MLP, tied LM head.

HF stores GPT-2's projections as Conv1D weights ``[in, out]``; they are transposed on load, and
the fused ``c_attn`` [H, 3H] is split into our q/k/v shards."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn as nn

from vllm.attention.layer import Attention
from vllm.distributed.parallel_state import get_tp_size
from vllm.model_executor.layers.activation import get_act_fn
from vllm.model_executor.layers.layernorm import LayerNorm
from vllm.model_executor.layers.linear import ColumnParallelLinear, QKVParallelLinear, RowParallelLinear
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.vocab_embedding import ParallelLMHead, VocabParallelEmbedding
from vllm.model_executor.models.utils import load_by_name

_CONV1D = (".c_attn.weight", ".c_proj.weight", ".c_fc.weight")


class GPT2Attention(nn.Module):
    def __init__(self, config: Any, dtype: torch.dtype, prefix: str) -> None:
        super().__init__()
        hidden, heads = config.hidden_size, config.num_attention_heads
        self.head_dim = hidden // heads
        self.c_attn = QKVParallelLinear(hidden, self.head_dim, heads, heads, True, dtype, f"{prefix}.c_attn")
        self.c_proj = RowParallelLinear(hidden, hidden, True, dtype=dtype, prefix=f"{prefix}.c_proj")
        self.attn = Attention(
            heads // get_tp_size(), self.head_dim, self.head_dim**-0.5, prefix=f"{prefix}.attn"
        )

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        q, k, v = self.c_attn.split_qkv(self.c_attn(hidden))  # [T, H/tp] x3
        return self.c_proj(self.attn(q.contiguous(), k.contiguous(), v.contiguous()))


class GPT2MLP(nn.Module):
    def __init__(self, config: Any, dtype: torch.dtype, prefix: str) -> None:
        super().__init__()
        inner = config.n_inner or 4 * config.hidden_size
        hidden = config.hidden_size
        self.c_fc = ColumnParallelLinear(hidden, inner, True, dtype=dtype, prefix=f"{prefix}.c_fc")
        self.c_proj = RowParallelLinear(inner, hidden, True, dtype=dtype, prefix=f"{prefix}.c_proj")
        self.act = get_act_fn(config.activation_function)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.act(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, config: Any, dtype: torch.dtype, prefix: str) -> None:
        super().__init__()
        eps = config.layer_norm_epsilon
        self.ln_1 = LayerNorm(config.hidden_size, eps, dtype)
        self.attn = GPT2Attention(config, dtype, f"{prefix}.attn")
        self.ln_2 = LayerNorm(config.hidden_size, eps, dtype)
        self.mlp = GPT2MLP(config, dtype, f"{prefix}.mlp")

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.attn(self.ln_1(hidden))
        return hidden + self.mlp(self.ln_2(hidden))


class GPT2Model(nn.Module):
    def __init__(self, config: Any, dtype: torch.dtype, prefix: str) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.wte = VocabParallelEmbedding(config.vocab_size, hidden, dtype, prefix=f"{prefix}.wte")
        self.wpe = VocabParallelEmbedding(
            config.max_position_embeddings, config.hidden_size, dtype, prefix=f"{prefix}.wpe"
        )
        self.h = nn.ModuleList(
            GPT2Block(config, dtype, f"{prefix}.h.{i}") for i in range(config.num_hidden_layers)
        )
        self.ln_f = LayerNorm(config.hidden_size, config.layer_norm_epsilon, dtype)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        hidden = self.wte(input_ids) + self.wpe(positions)  # [T, H]
        for block in self.h:
            hidden = block(hidden)
        return self.ln_f(hidden)


class GPT2LMHeadModel(nn.Module):
    def __init__(self, hf_config: Any, dtype: torch.dtype = torch.float32, prefix: str = "") -> None:
        super().__init__()
        self.config = hf_config
        self.transformer = GPT2Model(hf_config, dtype, "transformer")
        self.tie_word_embeddings = bool(getattr(hf_config, "tie_word_embeddings", True))
        self.lm_head = ParallelLMHead(
            hf_config.vocab_size, hf_config.hidden_size, dtype=dtype, prefix="lm_head"
        )
        if self.tie_word_embeddings:
            self.lm_head.tie_weights(self.transformer.wte)
        self.logits_processor = LogitsProcessor(hf_config.vocab_size)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.transformer(input_ids, positions)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.logits_processor(self.lm_head, hidden)

    def _skip(self, name: str) -> bool:
        if name.endswith((".attn.bias", ".attn.masked_bias")):  # causal-mask buffers
            return True
        return self.tie_word_embeddings and name.startswith("lm_head.")

    @staticmethod
    def _rename(name: str) -> str:
        return name if name.startswith(("transformer.", "lm_head.")) else f"transformer.{name}"

    @staticmethod
    def _special(name: str, tensor: torch.Tensor, params: dict[str, nn.Parameter]) -> str | None:
        if name.endswith(_CONV1D):
            tensor = tensor.t()  # Conv1D [in, out] -> [out, in]
        if ".c_attn." in name and name in params:
            param = params[name]
            for shard, part in zip("qkv", tensor.chunk(3, dim=0), strict=False):
                param.weight_loader(param, part, shard)  # type: ignore[attr-defined]
            return name
        if name.endswith(_CONV1D) and name in params:
            params[name].weight_loader(params[name], tensor)  # type: ignore[attr-defined]
            return name
        return None

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        return load_by_name(self, weights, skip=self._skip, rename=self._rename, special=self._special)
