"""The Attention layer, bind_kv_cache, the forward context and the selector."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from attn_utils import make_batch, meta_to, platform_device, reference

from vllm.attention import selector
from vllm.attention.backends.native import NativeAttentionBackend
from vllm.attention.layer import Attention, bind_kv_cache
from vllm.forward_context import get_forward_context, set_forward_context
from vllm.model_executor.custom_op import set_custom_ops


def test_no_context_is_one_causal_sequence() -> None:
    torch.manual_seed(0)
    layer = Attention(4, 16, 0.25, num_kv_heads=2, prefix="l0")
    q, k, v = torch.randn(6, 64), torch.randn(6, 32), torch.randn(6, 32)
    dev = platform_device()
    out = layer(q.to(dev), k.to(dev), v.to(dev)).cpu()
    assert out.shape == (6, 64)
    ref = reference(q.view(6, 4, 16), _one_seq_meta(6), [k.view(6, 2, 16)], [v.view(6, 2, 16)], 0.25)
    torch.testing.assert_close(out.view(6, 4, 16).double(), ref, atol=1e-5, rtol=1e-5)


def _one_seq_meta(n: int):  # type: ignore[no-untyped-def]
    _, _, _, _, meta, _, _ = make_batch([(0, n)], 1, 1, 4, 4, torch.float32)
    return meta


def test_with_context_uses_cache() -> None:
    q, k, v, cache, meta, fk, fv = make_batch([(5, 1), (0, 3)], 4, 2, 16, 4, torch.float32)
    layer = Attention(4, 16, 0.3, num_kv_heads=2)
    layer.bind(cache)
    with set_forward_context(meta):
        assert get_forward_context().attn_metadata is meta
        out = layer(q.flatten(1), k.flatten(1), v.flatten(1))
    assert get_forward_context().attn_metadata is None
    ref = reference(q, meta, fk, fv, 0.3)
    torch.testing.assert_close(out.view(q.shape).cpu().double(), ref, atol=1e-5, rtol=1e-5)


def test_unbound_cache_with_metadata_raises() -> None:
    _, _, _, _, meta, _, _ = make_batch([(0, 2)], 2, 2, 16, 4, torch.float32)
    layer = Attention(2, 16, 1.0, prefix="model.layers.3.attn")
    x = torch.randn(2, 32, device=platform_device())
    with set_forward_context(meta), pytest.raises(RuntimeError, match="model.layers.3.attn"):
        layer(x, x, x)


def test_bad_head_config_raises() -> None:
    with pytest.raises(ValueError, match="num_kv_heads"):
        Attention(6, 16, 1.0, num_kv_heads=4)


def test_bind_kv_cache_in_module_order() -> None:
    model = nn.ModuleList([nn.ModuleDict({"attn": Attention(2, 8, 1.0)}) for _ in range(3)])
    caches = [torch.zeros(2, 4, 16, 2, 8) + i for i in range(3)]
    bind_kv_cache(model, caches)
    for i, block in enumerate(model):
        assert block["attn"].kv_cache is caches[i]
    with pytest.raises(ValueError, match="3 Attention layers"):
        bind_kv_cache(model, caches[:2])
    with pytest.raises(ValueError, match="kv_cache shape"):
        model[0]["attn"].bind(torch.zeros(2, 4, 16, 1, 8))


def test_selector_falls_back_to_native_without_kernels() -> None:
    selector.clear_cache()
    backend = selector.get_attn_backend(64, torch.float32)
    default = selector.load_backend(_platform_default())
    if not default.available()[0]:
        assert backend is NativeAttentionBackend
        assert "unusable" in selector.explain_backend(64, torch.float32)
    else:
        assert backend is default
    assert isinstance(selector.describe_backend(), str)


def test_selector_falls_back_for_unavailable_or_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    class Limited(NativeAttentionBackend):
        name = "limited"

        @staticmethod
        def supported_head_sizes() -> tuple[int, ...]:
            return (64, 128)

    class Missing(NativeAttentionBackend):
        name = "missing"

        @classmethod
        def available(cls) -> tuple[bool, str]:
            return False, "kernels not built"

    fakes = {"limited": Limited, "missing": Missing}
    real = selector.load_backend
    monkeypatch.setattr(selector, "load_backend", lambda n: fakes.get(n) or real(n))
    selector.clear_cache()
    try:
        assert selector._select("limited", 64, torch.float32)[0] is Limited
        backend, why = selector._select("limited", 80, torch.float32)
        assert backend is NativeAttentionBackend and "head_size=80" in why
        backend, why = selector._select("missing", 64, torch.float32)
        assert backend is NativeAttentionBackend and "kernels not built" in why
    finally:
        selector.clear_cache()


def test_selector_honours_custom_ops_disable() -> None:
    try:
        set_custom_ops(["-paged_attention"])
        selector.clear_cache()
        assert selector.get_attn_backend(64, torch.float32) is NativeAttentionBackend
    finally:
        set_custom_ops([])
        selector.clear_cache()


def test_unknown_backend_name() -> None:
    with pytest.raises(ValueError, match="unknown"):
        selector.load_backend("flashinfer")


def test_kv_cache_shape() -> None:
    for name in selector.BACKENDS:
        shape = selector.load_backend(name).get_kv_cache_shape(10, 16, 2, 64)
        assert shape == (2, 10, 16, 2, 64)


def _platform_default() -> str:
    from vllm.platforms import current_platform

    return current_platform.default_attention_backend


def _meta_for_step(q_lens: list[int], ctx_lens: list[int], tables: torch.Tensor, block_size: int):  # type: ignore[no-untyped-def]
    from vllm.attention.backends.abstract import AttentionMetadata

    seq_lens = [c + q for c, q in zip(ctx_lens, q_lens, strict=True)]
    slots = []
    for i, (c, q) in enumerate(zip(ctx_lens, q_lens, strict=True)):
        slots += [int(tables[i, p // block_size]) * block_size + p % block_size for p in range(c, c + q)]
    qsl = torch.tensor([0] + torch.tensor(q_lens).cumsum(0).tolist(), dtype=torch.int32)
    sl = torch.tensor(seq_lens, dtype=torch.int32)
    return AttentionMetadata(sum(q_lens), max(q_lens), max(seq_lens), qsl, sl, tables,
                             torch.tensor(slots, dtype=torch.int64), qsl.clone(), sl.clone())


def test_chunked_prefill_then_decode_matches_one_shot() -> None:
    """Two sequences run in steps (chunk, chunk+decode, decodes) == each run causally at once."""
    torch.manual_seed(0)
    hq, hk, d, bs = 4, 2, 16, 4
    dev = platform_device()
    layer = Attention(hq, d, d ** -0.5, num_kv_heads=hk)
    lens = [11, 6]
    qkv = [tuple(torch.randn(n, h * d).to(dev) for h in (hq, hk, hk)) for n in lens]
    expected = [layer(*x) for x in qkv]  # no context: one causal sequence each
    cache = torch.full((2, 8, bs, hk, d), float("nan"), device=dev)
    layer.bind(cache)
    tables = torch.tensor([[5, 0, 7], [2, 6, 1]], dtype=torch.int32)
    schedule = [([5, 6], [0, 0]), ([6, 0], [5, 6])]  # (new tokens per seq) per step
    done = [0, 0]
    got: list[list[torch.Tensor]] = [[], []]
    for step in schedule:
        q_lens = step[0]
        active = [i for i, n in enumerate(q_lens) if n]
        meta = meta_to(_meta_for_step([q_lens[i] for i in active], [done[i] for i in active],
                                      tables[active], bs), dev)
        parts = [tuple(t[done[i]:done[i] + q_lens[i]] for t in qkv[i]) for i in active]
        q, k, v = (torch.cat([p[j] for p in parts]) for j in range(3))
        with set_forward_context(meta):
            out = layer(q, k, v)
        offset = 0
        for i in active:
            got[i].append(out[offset:offset + q_lens[i]])
            offset += q_lens[i]
            done[i] += q_lens[i]
    for i in range(2):
        torch.testing.assert_close(torch.cat(got[i]), expected[i], atol=1e-5, rtol=1e-5)
