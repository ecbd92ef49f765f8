"""Micro-benchmarks of `_C_cpu` at decode sizes, calling `torch.ops._C_cpu` directly (no Python
CustomOp layer), so two builds of the extension can be compared in one session:

    python benchmarks/scripts/cpu_decode_ops.py attention --dtype bf16 --threads 1
    python benchmarks/scripts/cpu_decode_ops.py attention --layout same   # K/V cached: compute
    python benchmarks/scripts/cpu_decode_ops.py fixed --threads 2         # small ops, per call
    python benchmarks/scripts/cpu_decode_ops.py attention --so /path/to/other/_C_cpu*.so

attention: one decode step of the smollm2-135m throughput run (64 sequences, 9 query / 3 kv
heads of 64, block 16), context --ctx for every sequence, blocks in random order (--layout rand),
in order (seq) or all sequences on the same 4 blocks (same). Prints min / p25 / median per call.
fixed: average per call over 2000 back-to-back calls (best of 5) of each small op at 64 tokens.
"""

from __future__ import annotations

import argparse
import glob
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}


def load_ops(so: str | None) -> object:
    path = so or str(REPO / "vllm" / "_C_cpu*.so")
    hits = glob.glob(path)
    if not hits:
        raise SystemExit(f"no _C_cpu build matches {path}")
    torch.ops.load_library(hits[0])
    return torch.ops._C_cpu


def attention(c: object, args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    s, hq, hk, d, bs = 64, 9, 3, 64, 16
    dt = DTYPES[args.dtype]
    per_seq = (args.ctx + bs - 1) // bs
    nb = s * per_seq
    tables = {"rand": torch.randperm(nb), "seq": torch.arange(nb), "same": torch.arange(nb) % 4}
    bt = tables[args.layout].to(torch.int32).view(s, per_seq)
    kc = torch.randn(nb, bs, hk, d, dtype=dt)  # [blocks, block_size, Hk, D]
    vc = torch.randn_like(kc)
    q = torch.randn(s, hq, d, dtype=dt)  # [S, Hq, D]
    out = torch.empty_like(q)
    lens = torch.full((s,), args.ctx, dtype=torch.int32)
    qsl = torch.arange(s + 1, dtype=torch.int32)

    def call() -> None:
        c.paged_attention(out, q, kc, vc, bt, lens, qsl, 1, args.ctx, d**-0.5)

    for _ in range(5):
        call()
    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    print(f"paged_attention decode 64x{args.ctx} {args.dtype} {args.layout} "
          f"threads={args.threads}: min {times[0]:.1f} us, p25 {times[len(times) // 4]:.1f}, "
          f"median {statistics.median(times):.1f}")


def per_call_us(fn: Callable[[], object], n: int = 2000) -> float:
    for _ in range(50):
        fn()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def fixed(c: object, args: argparse.Namespace) -> None:
    dt = DTYPES[args.dtype]
    w = torch.randn(576, dtype=dt)
    x0, x = torch.empty(0, 576, dtype=dt), torch.randn(64, 576, dtype=dt)
    o0, o, r = torch.empty_like(x0), torch.empty_like(x), torch.randn_like(x)
    g, go = torch.randn(64, 3072, dtype=dt), torch.empty(64, 1536, dtype=dt)
    q, k = torch.randn(64, 576, dtype=dt), torch.randn(64, 192, dtype=dt)
    pos, cs = torch.randint(0, 2048, (64,)), torch.randn(2048, 64, dtype=dt)
    kv = torch.randn(64, 3, 64, dtype=dt)
    kc, vc = torch.zeros(256, 16, 3, 64, dtype=dt), torch.zeros(256, 16, 3, 64, dtype=dt)
    slots = torch.randperm(4096)[:64]
    cases: dict[str, Callable[[], object]] = {
        "rms_norm empty (dispatch + checks)": lambda: c.rms_norm(o0, x0, w, 1e-5),
        "rms_norm 64x576": lambda: c.rms_norm(o, x, w, 1e-5),
        "fused_add_rms_norm 64x576": lambda: c.fused_add_rms_norm(x, r, w, 1e-5),
        "silu_and_mul 64x3072": lambda: c.silu_and_mul(go, g),
        "rotary 64t 9/3h d64": lambda: c.rotary_embedding(pos, q, k, 64, cs, True),
        "reshape_and_cache 64t 3h d64": lambda: c.reshape_and_cache(kv, kv, kc, vc, slots),
        "torch add_ 64x576 (reference)": lambda: x.add_(r),
    }
    for name, fn in cases.items():
        print(f"{name:36s} {per_call_us(fn):8.2f} us")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["attention", "fixed"])
    ap.add_argument("--so", default=None, help="_C_cpu build to load (glob); default: the repo's")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=192)
    ap.add_argument("--layout", choices=["rand", "seq", "same"], default="rand")
    ap.add_argument("--iters", type=int, default=60)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    c = load_ops(args.so)
    attention(c, args) if args.what == "attention" else fixed(c, args)


if __name__ == "__main__":
    main()
