"""Mixture-of-experts: router top-k selection and the ``fused_moe`` CustomOp.

Expert weights are stored stacked: ``w13 [E, 2I, H]`` (gate rows, then up rows) and
``w2 [E, H, I]``; expert(x) = w2 @ (silu(w1 x) * (w3 x)). With tensor parallelism the
intermediate dimension I is split across ranks and the outputs are all-reduced.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vllm import _custom_ops as ops
from vllm.distributed.parallel_state import get_tp_rank, get_tp_size, tp_all_reduce
from vllm.model_executor.custom_op import CustomOp
from vllm.model_executor.layers.linear import copy_checked, divide


def select_experts(
    router_logits: torch.Tensor, top_k: int, renormalize: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """router_logits [T, E] -> (topk_weights [T, k] float32, topk_ids [T, k] int64).

    softmax in float32 over all experts, take the top k, optionally renormalise them to sum 1."""
    if not 0 < top_k <= router_logits.shape[-1]:
        raise ValueError(f"num_experts_per_tok={top_k} must be in [1, num_experts={router_logits.shape[-1]}]")
    probs = torch.softmax(router_logits.float(), dim=-1)  # [T, E]
    weights, ids = torch.topk(probs, top_k, dim=-1)  # [T, k]
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, ids


def fused_moe_reference(
    hidden: torch.Tensor, w13: torch.Tensor, w2: torch.Tensor,
    topk_weights: torch.Tensor, topk_ids: torch.Tensor,
) -> torch.Tensor:
    """Per-expert loop in PyTorch: the spec of the kernel. hidden [T, H] -> [T, H]."""
    out = torch.zeros_like(hidden)  # [T, H]
    inter = w2.shape[-1]
    for e in torch.unique(topk_ids).tolist():
        token_idx, slot = torch.where(topk_ids == e)  # rows routed to expert e
        x = hidden[token_idx]  # [n, H]
        gate_up = F.linear(x, w13[e])  # [n, 2I]
        y = F.linear(F.silu(gate_up[:, :inter]) * gate_up[:, inter:], w2[e])  # [n, H]
        y = y * topk_weights[token_idx, slot, None].to(y.dtype)
        out.index_add_(0, token_idx, y.to(out.dtype))
    return out


@CustomOp.register("fused_moe")
class FusedMoE(CustomOp):
    """Experts of one MoE block. forward(hidden [T, H], router_logits [T, E]) -> [T, H]."""

    def __init__(
        self, num_experts: int, top_k: int, hidden_size: int, intermediate_size: int,
        renormalize: bool = True, dtype: torch.dtype | None = None, prefix: str = "",
    ) -> None:
        super().__init__()
        self.tp_rank, self.tp_size = get_tp_rank(), get_tp_size()
        self.num_experts, self.top_k, self.renormalize = num_experts, top_k, renormalize
        self.prefix = prefix
        self.inter = divide(intermediate_size, self.tp_size, f"{prefix} moe_intermediate_size")
        self.w13 = self._param(torch.empty(num_experts, 2 * self.inter, hidden_size, dtype=dtype), "w13")
        self.w2 = self._param(torch.empty(num_experts, hidden_size, self.inter, dtype=dtype), "w2")
        ns = {"cpu": ops.CPU, "cuda": ops.CUDA, "hip": ops.CUDA}.get(self.dispatch.method)
        self._kernel_ns = ns if ns is not None and ops.has_op(ns, "fused_moe") else None
        # Both the kernels and the reference read per-expert token counts on the host, which a
        # device graph cannot record: the model runner keeps MoE models' decode eager.
        self.graph_safe = False

    def _param(self, data: torch.Tensor, name: str) -> nn.Parameter:
        p = nn.Parameter(data, requires_grad=False)
        p.weight_loader = self.weight_loader  # type: ignore[attr-defined]
        p.param_name = f"{self.prefix}.{name}"  # type: ignore[attr-defined]
        return p

    def weight_loader(
        self, param: nn.Parameter, loaded_weight: torch.Tensor, shard_id: str | None = None,
        expert_id: int | None = None,
    ) -> None:
        """shard_id: 'w1' (gate [I, H]), 'w3' (up [I, H]) or 'w2' (down [H, I]) of ``expert_id``;
        or 'w13' / 'w2' with expert_id None for an already-stacked [E, ...] tensor."""
        name, n, r = param.param_name, self.inter, self.tp_rank  # type: ignore[attr-defined]
        if expert_id is None:
            if shard_id == "w13":  # [E, 2I_total, H]: take this rank's rows of gate and of up
                half = loaded_weight.shape[1] // 2
                g, u = loaded_weight[:, :half], loaded_weight[:, half:]
                if half == n * self.tp_size:
                    g, u = g.narrow(1, r * n, n), u.narrow(1, r * n, n)
                loaded_weight = torch.cat([g, u], dim=1)
            elif loaded_weight.shape[-1] == n * self.tp_size:
                loaded_weight = loaded_weight.narrow(2, r * n, n)
            copy_checked(param.data, loaded_weight, name)
            return
        if not 0 <= expert_id < self.num_experts:
            raise ValueError(f"weight {name!r}: expert_id {expert_id} out of range [0, {self.num_experts})")
        if shard_id in ("w1", "w3"):
            if loaded_weight.shape[0] == n * self.tp_size:
                loaded_weight = loaded_weight.narrow(0, r * n, n)
            dst = param.data[expert_id].narrow(0, 0 if shard_id == "w1" else n, n)
        elif shard_id == "w2":
            if loaded_weight.shape[-1] == n * self.tp_size:
                loaded_weight = loaded_weight.narrow(1, r * n, n)
            dst = param.data[expert_id]
        else:
            raise ValueError(f"weight {name!r}: shard_id must be 'w1', 'w2' or 'w3', got {shard_id!r}")
        copy_checked(dst, loaded_weight, f"{name}[{expert_id}].{shard_id}")

    def forward_native(self, hidden: torch.Tensor, router_logits: torch.Tensor) -> torch.Tensor:
        weights, ids = select_experts(router_logits, self.top_k, self.renormalize)
        out = fused_moe_reference(hidden, self.w13, self.w2, weights.to(hidden.dtype), ids)
        return tp_all_reduce(out)

    def _forward_kernel(self, hidden: torch.Tensor, router_logits: torch.Tensor) -> torch.Tensor:
        if self._kernel_ns is None:  # extension built without this op
            return self.forward_native(hidden, router_logits)
        weights, ids = select_experts(router_logits, self.top_k, self.renormalize)
        out = torch.empty_like(hidden)
        ops.fused_moe(out, hidden.contiguous(), self.w13, self.w2, weights, ids, ns=self._kernel_ns)
        return tp_all_reduce(out)

    def forward_cpu(self, hidden: torch.Tensor, router_logits: torch.Tensor) -> torch.Tensor:
        return self._forward_kernel(hidden, router_logits)

    def forward_cuda(self, hidden: torch.Tensor, router_logits: torch.Tensor) -> torch.Tensor:
        return self._forward_kernel(hidden, router_logits)

    forward_hip = forward_cuda

    def extra_repr(self) -> str:
        return f"experts={self.num_experts}, top_k={self.top_k}, inter_per_rank={self.inter}"
