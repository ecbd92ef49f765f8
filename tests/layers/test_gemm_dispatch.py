"""The unquantized GEMM dispatch point and its user override."""

from __future__ import annotations

import sys
import types

import pytest
import torch
import torch.nn.functional as F

from vllm.model_executor.layers import utils as gemm_utils
from vllm.model_executor.layers.linear import ReplicatedLinear
from vllm.model_executor.layers.utils import dispatch_unquantized_gemm, set_gemm_override

CALLS: list[tuple[int, ...]] = []


def counting_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    CALLS.append(tuple(x.shape))
    return F.linear(x, weight, bias) + 1.0  # visibly different from the default


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = types.ModuleType("h4_gemm_plugin")
    mod.gemm = counting_gemm  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "h4_gemm_plugin", mod)
    monkeypatch.delenv("VLLM_GEMM_OVERRIDE", raising=False)
    monkeypatch.setattr(gemm_utils, "_override", None)
    CALLS.clear()


def _layer() -> ReplicatedLinear:
    torch.manual_seed(0)
    layer = ReplicatedLinear(8, 4, bias=True)
    layer.weight.data.normal_()
    layer.bias.data.normal_()
    return layer


def test_default_is_the_platform_gemm_or_torch_linear() -> None:
    from vllm.platforms import current_platform

    expected = current_platform.unquantized_gemm() or gemm_utils.default_unquantized_gemm
    assert dispatch_unquantized_gemm() is expected
    layer, x = _layer(), torch.randn(3, 8)
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))


def _needs_packed_kernel() -> None:
    from vllm import _custom_ops as ops
    from vllm.platforms.cpu import cpu_isa

    if cpu_isa() != "avx512_bf16" or not ops.has_op(ops.CPU, "linear_bf16_packed"):
        pytest.skip("needs _C_cpu on a CPU with avx512_bf16")


# Row counts cover every register tile (16, 8, 4, 2, 1 rows) and their mixes (23 = 16+4+2+1),
# and the row limits (K <= 1024: 256 rows; larger K: 64).
@pytest.mark.parametrize("m,k,n", [(1, 64, 48), (5, 576, 960), (16, 128, 300), (64, 32, 17),
                                   (23, 96, 40), (47, 1536, 33), (200, 64, 80), (256, 64, 16)])
def test_cpu_packed_bf16_gemm(m: int, k: int, n: int) -> None:
    """The CPU platform's few-row bf16 kernel against fp32 math (where the CPU has it)."""
    from vllm.platforms.cpu_gemm import cpu_gemm

    _needs_packed_kernel()
    g = torch.Generator().manual_seed(m * 1000 + n)
    x = torch.randn(1, m, k, generator=g).bfloat16()  # leading dims are flattened
    w = torch.randn(n, k, generator=g).bfloat16()
    b = torch.randn(n, generator=g).bfloat16()
    ref = (x.float() @ w.float().t() + b.float())
    out = cpu_gemm(x, w, b)
    assert out.shape == (1, m, n) and out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=0.05 * ref.abs().max().item(), rtol=0.02)
    assert hasattr(w, "_vllm_packed_bf16")  # packed once, kept on the weight
    torch.testing.assert_close(cpu_gemm(x, w, b), out)


@pytest.mark.parametrize("m,k", [(65, 1536), (257, 64), (300, 2048)])
def test_cpu_gemm_many_rows_use_torch(m: int, k: int) -> None:
    """Past the row limit for its K the product goes to torch's linear, exactly."""
    from vllm.platforms.cpu_gemm import cpu_gemm

    _needs_packed_kernel()
    g = torch.Generator().manual_seed(m)
    x = torch.randn(m, k, generator=g).bfloat16()
    w = torch.randn(24, k, generator=g).bfloat16()
    torch.testing.assert_close(cpu_gemm(x, w), F.linear(x, w), atol=0, rtol=0)


def test_linear_bf16_packed_op() -> None:
    """The one-call linear: leading dims, strided rows, bias, and its fake (meta) impl."""
    from vllm.platforms.cpu_gemm import pack_bf16_weight

    _needs_packed_kernel()
    g = torch.Generator().manual_seed(3)
    base = torch.randn(2, 5, 80, generator=g).bfloat16()
    x = base[..., :64]  # strided rows: the op makes its own contiguous copy
    w = torch.randn(40, 64, generator=g).bfloat16()
    b = torch.randn(40, generator=g).bfloat16()
    op = torch.ops._C_cpu.linear_bf16_packed.default
    out = op(x, pack_bf16_weight(w), 40, b)
    ref = x.float() @ w.float().t() + b.float()
    assert out.shape == (2, 5, 40) and out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=0.05 * ref.abs().max().item(), rtol=0.02)
    torch.library.opcheck(op, (x.contiguous(), pack_bf16_weight(w), 40, b))
    with pytest.raises(ValueError, match="bias must be"):
        op(x, pack_bf16_weight(w), 40, b[:3])


def test_env_override_routes_every_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_GEMM_OVERRIDE", "h4_gemm_plugin:gemm")
    layer, x = _layer(), torch.randn(3, 8)
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias) + 1.0)
    assert CALLS == [(3, 8)]


def test_config_override_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_GEMM_OVERRIDE", "h4_gemm_plugin:gemm")
    set_gemm_override(gemm_utils.default_unquantized_gemm)
    layer, x = _layer(), torch.randn(2, 8)
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
    assert CALLS == []
    set_gemm_override("h4_gemm_plugin:gemm")
    _layer()(x)
    assert CALLS == [(2, 8)]


def test_override_reaches_model_layers(monkeypatch: pytest.MonkeyPatch, make_tiny) -> None:  # type: ignore[no-untyped-def]
    from tests.models.utils import load_our_model, our_logits

    monkeypatch.setenv("VLLM_GEMM_OVERRIDE", "h4_gemm_plugin:gemm")
    model = load_our_model(make_tiny("llama"))
    our_logits(model, [1, 2, 3])
    # 2 layers x (qkv, o, gate_up, down) + the LM head
    assert len(CALLS) == 2 * 4 + 1


@pytest.mark.parametrize("spec, match", [
    ("no_colon", "must have the form 'module:function'"),
    ("h4_no_such_module_xyz:f", "cannot import module"),
    ("h4_gemm_plugin:missing", "has no callable 'missing'"),
])
def test_bad_override_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, spec: str, match: str) -> None:
    monkeypatch.setenv("VLLM_GEMM_OVERRIDE", spec)
    with pytest.raises(ValueError, match=match):
        dispatch_unquantized_gemm()
    with pytest.raises(ValueError, match=match):
        set_gemm_override(spec)
