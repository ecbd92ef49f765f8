"""Decode-sized GEMMs on CUDA: cuBLAS (F.linear) against `_C::gemv` per rows-per-warp choice.

Each timing replays a CUDA graph of 20 calls that cycle through enough weight copies (>= 400 MB)
that no call finds its weights in L2, as in a decode step where the other layers' weights pass
through L2 in between. Prints microseconds per call and the weight bytes streamed per second.
Usage (GPU host, vllm._C built): python benchmarks/scripts/gemv_bench.py [--rows 1 2 4]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from vllm import _custom_ops as ops

SHAPES = {  # name: (N, K)
    "8b.qkv": (6144, 4096), "8b.o": (4096, 4096), "8b.gate_up": (28672, 4096),
    "8b.down": (4096, 14336), "8b.lm_head": (128256, 4096),
    "0.5b.qkv": (1152, 896), "0.5b.o": (896, 896), "0.5b.gate_up": (9728, 896),
    "0.5b.down": (896, 4864), "0.5b.lm_head": (151936, 896),
}
CALLS = 20


def time_graph(fn, reps: int = 10) -> float:  # type: ignore[no-untyped-def]
    """Microseconds per call of `fn(i)` for i in range(CALLS), replayed as one graph."""
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        for i in range(CALLS):
            fn(i)  # warm-up (cuBLAS workspace, lazy loading) outside the capture
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(CALLS):
            fn(i)
    g.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        g.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1e3 / (reps * CALLS)


def time_row(ws: list[torch.Tensor], m: int) -> list[float]:
    """[cuBLAS, gemv rows_per_warp 0, 1, 2, 4] microseconds per call for an [m, K] input."""
    n, k = ws[0].shape
    x = torch.randn(m, k, dtype=ws[0].dtype, device="cuda")
    out = torch.empty(m, n, dtype=ws[0].dtype, device="cuda")
    ref = F.linear(x, ws[0])
    cells = [time_graph(lambda i: torch.mm(x, ws[i % len(ws)].T, out=out))]
    for r in (0, 1, 2, 4):
        ops.gemv(out, x, ws[0], None, ns=ops.CUDA, rows_per_warp=r)
        err = (out.float() - ref.float()).abs().max().item()
        assert err < 0.05, f"[{n}, {k}] M={m} rows={r}: max error {err}"
        cells.append(time_graph(
            lambda i, r=r: ops.gemv(out, x, ws[i % len(ws)], None, ns=ops.CUDA, rows_per_warp=r)))
    return cells


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--shapes", nargs="*", default=list(SHAPES))
    args = ap.parse_args()
    if not ops.has_op(ops.CUDA, "gemv"):  # also loads vllm._C
        raise SystemExit("vllm._C with gemv is not built")
    print(f"{torch.cuda.get_device_name()}, bf16; us per call (GB/s of weights)")
    header = " ".join(f"{'gemv r' + str(r):>16}" for r in (0, 1, 2, 4))
    print(f"{'shape':14} {'M':>2} {'cuBLAS':>16} {header}")
    for name in args.shapes:
        n, k = SHAPES[name]
        nbytes = n * k * 2
        copies = max(1, min(CALLS, -(-400_000_000 // nbytes)))
        ws = [torch.randn(n, k, dtype=torch.bfloat16, device="cuda") / k**0.5 for _ in range(copies)]
        for m in args.rows:
            txt = " ".join(f"{us:8.1f} ({nbytes / us / 1e3:5.0f})" for us in time_row(ws, m))
            print(f"{name:14} {m:>2} {txt}", flush=True)


if __name__ == "__main__":
    main()
