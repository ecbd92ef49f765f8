"""Router top-k selection and the fused_moe CustomOp (native and, when built, the kernels)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vllm import _custom_ops as ops
from vllm.model_executor.layers import fused_moe as moe_mod
from vllm.model_executor.layers.fused_moe import FusedMoE, fused_moe_reference, select_experts

E, H, INTER, TOP_K = 4, 16, 8, 2


def per_token_loop(hidden, w13, w2, weights, ids):  # type: ignore[no-untyped-def]
    """The definition, one token and one chosen expert at a time."""
    out = torch.zeros_like(hidden)
    for t in range(hidden.shape[0]):
        for j in range(ids.shape[1]):
            e = int(ids[t, j])
            g, u = F.linear(hidden[t], w13[e]).chunk(2)
            out[t] += weights[t, j] * F.linear(F.silu(g) * u, w2[e])
    return out


def _weights(dtype: torch.dtype = torch.float32):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return torch.randn(E, 2 * INTER, H, dtype=dtype) * 0.3, torch.randn(E, H, INTER, dtype=dtype) * 0.3


def test_select_experts_softmax_topk_renormalize() -> None:
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0], [0.0, 0.0, 5.0, 4.0]])
    w, ids = select_experts(logits, 2, renormalize=False)
    probs = torch.softmax(logits, -1)
    assert ids.tolist() == [[1, 2], [2, 3]]
    torch.testing.assert_close(w, probs.gather(1, ids))
    w_norm, _ = select_experts(logits, 2, renormalize=True)
    torch.testing.assert_close(w_norm.sum(-1), torch.ones(2))
    with pytest.raises(ValueError, match="num_experts_per_tok=5"):
        select_experts(logits, 5, True)


def test_reference_matches_per_token_loop() -> None:
    w13, w2 = _weights()
    hidden = torch.randn(7, H)
    weights, ids = select_experts(torch.randn(7, E), TOP_K, True)
    torch.testing.assert_close(
        fused_moe_reference(hidden, w13, w2, weights, ids), per_token_loop(hidden, w13, w2, weights, ids),
        rtol=1e-5, atol=1e-5,
    )


def _layer(tp_rank: int = 0, tp_size: int = 1, monkeypatch: pytest.MonkeyPatch | None = None) -> FusedMoE:
    if monkeypatch is not None:
        monkeypatch.setattr(moe_mod, "get_tp_rank", lambda: tp_rank)
        monkeypatch.setattr(moe_mod, "get_tp_size", lambda: tp_size)
    return FusedMoE(E, TOP_K, H, INTER, renormalize=True, prefix="mlp.experts")


def _load_per_expert(layer: FusedMoE, w13: torch.Tensor, w2: torch.Tensor) -> None:
    for e in range(E):
        layer.w13.weight_loader(layer.w13, w13[e, :INTER], "w1", e)
        layer.w13.weight_loader(layer.w13, w13[e, INTER:], "w3", e)
        layer.w2.weight_loader(layer.w2, w2[e], "w2", e)


def test_layer_per_expert_and_stacked_loading() -> None:
    w13, w2 = _weights()
    a, b = _layer(), _layer()
    _load_per_expert(a, w13, w2)
    b.w13.weight_loader(b.w13, w13, "w13")
    b.w2.weight_loader(b.w2, w2, "w2")
    torch.testing.assert_close(a.w13.data, w13)
    torch.testing.assert_close(b.w2.data, w2)
    hidden, router = torch.randn(5, H), torch.randn(5, E)
    weights, ids = select_experts(router, TOP_K, True)
    ref = per_token_loop(hidden, w13, w2, weights, ids)
    torch.testing.assert_close(a.forward_native(hidden, router), ref,
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"mlp.experts.w2\[1\].w2"):
        a.w2.weight_loader(a.w2, torch.zeros(H, INTER + 1), "w2", 1)
    with pytest.raises(ValueError, match="expert_id 9"):
        a.w2.weight_loader(a.w2, w2[0], "w2", 9)


def test_tensor_parallel_slices_sum_to_full(monkeypatch: pytest.MonkeyPatch) -> None:
    w13, w2 = _weights()
    hidden, router = torch.randn(6, H), torch.randn(6, E)
    total = torch.zeros(6, H)
    for r in range(2):
        layer = _layer(r, 2, monkeypatch)
        _load_per_expert(layer, w13, w2)
        assert layer.w13.shape == (E, INTER, H) and layer.w2.shape == (E, H, INTER // 2)
        total += layer.forward_native(hidden, router)  # all-reduce by hand
    weights, ids = select_experts(router, TOP_K, True)
    torch.testing.assert_close(total, per_token_loop(hidden, w13, w2, weights, ids), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ns", [ops.CPU, ops.CUDA])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernel_matches_native(ns: str, dtype: torch.dtype) -> None:
    if not ops.has_op(ns, "fused_moe"):
        pytest.skip(f"vllm.{ns} with fused_moe is not built here")
    device = "cpu" if ns == ops.CPU else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    w13, w2 = (w.to(device) for w in _weights(dtype))
    hidden = torch.randn(9, H, dtype=dtype, device=device)
    weights, ids = select_experts(torch.randn(9, E, device=device), TOP_K, True)
    ref = fused_moe_reference(hidden, w13, w2, weights, ids)
    out = torch.empty_like(hidden)
    ops.fused_moe(out, hidden, w13, w2, weights, ids, ns=ns)
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
