"""Linear layers, replicated or split across tensor-parallel ranks.

Every parameter carries ``weight_loader(param, loaded_weight, shard_id=None)``: it narrows the
full checkpoint tensor to this rank's slice, checks the shape (the error names the tensor and
both shapes) and copies it in (casting to the parameter's dtype). Unquantized GEMMs go through
``dispatch_unquantized_gemm`` (chosen once per layer, at construction).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from vllm.distributed.parallel_state import get_tp_rank, get_tp_size, tp_all_gather, tp_all_reduce
from vllm.model_executor.custom_op import DirectCall
from vllm.model_executor.layers.utils import dispatch_unquantized_gemm


def divide(numerator: int, denominator: int, what: str) -> int:
    if numerator % denominator:
        raise ValueError(f"{what}={numerator} is not divisible by tensor_parallel_size={denominator}")
    return numerator // denominator


def copy_checked(param: torch.Tensor, loaded: torch.Tensor, name: str) -> None:
    """param <- loaded, with a ValueError naming the tensor and both shapes on a mismatch."""
    if tuple(param.shape) != tuple(loaded.shape):
        raise ValueError(
            f"weight {name!r}: checkpoint shape {tuple(loaded.shape)} does not match the "
            f"model's expected shape {tuple(param.shape)}"
        )
    with torch.no_grad():
        param.copy_(loaded)


class LinearBase(DirectCall):
    """y = x @ W.T + b with W [out_per_rank, in_per_rank]."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        bias: bool,
        dtype: torch.dtype | None,
        prefix: str,
    ) -> None:
        super().__init__()
        self.input_size = input_size  # per rank
        self.output_size = output_size  # per rank
        self.prefix = prefix
        self.tp_rank, self.tp_size = get_tp_rank(), get_tp_size()
        self.gemm = dispatch_unquantized_gemm()
        self.weight = self._param(torch.empty(output_size, input_size, dtype=dtype), "weight")
        self.bias = self._param(torch.zeros(output_size, dtype=dtype), "bias") if bias else None

    def _param(self, data: torch.Tensor, name: str) -> nn.Parameter:
        p = nn.Parameter(data, requires_grad=False)
        p.weight_loader = self.weight_loader  # type: ignore[attr-defined]
        p.param_name = f"{self.prefix}.{name}" if self.prefix else name  # type: ignore[attr-defined]
        return p

    def weight_loader(
        self, param: nn.Parameter, loaded_weight: torch.Tensor, shard_id: int | str | None = None
    ) -> None:
        copy_checked(param.data, loaded_weight, param.param_name)  # type: ignore[attr-defined]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gemm(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        bias = self.bias is not None
        return f"in={self.input_size}, out={self.output_size}, bias={bias}, tp={self.tp_size}"


class ReplicatedLinear(LinearBase):
    """Every rank holds the whole weight."""

    def __init__(
        self, input_size: int, output_size: int, bias: bool = False,
        dtype: torch.dtype | None = None, prefix: str = "",
    ) -> None:
        super().__init__(input_size, output_size, bias, dtype, prefix)


class ColumnParallelLinear(LinearBase):
    """Output features split across ranks: W [out / tp, in]. ``gather_output`` all-gathers y."""

    def __init__(
        self, input_size: int, output_size: int, bias: bool = False, gather_output: bool = False,
        dtype: torch.dtype | None = None, prefix: str = "",
    ) -> None:
        tp = get_tp_size()
        self.gather_output = gather_output
        super().__init__(input_size, divide(output_size, tp, f"{prefix} output_size"), bias, dtype, prefix)

    def weight_loader(self, param, loaded_weight, shard_id=None):  # type: ignore[no-untyped-def]
        n = param.shape[0]
        if loaded_weight.shape[0] == n * self.tp_size:  # else copy_checked names the mismatch
            loaded_weight = loaded_weight.narrow(0, self.tp_rank * n, n)
        copy_checked(param.data, loaded_weight, param.param_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gemm(x, self.weight, self.bias)  # [T, out / tp]
        return tp_all_gather(y, dim=-1) if self.gather_output else y


class RowParallelLinear(LinearBase):
    """Input features split across ranks: W [out, in / tp]; partial sums are all-reduced and the
    (unsplit) bias added once, after the reduction."""

    def __init__(
        self, input_size: int, output_size: int, bias: bool = False, reduce_results: bool = True,
        dtype: torch.dtype | None = None, prefix: str = "",
    ) -> None:
        tp = get_tp_size()
        self.reduce_results = reduce_results
        super().__init__(divide(input_size, tp, f"{prefix} input_size"), output_size, bias, dtype, prefix)

    def weight_loader(self, param, loaded_weight, shard_id=None):  # type: ignore[no-untyped-def]
        if param.dim() == 2:
            n = param.shape[1]
            if loaded_weight.dim() == 2 and loaded_weight.shape[1] == n * self.tp_size:
                loaded_weight = loaded_weight.narrow(1, self.tp_rank * n, n)
        copy_checked(param.data, loaded_weight, param.param_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gemm(x, self.weight, None)  # [T, out] partial sum
        if self.reduce_results:
            y = tp_all_reduce(y)
        if self.bias is not None:
            y = y + self.bias
        return y


class MergedColumnParallelLinear(ColumnParallelLinear):
    """Several column-parallel projections of the same input fused into one GEMM (gate_up).

    ``shard_id`` is the index into ``output_sizes`` of the checkpoint tensor being loaded."""

    def __init__(
        self, input_size: int, output_sizes: list[int], bias: bool = False,
        dtype: torch.dtype | None = None, prefix: str = "",
    ) -> None:
        tp = get_tp_size()
        self.output_sizes = [divide(s, tp, f"{prefix} output_sizes[{i}]") for i, s in enumerate(output_sizes)]
        super().__init__(input_size, sum(output_sizes), bias, False, dtype, prefix)

    def weight_loader(self, param, loaded_weight, shard_id=None):  # type: ignore[no-untyped-def]
        if shard_id is None:  # an already-fused checkpoint tensor
            raise ValueError(f"weight {param.param_name!r}: loading a fused tensor needs a shard_id")
        idx = int(shard_id)
        size = self.output_sizes[idx]
        offset = sum(self.output_sizes[:idx])
        if loaded_weight.shape[0] == size * self.tp_size:
            loaded_weight = loaded_weight.narrow(0, self.tp_rank * size, size)
        copy_checked(param.data.narrow(0, offset, size), loaded_weight, f"{param.param_name}[{idx}]")


class QKVParallelLinear(ColumnParallelLinear):
    """q, k and v projections fused: out = [q (Hq*D) | k (Hk*D) | v (Hk*D)] per rank.

    Query heads are split across ranks; with fewer KV heads than ranks each KV head is
    replicated on ``tp / total_kv_heads`` ranks."""

    def __init__(
        self, hidden_size: int, head_size: int, total_num_heads: int,
        total_num_kv_heads: int | None = None, bias: bool = False,
        dtype: torch.dtype | None = None, prefix: str = "",
    ) -> None:
        tp = get_tp_size()
        total_kv = total_num_kv_heads or total_num_heads
        self.head_size = head_size
        self.num_heads = divide(total_num_heads, tp, f"{prefix} num_attention_heads")
        if tp >= total_kv:
            divide(tp, total_kv, f"{prefix} (tp / num_key_value_heads) tp")
            self.num_kv_heads, self.kv_replicas = 1, tp // total_kv
        else:
            self.num_kv_heads, self.kv_replicas = divide(total_kv, tp, f"{prefix} num_key_value_heads"), 1
        self.q_size = self.num_heads * head_size
        self.kv_size = self.num_kv_heads * head_size
        out_total = (self.num_heads + 2 * self.num_kv_heads) * head_size * tp
        super().__init__(hidden_size, out_total, bias, False, dtype, prefix)

    def weight_loader(self, param, loaded_weight, shard_id=None):  # type: ignore[no-untyped-def]
        if shard_id not in ("q", "k", "v"):
            raise ValueError(
                f"weight {param.param_name!r}: shard_id must be 'q', 'k' or 'v', got {shard_id!r}"
            )
        if shard_id == "q":
            offset, size, rank_slot = 0, self.q_size, self.tp_rank
        else:
            offset = self.q_size if shard_id == "k" else self.q_size + self.kv_size
            size, rank_slot = self.kv_size, self.tp_rank // self.kv_replicas
        total = size * (self.tp_size if shard_id == "q" else self.tp_size // self.kv_replicas)
        if loaded_weight.shape[0] == total:
            loaded_weight = loaded_weight.narrow(0, rank_slot * size, size)
        copy_checked(param.data.narrow(0, offset, size), loaded_weight, f"{param.param_name}[{shard_id}]")

    def split_qkv(self, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # qkv [T, q_size + 2 * kv_size] -> q [T, q_size], k/v [T, kv_size]
        return qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
