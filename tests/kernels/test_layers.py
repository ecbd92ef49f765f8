"""Every CustomOp layer x every available implementation vs forward_native (computed first)."""

from __future__ import annotations

import pytest
import torch

from vllm.model_executor.layers.activation import GeluAndMul, SiluAndMul
from vllm.model_executor.layers.kv_cache import ReshapeAndCache
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.layers.rotary_embedding import RotaryEmbedding

from .conftest import DTYPES, Impl, assert_close, run_impl

# (tokens, hidden, strided): odd hidden sizes (vector tails), 1 and 257 tokens, row slices.
SHAPES = [(1, 769, False), (257, 769, True), (257, 5125, False), (33, 1024, True)]


def _rows(t: int, h: int, dtype: torch.dtype, device: str, strided: bool) -> torch.Tensor:
    """[t, h] input; when strided, a column slice of a wider tensor (row stride h + 35)."""
    if strided:
        return torch.randn(t, h + 35, dtype=dtype, device=device)[:, :h]
    return torch.randn(t, h, dtype=dtype, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens,hidden,strided", SHAPES)
def test_rms_norm(impl: Impl, device: str, dtype, tokens, hidden, strided) -> None:
    layer = RMSNorm(hidden, eps=1e-5, dtype=dtype).to(device)
    layer.weight.data.normal_(1.0, 0.2)
    x = _rows(tokens, hidden, dtype, device, strided)
    expected = layer.forward_native(x.clone())
    actual = run_impl(layer, impl, x)
    assert actual.shape == x.shape and actual.dtype == dtype
    assert_close(actual, expected, "rms_norm")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens,hidden,strided", SHAPES)
def test_fused_add_rms_norm(impl: Impl, device: str, dtype, tokens, hidden, strided) -> None:
    layer = RMSNorm(hidden, eps=1e-6, dtype=dtype).to(device)
    layer.weight.data.normal_(1.0, 0.2)
    x = _rows(tokens, hidden, dtype, device, strided)  # the layer makes it contiguous
    residual = torch.randn(tokens, hidden, dtype=dtype, device=device)
    exp_y, exp_res = layer.forward_native(x.clone(), residual.clone())
    y, res = run_impl(layer, impl, x.clone(), residual.clone())
    assert_close(res, exp_res, "residual")
    assert_close(y, exp_y, "normed")


def test_rms_norm_3d_input(impl: Impl, device: str) -> None:
    layer = RMSNorm(96, dtype=torch.float32).to(device)
    x = torch.randn(3, 5, 96, device=device)
    assert_close(run_impl(layer, impl, x), layer.forward_native(x), "3-D rms_norm")


GATED = [
    pytest.param(lambda: SiluAndMul(), id="silu"),
    pytest.param(lambda: GeluAndMul("none"), id="gelu"),
    pytest.param(lambda: GeluAndMul("tanh"), id="gelu_tanh"),
]


@pytest.mark.parametrize("make", GATED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens,d,strided", SHAPES)
def test_gated_activation(impl: Impl, device: str, make, dtype, tokens, d, strided) -> None:
    layer = make()
    x = _rows(tokens, 2 * d, dtype, device, strided) * 3
    expected = layer.forward_native(x.clone())
    actual = run_impl(layer, impl, x)
    assert actual.shape == (tokens, d)
    assert_close(actual, expected, layer.name)


def test_gated_activation_extremes(impl: Impl, device: str) -> None:
    x = torch.tensor([[-100.0, -20.0, -1e-3, 0.0, 1e-3, 20.0, 100.0, 5.0] * 4 + [1.0] * 32],
                     device=device)
    for layer in (SiluAndMul(), GeluAndMul("none"), GeluAndMul("tanh")):
        actual = run_impl(layer, impl, x)
        assert torch.isfinite(actual).all()
        assert_close(actual, layer.forward_native(x), layer.name)


def _qkv(t: int, hq: int, hk: int, d: int, dtype: torch.dtype, device: str):
    """q [T, Hq*D] and k [T, Hk*D] as strided column slices of one fused qkv tensor."""
    qkv = torch.randn(t, (hq + 2 * hk) * d, dtype=dtype, device=device)
    return qkv, qkv[:, : hq * d], qkv[:, hq * d : (hq + hk) * d]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("neox", [True, False])
@pytest.mark.parametrize(
    "tokens,head_size,rot_dim", [(257, 64, 64), (1, 128, 64), (19, 80, 80), (19, 96, 48)]
)
def test_rotary_embedding(impl: Impl, device: str, dtype, neox, head_size, rot_dim, tokens) -> None:
    rope = RotaryEmbedding(head_size, rot_dim, 1024, 10000.0, neox, dtype=dtype).to(device)
    _, q, k = _qkv(tokens, 4, 2, head_size, dtype, device)
    positions = torch.randint(0, 1024, (tokens,), device=device)
    exp_q, exp_k = rope.forward_native(positions, q.clone(), k.clone())
    out_q, out_k = run_impl(rope, impl, positions, q, k)
    assert_close(out_q, exp_q, "query")
    assert_close(out_k, exp_k, "key")


def test_rotary_embedding_3d_no_key(impl: Impl, device: str) -> None:
    rope = RotaryEmbedding(64, 32, 512, 10000.0, True, dtype=torch.float32).to(device)
    q = torch.randn(9, 3, 64, device=device)
    positions = torch.arange(9, device=device) * 7
    exp_q, _ = rope.forward_native(positions, q.clone(), None)
    out_q, out_k = run_impl(rope, impl, positions, q, None)
    assert out_k is None
    assert_close(out_q, exp_q, "query")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens,head_size,block_size", [(1, 64, 16), (257, 72, 32)])
def test_reshape_and_cache(impl: Impl, device: str, dtype, tokens, head_size, block_size) -> None:
    hq, hk, blocks = 4, 2, 40
    qkv, _, _ = _qkv(tokens, hq, hk, head_size, dtype, device)
    kv = qkv[:, hq * head_size :].view(tokens, 2, hk, head_size)
    key, value = kv[:, 0], kv[:, 1]  # strided token dim
    slots = torch.randperm(blocks * block_size, device=device)[:tokens]
    slots[::3] = -1  # padding tokens are skipped
    cache_shape = (blocks, block_size, hk, head_size)
    k_cache = torch.randn(cache_shape, dtype=dtype, device=device)
    v_cache = torch.randn(cache_shape, dtype=dtype, device=device)
    exp_k, exp_v = k_cache.clone(), v_cache.clone()
    layer = ReshapeAndCache()
    layer.forward_native(key, value, exp_k, exp_v, slots)
    run_impl(layer, impl, key, value, k_cache, v_cache, slots)
    assert torch.equal(k_cache, exp_k)
    assert torch.equal(v_cache, exp_v)
