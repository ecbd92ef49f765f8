"""LogitsProcessor inside reuse_logits_buffer(): same values as a fresh fp32 conversion, one
kept buffer across calls; outside the block every call returns a fresh tensor."""

from __future__ import annotations

import torch

from vllm.model_executor.layers.logits_processor import LogitsProcessor, reuse_logits_buffer
from vllm.model_executor.layers.vocab_embedding import ParallelLMHead


def _head(vocab: int, hidden: int, dtype: torch.dtype) -> ParallelLMHead:
    head = ParallelLMHead(vocab, hidden, dtype=dtype, padding_size=64)
    table = torch.randn(vocab, hidden, generator=torch.Generator().manual_seed(0)).to(dtype)
    head.weight.weight_loader(head.weight, table)
    return head


def test_reused_buffer_bf16() -> None:
    vocab, hidden = 100, 16  # padded to 128 columns: the slice is strided
    head, proc = _head(vocab, hidden, torch.bfloat16), LogitsProcessor(vocab)
    h1 = torch.randn(5, hidden).bfloat16()
    h2 = torch.randn(3, hidden).bfloat16()
    want1 = (h1 @ head.weight[:vocab].T).float()
    fresh = proc(head, h1)
    assert fresh.dtype == torch.float32 and torch.equal(fresh, want1)
    with reuse_logits_buffer():
        a = proc(head, h1)
        assert a.dtype == torch.float32 and a.shape == (5, vocab) and a.is_contiguous()
        assert torch.equal(a, want1)
        b = proc(head, h2)  # fewer rows: a view of the same storage
        assert b.data_ptr() == a.data_ptr() and torch.equal(b, (h2 @ head.weight[:vocab].T).float())
    c = proc(head, h1)
    assert c.data_ptr() != a.data_ptr() and torch.equal(c, want1)


def test_fp32_model_takes_the_gemm_output() -> None:
    head, proc = _head(64, 8, torch.float32), LogitsProcessor(64, scale=0.5)
    h = torch.randn(4, 8)
    with reuse_logits_buffer():
        out = proc(head, h)
    torch.testing.assert_close(out, (h @ head.weight.T) * 0.5)
    assert proc._buffer is None  # no extra copy for fp32 GEMM output
