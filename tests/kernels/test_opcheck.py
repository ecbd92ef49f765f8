"""torch.library.opcheck on every op `_C_cpu` registers (schema, fake impl, dispatch)."""

from __future__ import annotations

import pytest
import torch

from vllm import _custom_ops as ops

from .attention_ref import make_batch
from .conftest import requires_cpu_ext

pytestmark = requires_cpu_ext


def _cases() -> dict[str, tuple]:
    x = torch.randn(5, 48)
    kv = torch.randn(3, 2, 16)
    slots = torch.tensor([7, -1, 2])
    b = make_batch([1, 4], [9, 4], 4, 2, 16, 16, torch.float32)
    attn = (torch.empty_like(b["query"]), b["query"], b["key_cache"], b["value_cache"],
            b["block_tables"], b["seq_lens"], b["query_start_loc"], 4, 9, 0.25)
    topk_w, topk_ids = torch.rand(5, 2), torch.randint(0, 3, (5, 2))
    return {
        "rms_norm": (torch.empty(5, 48), x, torch.randn(48), 1e-6),
        "fused_add_rms_norm": (x.clone(), torch.randn(5, 48), torch.randn(48), 1e-6),
        "silu_and_mul": (torch.empty(5, 24), x),
        "gelu_and_mul": (torch.empty(5, 24), x),
        "gelu_tanh_and_mul": (torch.empty(5, 24), x),
        "rotary_embedding": (torch.arange(5), torch.randn(5, 64), torch.randn(5, 32), 16,
                             torch.randn(10, 8), True),
        "reshape_and_cache": (kv, kv + 1, torch.zeros(2, 8, 2, 16), torch.zeros(2, 8, 2, 16), slots),
        "paged_attention": attn,
        "fused_moe": (torch.empty(5, 48), x, torch.randn(3, 32, 48), torch.randn(3, 48, 16),
                      topk_w, topk_ids),
    }


def test_every_op_has_a_case() -> None:
    registered = {name for name in ops.MUTATING_OPS if ops.has_op(ops.CPU, name)}
    assert registered == set(_cases()), "every registered _C_cpu op needs an opcheck case"


@pytest.mark.parametrize("name", sorted(_cases()))
def test_opcheck(name: str) -> None:
    args = _cases()[name]
    torch.library.opcheck(getattr(torch.ops._C_cpu, name).default, args)


def test_rotary_opcheck_without_key() -> None:
    args = (torch.arange(5), torch.randn(5, 64), None, 16, torch.randn(10, 8), False)
    torch.library.opcheck(torch.ops._C_cpu.rotary_embedding.default, args)
