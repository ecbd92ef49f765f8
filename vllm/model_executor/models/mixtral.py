"""Mixtral: Llama attention; every MLP is a sparse MoE (top-k softmax, always renormalised)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn as nn

from vllm.model_executor.models.llama import LlamaDecoderLayer, LlamaForCausalLM
from vllm.model_executor.models.qwen3_moe import SparseMoeBlock, load_expert_weight
from vllm.model_executor.models.utils import load_by_name


class MixtralDecoderLayer(LlamaDecoderLayer):
    def make_mlp(self, config: Any, dtype: torch.dtype, prefix: str, layer_idx: int) -> nn.Module:
        return SparseMoeBlock(
            config.hidden_size, config.num_local_experts, config.num_experts_per_tok,
            config.intermediate_size, True, dtype, prefix,
        )


class MixtralForCausalLM(LlamaForCausalLM):
    layer_cls = MixtralDecoderLayer
    expert_shards = {"w1": "w1", "w3": "w3", "w2": "w2"}

    @staticmethod
    def _rename(name: str) -> str:
        return name.replace(".block_sparse_moe.", ".mlp.")

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        def special(name: str, tensor: torch.Tensor, params: dict[str, nn.Parameter]) -> str | None:
            return load_expert_weight(name, tensor, params, self.expert_shards)

        return load_by_name(
            self, weights, self.stacked, skip=self.skip_weight, rename=self._rename, special=special
        )
