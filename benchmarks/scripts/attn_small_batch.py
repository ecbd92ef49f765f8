"""Small-batch decode attention latency on CUDA: the `_C` split-K kernel planned for the real
context vs for a graph's max_model_len hint, and the Triton kernel (32 q / 8 kv heads, d128).

usage: python benchmarks/scripts/attn_small_batch.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "csrc" / "cuda" / "bench"))
from bench_ops import time_graph  # noqa: E402

from vllm import _custom_ops as ops  # noqa: E402
from vllm.attention.ops.triton_paged_attention import triton_paged_attention  # noqa: E402


def main() -> None:
    assert ops.loaded(ops.CUDA), "vllm._C is not built"
    hq, hk, d, bs, dt = 32, 8, 128, 16, torch.bfloat16
    print("| seqs | ctx | _C (hint = ctx) us | _C (hint 131072) us | Triton us |")
    print("|---:|---:|---:|---:|---:|")
    for S in (1, 4, 16):
        for ctx in (136, 1024, 8192):
            blocks = math.ceil(ctx / bs)
            kc = torch.randn(S * blocks, bs, hk, d, dtype=dt, device="cuda")
            vc = torch.randn_like(kc)
            bt = torch.randperm(S * blocks, device="cuda").to(torch.int32).view(S, blocks)
            sl = torch.full((S,), ctx, dtype=torch.int32, device="cuda")
            qsl = torch.arange(S + 1, dtype=torch.int32, device="cuda")
            q = torch.randn(S, hq, d, dtype=dt, device="cuda")
            o = torch.empty_like(q)
            base = (o, q, kc, vc, bt, sl, qsl, 1)
            c_real = time_graph([lambda b=base, c=ctx: ops.paged_attention(*b, c, d**-0.5, ns=ops.CUDA)])
            c_hint = time_graph([lambda b=base: ops.paged_attention(*b, 131072, d**-0.5, ns=ops.CUDA)])
            tri = time_graph([lambda b=base: triton_paged_attention(*b, 131072, d**-0.5)])
            print(f"| {S} | {ctx} | {c_real * 1e6:.1f} | {c_hint * 1e6:.1f} | {tri * 1e6:.1f} |")


if __name__ == "__main__":
    main()
