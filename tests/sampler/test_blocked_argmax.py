"""blocked_argmax (the CPU greedy pick) equals torch.argmax: first maximum, NaN as maximum,
vocabularies with and without a partial last block, fp32 and bf16."""

from __future__ import annotations

import pytest
import torch

from vllm.model_executor.layers.sampler import GreedyArgmax, blocked_argmax


@pytest.mark.parametrize("vocab", [7, 2048, 2049, 5000, 49152])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_matches_argmax(vocab: int, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(vocab)
    x = (torch.randn(9, vocab, generator=g) * 3).to(dtype)  # bf16: many exact ties
    assert torch.equal(blocked_argmax(x), x.argmax(-1))


def test_ties_and_nan() -> None:
    x = torch.zeros(5, 5000)
    x[0, 10] = x[0, 4000] = 1.0  # tie across blocks: the first
    x[1, 4999] = float("nan")  # NaN in the partial tail block
    x[2, 100] = x[2, 4999] = float("nan")  # the first NaN
    x[3, 4990] = 2.0  # maximum in the tail
    x[4, 4096] = float("nan")  # NaN in the last full block, tail holds a larger finite value
    x[4, 4999] = 5.0
    assert blocked_argmax(x).tolist() == x.argmax(-1).tolist()


def test_op_dispatch_result() -> None:
    x = torch.randn(3, 4100)
    assert torch.equal(GreedyArgmax()(x), x.argmax(-1))
