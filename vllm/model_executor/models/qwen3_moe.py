"""Qwen3-MoE: Qwen3 attention; sparse MoE MLP (softmax top-k router, optional renormalisation)
on every ``decoder_sparse_step``-th layer not in ``mlp_only_layers``, dense MLP elsewhere."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn as nn

from vllm.model_executor.layers.fused_moe import FusedMoE
from vllm.model_executor.layers.linear import ReplicatedLinear
from vllm.model_executor.models.llama import LlamaMLP
from vllm.model_executor.models.qwen3 import Qwen3DecoderLayer, Qwen3ForCausalLM
from vllm.model_executor.models.utils import load_by_name

# experts.{e}.{gate|up|down}_proj.weight (per-expert checkpoints) -> FusedMoE shard ids
_EXPERT = re.compile(r"^(.*\.experts)\.(\d+)\.(\w+)\.weight$")
_STACKED_EXPERT = re.compile(r"^(.*\.experts)\.(gate_up_proj|down_proj)$")


class SparseMoeBlock(nn.Module):
    """router (gate) -> FusedMoE. hidden [T, H] -> [T, H]."""

    def __init__(
        self, hidden_size: int, num_experts: int, top_k: int, intermediate_size: int,
        renormalize: bool, dtype: torch.dtype, prefix: str,
    ) -> None:
        super().__init__()
        self.gate = ReplicatedLinear(hidden_size, num_experts, False, dtype, f"{prefix}.gate")
        self.experts = FusedMoE(
            num_experts, top_k, hidden_size, intermediate_size, renormalize, dtype, f"{prefix}.experts"
        )

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.experts(hidden, self.gate(hidden))  # router logits [T, E]


class Qwen3MoeDecoderLayer(Qwen3DecoderLayer):
    def make_mlp(self, config: Any, dtype: torch.dtype, prefix: str, layer_idx: int) -> nn.Module:
        sparse = (
            layer_idx not in (getattr(config, "mlp_only_layers", None) or [])
            and config.num_experts > 0
            and (layer_idx + 1) % config.decoder_sparse_step == 0
        )
        if not sparse:
            return LlamaMLP(
                config.hidden_size, config.intermediate_size, config.hidden_act, False, dtype, prefix
            )
        return SparseMoeBlock(
            config.hidden_size, config.num_experts, config.num_experts_per_tok,
            config.moe_intermediate_size, bool(config.norm_topk_prob), dtype, prefix,
        )


def load_expert_weight(name: str, tensor: torch.Tensor, params: dict[str, nn.Parameter],
                       shard_names: dict[str, str]) -> str | None:
    """Route one expert tensor (per-expert or already stacked) into FusedMoE's w13 / w2."""
    m = _EXPERT.match(name)
    if m is not None and m.group(3) in shard_names:
        shard = shard_names[m.group(3)]
        target = f"{m.group(1)}.{'w2' if shard == 'w2' else 'w13'}"
        if target in params:
            params[target].weight_loader(params[target], tensor, shard, int(m.group(2)))  # type: ignore[attr-defined]
            return target
    m = _STACKED_EXPERT.match(name)
    if m is not None:
        target = f"{m.group(1)}.{'w13' if m.group(2) == 'gate_up_proj' else 'w2'}"
        if target in params:
            params[target].weight_loader(params[target], tensor, target.rsplit(".", 1)[1])  # type: ignore[attr-defined]
            return target
    return None


class Qwen3MoeForCausalLM(Qwen3ForCausalLM):
    layer_cls = Qwen3MoeDecoderLayer
    expert_shards = {"gate_proj": "w1", "up_proj": "w3", "down_proj": "w2"}

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        def special(name: str, tensor: torch.Tensor, params: dict[str, nn.Parameter]) -> str | None:
            return load_expert_weight(name, tensor, params, self.expert_shards)

        return load_by_name(self, weights, self.stacked, skip=self.skip_weight, special=special)
