"""CUDA `_C` kernels vs the PyTorch references (forward_native), including the layouts the
generic kernel tests may not reach: strided rows, unaligned hidden sizes (scalar fallback),
GQA head chunks, split-K partitions, mixed prefill/decode batches and padding rows."""

from __future__ import annotations

import math

import pytest
import torch

from vllm import _custom_ops as ops

CUDA_OK = torch.cuda.is_available() and torch.version.hip is None and ops.loaded(ops.CUDA)
pytestmark = pytest.mark.skipif(not CUDA_OK, reason="needs an NVIDIA GPU and the built vllm._C")

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
TOL = {torch.float32: 1e-4, torch.float16: 2e-3, torch.bfloat16: 2e-2}


def _close(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype, scale: float = 1.0) -> None:
    tol = TOL[dtype] * scale
    torch.testing.assert_close(out.float(), ref.float(), atol=tol, rtol=tol)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens,hidden,strided", [(5, 64, False), (7, 4096, True), (3, 4095, False),
                                                   (2, 8200, False), (1, 40000, False)])
def test_rms_norm(dtype: torch.dtype, tokens: int, hidden: int, strided: bool) -> None:
    from vllm.model_executor.layers.layernorm import RMSNorm

    layer = RMSNorm(hidden, eps=1e-5, dtype=dtype).cuda()
    layer.weight.data.normal_()
    base = torch.randn(tokens, hidden + (64 if strided else 0), dtype=dtype, device="cuda")
    x = base[:, :hidden]
    ref = layer.forward_native(x.clone())
    out = torch.full_like(ref, float("nan"))
    ops.rms_norm(out, x, layer.weight, 1e-5, ns=ops.CUDA)
    _close(out, ref, dtype)
    res = torch.randn(tokens, hidden, dtype=dtype, device="cuda")
    ref_y, ref_r = layer.forward_native(x.clone(), res.clone())
    xi, ri = x.contiguous(), res.clone()
    ops.fused_add_rms_norm(xi, ri, layer.weight, 1e-5, ns=ops.CUDA)
    _close(ri, ref_r, dtype)
    _close(xi, ref_y, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["silu", "gelu", "gelu_tanh"])
@pytest.mark.parametrize("shape", [(4, 128), (3, 5, 2 * 1000), (2, 2 * 13)])
def test_gated_activation(dtype: torch.dtype, name: str, shape: tuple[int, ...]) -> None:
    from vllm.model_executor.layers.activation import GeluAndMul, SiluAndMul

    x = torch.randn(*shape, dtype=dtype, device="cuda") * 3
    layer = SiluAndMul() if name == "silu" else GeluAndMul("tanh" if name == "gelu_tanh" else "none")
    ref = layer.forward_native(x)
    out = torch.full_like(ref, float("nan"))
    if name == "silu":
        ops.silu_and_mul(out, x, ns=ops.CUDA)
    else:
        ops.gelu_and_mul(out, x, "tanh" if name == "gelu_tanh" else "none", ns=ops.CUDA)
    _close(out, ref, dtype, scale=2.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("neox", [True, False])
@pytest.mark.parametrize("head_size,rot_dim,cache_fp32", [(64, 64, True), (128, 64, False), (80, 32, True)])
def test_rotary(dtype: torch.dtype, neox: bool, head_size: int, rot_dim: int, cache_fp32: bool) -> None:
    from vllm.model_executor.layers.rotary_embedding import RotaryEmbedding

    cache_dtype = torch.float32 if cache_fp32 else dtype
    rope = RotaryEmbedding(head_size, rot_dim, 256, 10000.0, neox, None, cache_dtype).cuda()
    T, hq, hk = 9, 4, 2
    qkv = torch.randn(T, (hq + 2 * hk) * head_size, dtype=dtype, device="cuda")
    q = qkv[:, : hq * head_size]  # strided token rows, as after a fused QKV projection
    k = qkv[:, hq * head_size : (hq + hk) * head_size]
    pos = torch.randint(0, 256, (T,), device="cuda")
    ref_q, ref_k = rope.forward_native(pos, q.clone(), k.clone())
    ops.rotary_embedding(pos, q, k, head_size, rope.cos_sin_cache, neox, ns=ops.CUDA)
    _close(q, ref_q, dtype)
    _close(k, ref_k, dtype)
    q3 = torch.randn(T, hq, head_size, dtype=dtype, device="cuda")
    ref_q3, _ = rope.forward_native(pos, q3.clone(), None)
    ops.rotary_embedding(pos.int(), q3, None, head_size, rope.cos_sin_cache, neox, ns=ops.CUDA)
    _close(q3, ref_q3, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hk,d,bs", [(2, 64, 16), (1, 80, 32), (3, 7, 4)])
def test_reshape_and_cache(dtype: torch.dtype, hk: int, d: int, bs: int) -> None:
    from vllm.model_executor.layers.kv_cache import ReshapeAndCache

    T, nb = 11, 6
    key = torch.randn(T, hk, d, dtype=dtype, device="cuda")
    value = torch.randn(T, hk, d, dtype=dtype, device="cuda")
    slots = torch.randperm(nb * bs, device="cuda")[:T]
    slots[3] = -1  # padding token: skipped
    kc = torch.randn(nb, bs, hk, d, dtype=dtype, device="cuda")
    vc = torch.randn_like(kc)
    rk, rv = kc.clone(), vc.clone()
    ReshapeAndCache().forward_native(key, value, rk, rv, slots)
    ops.reshape_and_cache(key, value, kc, vc, slots, ns=ops.CUDA)
    assert torch.equal(kc, rk) and torch.equal(vc, rv)


def _attn_case(q_lens: list[int], ctx_lens: list[int], hq: int, hk: int, d: int, bs: int,
               dtype: torch.dtype) -> tuple:
    S = len(q_lens)
    max_blocks = max(math.ceil(c / bs) for c in ctx_lens)
    nb = S * max_blocks + 3
    kc = torch.randn(nb, bs, hk, d, dtype=dtype, device="cuda")
    vc = torch.randn_like(kc)
    perm = torch.randperm(nb, device="cuda")[: S * max_blocks]
    bt = perm.view(S, max_blocks).to(torch.int32)
    qsl = torch.tensor([0] + q_lens, device="cuda").cumsum(0).to(torch.int32)
    T = int(qsl[-1]) + 2  # two padding rows that must stay untouched
    q = torch.randn(T, hq, d, dtype=dtype, device="cuda")
    sl = torch.tensor(ctx_lens, dtype=torch.int32, device="cuda")
    return q, kc, vc, bt, sl, qsl, max(q_lens), max(ctx_lens)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [64, 80, 96, 128, 256])
@pytest.mark.parametrize("hq,hk,bs", [(4, 4, 16), (8, 2, 32), (12, 2, 128), (6, 2, 16), (14, 2, 16),
                                      (18, 2, 16)])
@pytest.mark.parametrize("q_lens,ctx_lens", [
    ([1, 5, 17, 1], [37, 40, 17, 1300]),  # decode, chunk with history, fresh prefill, split-K
    ([3, 1], [100, 128]),                 # one partition: direct write, no reduce
])
def test_paged_attention(dtype: torch.dtype, d: int, hq: int, hk: int, bs: int,
                         q_lens: list[int], ctx_lens: list[int]) -> None:
    from vllm.attention.paged_attention import paged_attention_native

    q, kc, vc, bt, sl, qsl, mq, ms = _attn_case(q_lens, ctx_lens, hq, hk, d, bs, dtype)
    scale = d**-0.5
    ref = torch.full_like(q, 7.0)
    paged_attention_native(ref, q, kc, vc, bt, sl, qsl, mq, ms, scale)
    out = torch.full_like(q, 7.0)
    ops.paged_attention(out, q, kc, vc, bt, sl, qsl, mq, ms, scale, ns=ops.CUDA)
    _close(out, ref, dtype, scale=2.0 if dtype != torch.float32 else 10.0)
    assert torch.all(out[-2:] == 7.0)


@pytest.mark.parametrize("hint", [1, 64, 131072])
def test_paged_attention_any_seq_len_hint(hint: int) -> None:
    """max_seq_len only plans the split-K launch (graphs capture one hint for every batch)."""
    from vllm.attention.paged_attention import paged_attention_native

    q, kc, vc, bt, sl, qsl, mq, ms = _attn_case([1, 1, 1], [3000, 17, 515], 32, 8, 128, 16,
                                                torch.bfloat16)
    ref = torch.full_like(q, 7.0)
    paged_attention_native(ref, q, kc, vc, bt, sl, qsl, mq, ms, 0.1)
    out = torch.full_like(q, 7.0)
    ops.paged_attention(out, q, kc, vc, bt, sl, qsl, mq, hint, 0.1, ns=ops.CUDA)
    _close(out, ref, torch.bfloat16, scale=2.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_moe(dtype: torch.dtype) -> None:
    from vllm.model_executor.layers.fused_moe import fused_moe_reference, select_experts

    T, H, inter, E, k = 13, 64, 48, 6, 2
    hidden = torch.randn(T, H, dtype=dtype, device="cuda")
    w13 = torch.randn(E, 2 * inter, H, dtype=dtype, device="cuda") / 8
    w2 = torch.randn(E, H, inter, dtype=dtype, device="cuda") / 8
    wts, ids = select_experts(torch.randn(T, E, device="cuda"), k, True)
    ref = fused_moe_reference(hidden, w13, w2, wts, ids)
    out = torch.full_like(hidden, float("nan"))
    ops.fused_moe(out, hidden, w13, w2, wts, ids, ns=ops.CUDA)
    _close(out, ref, dtype, scale=5.0)


def test_bad_arguments_raise() -> None:
    x = torch.randn(4, 64, device="cuda")
    with pytest.raises(ValueError, match="hidden size"):
        ops.rms_norm(torch.empty_like(x), x, torch.ones(32, device="cuda"), 1e-6, ns=ops.CUDA)
    with pytest.raises(ValueError, match="even"):
        ops.silu_and_mul(torch.empty(4, 3, device="cuda"), torch.randn(4, 7, device="cuda"), ns=ops.CUDA)
    q = torch.randn(2, 4, 48, device="cuda")
    kc = torch.randn(4, 16, 2, 48, device="cuda")
    bt = torch.zeros(2, 1, dtype=torch.int32, device="cuda")
    sl = torch.ones(2, dtype=torch.int32, device="cuda")
    qsl = torch.arange(3, dtype=torch.int32, device="cuda")
    with pytest.raises(ValueError, match="head size 48"):
        ops.paged_attention(torch.empty_like(q), q, kc, kc, bt, sl, qsl, 1, 1, 1.0, ns=ops.CUDA)
