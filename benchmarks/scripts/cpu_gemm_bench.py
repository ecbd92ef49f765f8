"""Few-row bf16 GEMMs on the CPU: oneDNN (`F.linear`) against `_C_cpu::gemm_bf16_packed`.

python benchmarks/scripts/cpu_gemm_bench.py
30 distinct weights per shape are rotated so each call streams its weight from memory, as the
layers of a decode step do. Prints the median time and the weight bytes per second.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from vllm.platforms.cpu_gemm import pack_bf16_weight

SHAPES = [(16, 576, 3072), (16, 1536, 576), (16, 576, 49152), (32, 576, 3072), (64, 576, 3072)]


def median_us(fn, n: int = 60) -> float:  # type: ignore[no-untyped-def]
    for _ in range(5):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[n // 2] * 1e6


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

    a, b = median_us(onednn), median_us(kernel)
    mb = n * k * 2 / 1e6
    print(f"{m} x {k} x {n}: oneDNN {a:.0f} us ({mb / a * 1e3:.1f} GB/s), packed {b:.0f} us "
          f"({mb / b * 1e3:.1f} GB/s), {a / b:.2f}x")


def main() -> None:
    import vllm._C_cpu  # noqa: F401  (registers the op)

    torch.manual_seed(0)
    for m, k, n in SHAPES:
        bench_shape(m, k, n)


if __name__ == "__main__":
    main()
