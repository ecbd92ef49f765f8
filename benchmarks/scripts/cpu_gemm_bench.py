"""Few-row bf16 GEMMs on the CPU: oneDNN (`F.linear`) against `_C_cpu::gemm_bf16_packed`.

python benchmarks/scripts/cpu_gemm_bench.py [--so OLD_C_cpu.so] [--threads N]
(--so: time the packed kernel of another `_C_cpu` build, e.g. HEAD's, for an A/B in turn.)
30 distinct weights per shape are rotated so each call streams its weight from memory, as the
layers of a decode step do. Prints the median time and the weight bytes per second.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from vllm.platforms.cpu_gemm import pack_bf16_weight

SHAPES = [(16, 576, 3072), (16, 1536, 576), (16, 576, 49152), (32, 576, 3072), (64, 576, 3072)]


def median_us(fn, n: int = 60) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(median, min) in microseconds: on a shared machine the min is the kernel's own cost."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[n // 2] * 1e6, times[0] * 1e6


def bench_shape(m: int, k: int, n: int) -> None:
    count = 30 if n < 10000 else 2
    weights = [torch.randn(n, k).bfloat16() for _ in range(count)]
    packed = [pack_bf16_weight(w) for w in weights]
    x = torch.randn(m, k).bfloat16()
    out = torch.empty(m, n, dtype=torch.bfloat16)
    i = [0]

    def onednn() -> None:
        i[0] = (i[0] + 1) % count
        F.linear(x, weights[i[0]])

    def kernel() -> None:
        i[0] = (i[0] + 1) % count
        torch.ops._C_cpu.gemm_bf16_packed(out, x, packed[i[0]], n)

    (a, amin), (b, bmin) = median_us(onednn), median_us(kernel)
    mb = n * k * 2 / 1e6
    print(f"{m} x {k} x {n}: oneDNN {a:.0f} us ({mb / a * 1e3:.1f} GB/s), packed {b:.0f} us "
          f"({mb / b * 1e3:.1f} GB/s), {a / b:.2f}x | min: oneDNN {amin:.0f} us, packed "
          f"{bmin:.0f} us ({mb / bmin * 1e3:.1f} GB/s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--so", default=None, help="load this _C_cpu library instead of vllm._C_cpu")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.so:
        torch.ops.load_library(args.so)
    else:
        import vllm._C_cpu  # noqa: F401  (registers the op)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load average {open('/proc/loadavg').read().split()[:3]}, {torch.get_num_threads()} threads")
    torch.manual_seed(0)
    for m, k, n in SHAPES:
        bench_shape(m, k, n)


if __name__ == "__main__":
    main()
