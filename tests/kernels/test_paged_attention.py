"""paged_attention (and fused_moe) kernels vs Python references."""

from __future__ import annotations

import pytest
import torch

from vllm import _custom_ops as ops

from .attention_ref import make_batch, ref_paged_attention
from .conftest import DTYPES, Impl, assert_close

# (q_lens, ctx_lens): decodes, whole prefills, chunked prefill continuing a context, mixed.
BATCHES = {
    "decode": ([1, 1, 1], [37, 1, 130]),
    "prefill": ([5, 33], [5, 33]),
    "mixed": ([1, 17, 3, 1, 40], [64, 50, 3, 1, 100]),
}
# (hq, hk, head_size, block_size)
LAYOUTS = [(4, 4, 64, 16), (8, 2, 80, 32), (6, 1, 72, 64), (4, 2, 36, 128), (2, 1, 256, 16)]


def _namespace(impl: Impl) -> str:
    return ops.CPU if impl.method == "cpu" else ops.CUDA


def _run(impl: Impl, batch: dict[str, torch.Tensor], scale: float) -> torch.Tensor:
    out = torch.empty_like(batch["query"])
    q_lens = batch["query_start_loc"].diff()
    ops.paged_attention(
        out, batch["query"], batch["key_cache"], batch["value_cache"], batch["block_tables"],
        batch["seq_lens"], batch["query_start_loc"], int(q_lens.max()),
        int(batch["seq_lens"].max()), scale, ns=_namespace(impl),
    )
    return out


# Every dtype on the mixed batch; the decode-only and prefill-only batches in fp32.
CASES = [("mixed", dt) for dt in DTYPES] + [(b, torch.float32) for b in ("decode", "prefill")]


@pytest.mark.parametrize("batch_name,dtype", CASES, ids=lambda x: str(x).replace("torch.", ""))
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda x: "-".join(map(str, x)))
def test_paged_attention(impl: Impl, device: str, batch_name, dtype, layout) -> None:
    hq, hk, d, bs = layout
    if impl.method in ("cuda", "hip"):
        from vllm.attention.backends.cuda import CudaAttentionBackend

        if d not in CudaAttentionBackend.supported_head_sizes():
            pytest.skip(f"_C paged_attention is compiled for head sizes "
                        f"{CudaAttentionBackend.supported_head_sizes()}, not {d}")
    q_lens, ctx_lens = BATCHES[batch_name]
    batch = make_batch(q_lens, ctx_lens, hq, hk, d, bs, dtype, device)
    scale = d**-0.5
    expected = ref_paged_attention(**batch, scale=scale)
    assert_close(_run(impl, batch, scale), expected, f"paged_attention {batch_name}")


def test_paged_attention_long_prefill_strided_query(impl: Impl, device: str) -> None:
    batch = make_batch([150], [200], 8, 2, 64, 16, torch.float32, device)
    wide = torch.randn(150, 8, 96, device=device)
    wide[..., :64] = batch["query"]
    batch["query"] = wide[..., :64]  # head and token strides differ from a packed tensor
    expected = ref_paged_attention(**batch, scale=0.1)
    assert_close(_run(impl, batch, 0.1), expected, "long prefill")


def _ref_moe(hidden, w13, w2, topk_weights, topk_ids) -> torch.Tensor:
    out = torch.zeros(hidden.shape, dtype=torch.float32)
    inter = w2.shape[-1]
    for t in range(hidden.shape[0]):
        for k in range(topk_ids.shape[1]):
            e = int(topk_ids[t, k])
            gu = w13[e].float() @ hidden[t].float()
            act = torch.nn.functional.silu(gu[:inter]) * gu[inter:]
            out[t] += float(topk_weights[t, k]) * (w2[e].float() @ act)
    return out.to(hidden.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tokens", [1, 13])
def test_fused_moe(impl: Impl, device: str, dtype, tokens) -> None:
    if impl.method != "cpu" and not hasattr(torch.ops._C, "fused_moe"):
        pytest.skip(f"no fused_moe kernel for forward_{impl.method}")
    e, h, inter, k = 6, 40, 24, 2
    hidden = torch.randn(tokens, h, dtype=dtype, device=device)
    w13 = (torch.randn(e, 2 * inter, h) * 0.2).to(dtype).to(device)
    w2 = (torch.randn(e, h, inter) * 0.2).to(dtype).to(device)
    logits = torch.randn(tokens, e)
    topk_weights, topk_ids = logits.softmax(-1).topk(k, dim=-1)
    expected = _ref_moe(hidden.cpu(), w13.cpu(), w2.cpu(), topk_weights, topk_ids)
    out = torch.empty_like(hidden)
    ops.fused_moe(out, hidden, w13, w2, topk_weights.to(device), topk_ids.to(device),
                  ns=_namespace(impl))
    atol, rtol = {torch.float32: (1e-4, 1e-4), torch.bfloat16: (6e-2, 4e-2),
                  torch.float16: (1e-2, 1e-2)}[dtype]
    torch.testing.assert_close(out.cpu(), expected, atol=atol, rtol=rtol)
