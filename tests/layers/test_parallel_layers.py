"""Linear / embedding / logits layers: weight loading, shape errors and tensor-parallel slicing.

TP is simulated: each rank's layer is built with get_tp_rank/get_tp_size patched, loaded from
the full checkpoint tensor, and the ranks' partial results are combined by hand (the layers'
collectives are identities when no process group exists)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from vllm.model_executor.layers import fused_moe, linear, vocab_embedding
from vllm.model_executor.layers.linear import (
    ColumnParallelLinear,
    MergedColumnParallelLinear,
    QKVParallelLinear,
    ReplicatedLinear,
    RowParallelLinear,
)
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.vocab_embedding import ParallelLMHead, VocabParallelEmbedding


@contextlib.contextmanager
def as_rank(rank: int, size: int) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for mod in (linear, vocab_embedding, fused_moe):
            mp.setattr(mod, "get_tp_rank", lambda: rank)
            mp.setattr(mod, "get_tp_size", lambda: size)
        yield


def _load(layer: torch.nn.Module, name: str, tensor: torch.Tensor, shard: object = None) -> None:
    param = getattr(layer, name)
    param.weight_loader(param, tensor, shard)


def test_replicated_shape_error_names_tensor() -> None:
    layer = ReplicatedLinear(8, 4, prefix="model.x")
    with pytest.raises(ValueError, match=r"'model.x.weight'.*\(4, 9\).*\(4, 8\)"):
        _load(layer, "weight", torch.zeros(4, 9))


@pytest.mark.parametrize("tp", [1, 2, 4])
def test_column_and_row_parallel_match_full(tp: int) -> None:
    torch.manual_seed(0)
    w1, b1, w2, b2 = torch.randn(16, 8), torch.randn(16), torch.randn(8, 16), torch.randn(8)
    x = torch.randn(5, 8)
    ref = F.linear(F.linear(x, w1, b1), w2, b2)
    parts, total = [], torch.zeros(5, 8)
    for r in range(tp):
        with as_rank(r, tp):
            col = ColumnParallelLinear(8, 16, bias=True)
            row = RowParallelLinear(16, 8, bias=True)
        _load(col, "weight", w1), _load(col, "bias", b1), _load(row, "weight", w2), _load(row, "bias", b2)
        assert col.weight.shape == (16 // tp, 8) and row.weight.shape == (8, 16 // tp)
        h = col(x)  # [5, 16 / tp]
        parts.append(h)
        total += row(h) - b2  # partial sums; the bias is added once
    torch.testing.assert_close(torch.cat(parts, -1), F.linear(x, w1, b1))
    torch.testing.assert_close(total + b2, ref, rtol=1e-5, atol=1e-5)


def test_indivisible_split_is_a_value_error() -> None:
    with as_rank(0, 3), pytest.raises(ValueError, match="not divisible by tensor_parallel_size=3"):
        ColumnParallelLinear(8, 16, prefix="p")


@pytest.mark.parametrize("tp", [1, 2])
def test_merged_gate_up(tp: int) -> None:
    torch.manual_seed(0)
    gate, up, x = torch.randn(12, 8), torch.randn(12, 8), torch.randn(3, 8)
    outs = []
    for r in range(tp):
        with as_rank(r, tp):
            layer = MergedColumnParallelLinear(8, [12, 12])
        _load(layer, "weight", gate, 0), _load(layer, "weight", up, 1)
        g, u = layer(x).chunk(2, dim=-1)
        outs.append((g, u))
    torch.testing.assert_close(torch.cat([g for g, _ in outs], -1), F.linear(x, gate))
    torch.testing.assert_close(torch.cat([u for _, u in outs], -1), F.linear(x, up))


@pytest.mark.parametrize("tp, heads, kv_heads", [(1, 4, 2), (2, 4, 2), (4, 4, 2), (4, 8, 1)])
def test_qkv_split_and_kv_replication(tp: int, heads: int, kv_heads: int) -> None:
    torch.manual_seed(0)
    d, hidden = 4, 16
    wq = torch.randn(heads * d, hidden)
    wk, wv = torch.randn(kv_heads * d, hidden), torch.randn(kv_heads * d, hidden)
    bq, bk, bv = torch.randn(heads * d), torch.randn(kv_heads * d), torch.randn(kv_heads * d)
    x = torch.randn(3, hidden)
    qs = []
    for r in range(tp):
        with as_rank(r, tp):
            layer = QKVParallelLinear(hidden, d, heads, kv_heads, bias=True)
        for sid, w, b in (("q", wq, bq), ("k", wk, bk), ("v", wv, bv)):
            _load(layer, "weight", w, sid), _load(layer, "bias", b, sid)
        q, k, v = layer.split_qkv(layer(x))
        qs.append(q)
        kv_head = r // max(1, tp // kv_heads) if tp >= kv_heads else None
        if kv_head is not None:  # this rank holds exactly one (possibly replicated) KV head
            sl = slice(kv_head * d, (kv_head + 1) * d)
            torch.testing.assert_close(k, F.linear(x, wk[sl], bk[sl]))
            torch.testing.assert_close(v, F.linear(x, wv[sl], bv[sl]))
        else:
            n = kv_heads // tp * d
            torch.testing.assert_close(k, F.linear(x, wk[r * n:(r + 1) * n], bk[r * n:(r + 1) * n]))
    torch.testing.assert_close(torch.cat(qs, -1), F.linear(x, wq, bq))


def test_qkv_bad_shard_id() -> None:
    layer = QKVParallelLinear(8, 4, 2, 1, prefix="attn.qkv_proj")
    with pytest.raises(ValueError, match="shard_id must be 'q', 'k' or 'v'"):
        _load(layer, "weight", torch.zeros(8, 8), "x")
    with pytest.raises(ValueError, match=r"attn.qkv_proj.weight\[k\]"):
        _load(layer, "weight", torch.zeros(5, 8), "k")


@pytest.mark.parametrize("tp", [1, 2, 3])
def test_vocab_parallel_embedding_and_lm_head(tp: int) -> None:
    torch.manual_seed(0)
    vocab, hidden = 100, 8
    table = torch.randn(vocab, hidden)
    ids = torch.tensor([0, 5, 63, 64, 99, 42])
    emb_total = torch.zeros(len(ids), hidden)
    logit_parts = []
    hidden_x = torch.randn(4, hidden)
    proc = LogitsProcessor(vocab)
    for r in range(tp):
        with as_rank(r, tp):
            emb = VocabParallelEmbedding(vocab, hidden, padding_size=16)
            head = ParallelLMHead(vocab, hidden, padding_size=16)
        _load(emb, "weight", table), _load(head, "weight", table)
        assert emb.padded_vocab % (16 * tp) == 0
        emb_total += emb(ids)
        logit_parts.append(F.linear(hidden_x, head.weight))
    torch.testing.assert_close(emb_total, table[ids])
    full = torch.cat(logit_parts, -1)  # what the all-gather produces
    assert full.shape[-1] >= vocab
    torch.testing.assert_close(full[:, :vocab], hidden_x @ table.T)
    with as_rank(0, 1):
        head = ParallelLMHead(vocab, hidden, padding_size=64)
    _load(head, "weight", table)
    logits = proc(head, hidden_x)
    assert logits.shape == (4, vocab) and logits.dtype == torch.float32
    torch.testing.assert_close(logits, hidden_x @ table.T)


def test_embedding_shape_error() -> None:
    emb = VocabParallelEmbedding(10, 4, prefix="model.embed_tokens")
    with pytest.raises(ValueError, match=r"model.embed_tokens.weight.*\(11, 4\).*\(10, 4\)"):
        _load(emb, "weight", torch.zeros(11, 4))


def test_logits_scale_soft_cap_and_bf16() -> None:
    torch.manual_seed(0)
    head = ParallelLMHead(10, 4, dtype=torch.bfloat16)
    _load(head, "weight", torch.randn(10, 4) * 10)
    x = torch.randn(3, 4, dtype=torch.bfloat16)
    raw = LogitsProcessor(10)(head, x)
    assert raw.dtype == torch.float32
    capped = LogitsProcessor(10, scale=0.5, soft_cap=2.0)(head, x)
    torch.testing.assert_close(capped, torch.tanh(raw * 0.5 / 2.0) * 2.0)
    assert capped.abs().max() <= 2.0
    with pytest.raises(ValueError, match="soft_cap"):
        LogitsProcessor(10, soft_cap=0.0)


def test_tied_lm_head_shares_embedding() -> None:
    emb = VocabParallelEmbedding(10, 4)
    head = ParallelLMHead(10, 4).tie_weights(emb)
    assert head.weight is emb.weight
