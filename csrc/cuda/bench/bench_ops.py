"""Times the `_C` CUDA kernels at LLM shapes; prints a markdown table and writes JSON.

Each case runs the kernel over enough rotating input sets (>= 256 MiB in total) that the
50 MB L2 does not hold them, captured in a CUDA graph (launch gaps hidden), median of several
replays. Peers measured in the same run: a device-to-device copy (the bandwidth ceiling) and the
PyTorch reference (forward_native) of the same op.

usage: python csrc/cuda/bench/bench_ops.py [--json out.json] [--only name,...]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Callable

import torch

from vllm import _custom_ops as ops

DEV = "cuda"
ROTATE_BYTES = 256 << 20


def time_graph(fns: list[Callable[[], None]], trials: int = 7, reps: int = 5) -> float:
    """Median seconds per call of the fns (one call each per replay), via a CUDA graph."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for f in fns:  # warm-up outside capture
            f()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps):
            for f in fns:
                f()
    g.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(trials):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3 / (reps * len(fns)))
    return statistics.median(times)


def time_eager(fns: list[Callable[[], None]], trials: int = 7) -> float:
    for f in fns:
        f()
    torch.cuda.synchronize()
    times = []
    for _ in range(trials):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for f in fns:
            f()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3 / len(fns))
    return statistics.median(times)


def n_sets(bytes_per_call: int) -> int:
    return max(1, min(64, math.ceil(ROTATE_BYTES / max(1, bytes_per_call))))


def copy_bandwidth() -> float:
    x = torch.randn(1 << 28, device=DEV)  # 1 GiB
    y = torch.empty_like(x)
    t = time_graph([lambda: y.copy_(x)], reps=3)
    return 2 * x.numel() * 4 / t


# ---- cases: each returns (kernel fns, native fns or None, bytes per call) -------------------
def case_rms(T: int, H: int, dtype: torch.dtype, fused: bool):
    from vllm.model_executor.layers.layernorm import RMSNorm

    layer = RMSNorm(H, 1e-6, dtype).to(DEV)
    nbytes = (4 if fused else 2) * T * H * dtype.itemsize
    sets = [(torch.randn(T, H, dtype=dtype, device=DEV), torch.randn(T, H, dtype=dtype, device=DEV))
            for _ in range(n_sets(nbytes))]
    if fused:
        k = [lambda x=x, r=r: ops.fused_add_rms_norm(x, r, layer.weight, 1e-6, ops.CUDA) for x, r in sets]
        n = [lambda x=x, r=r: layer.forward_native(x, r) for x, r in sets[:4]]
    else:
        k = [lambda x=x, o=o: ops.rms_norm(o, x, layer.weight, 1e-6, ops.CUDA) for x, o in sets]
        n = [lambda x=x: layer.forward_native(x) for x, _ in sets[:4]]
    return k, n, nbytes


def case_act(T: int, inter: int, dtype: torch.dtype, kind: str):
    from vllm.model_executor.layers.activation import GeluAndMul, SiluAndMul

    layer = SiluAndMul() if kind == "silu" else GeluAndMul("tanh" if kind == "gelu_tanh" else "none")
    nbytes = 3 * T * inter * dtype.itemsize
    sets = [(torch.randn(T, 2 * inter, dtype=dtype, device=DEV),
             torch.empty(T, inter, dtype=dtype, device=DEV)) for _ in range(n_sets(nbytes))]
    if kind == "silu":
        k = [lambda x=x, o=o: ops.silu_and_mul(o, x, ops.CUDA) for x, o in sets]
    else:
        approx = "tanh" if kind == "gelu_tanh" else "none"
        k = [lambda x=x, o=o: ops.gelu_and_mul(o, x, approx, ops.CUDA) for x, o in sets]
    n = [lambda x=x: layer.forward_native(x) for x, _ in sets[:4]]
    return k, n, nbytes


def case_rope(T: int, hq: int, hk: int, d: int, dtype: torch.dtype):
    from vllm.model_executor.layers.rotary_embedding import RotaryEmbedding

    rope = RotaryEmbedding(d, d, 8192, 10000.0, True, None, dtype).to(DEV)
    nbytes = 2 * T * (hq + hk) * d * dtype.itemsize
    sets = [(torch.randint(0, 8192, (T,), device=DEV), torch.randn(T, hq * d, dtype=dtype, device=DEV),
             torch.randn(T, hk * d, dtype=dtype, device=DEV)) for _ in range(n_sets(nbytes))]
    k = [lambda p=p, q=q, kk=kk: ops.rotary_embedding(p, q, kk, d, rope.cos_sin_cache, True, ops.CUDA)
         for p, q, kk in sets]
    n = [lambda p=p, q=q, kk=kk: rope.forward_native(p, q, kk) for p, q, kk in sets[:4]]
    return k, n, nbytes


def case_cache(T: int, hk: int, d: int, bs: int, dtype: torch.dtype):
    from vllm.model_executor.layers.kv_cache import ReshapeAndCache

    nbytes = 4 * T * hk * d * dtype.itemsize + T * 8
    nb = max(64, 4 * T // bs)
    kc = torch.zeros(nb, bs, hk, d, dtype=dtype, device=DEV)
    vc = torch.zeros_like(kc)
    sets = [(torch.randn(T, hk, d, dtype=dtype, device=DEV), torch.randn(T, hk, d, dtype=dtype, device=DEV),
             torch.randperm(nb * bs, device=DEV)[:T]) for _ in range(n_sets(nbytes))]
    k = [lambda a=a, b=b, s=s: ops.reshape_and_cache(a, b, kc, vc, s, ops.CUDA) for a, b, s in sets]
    op = ReshapeAndCache()
    n = [lambda a=a, b=b, s=s: op.forward_native(a, b, kc, vc, s) for a, b, s in sets[:4]]
    return k, n, nbytes


def case_attn(S: int, ctx: int, q_len: int, hq: int, hk: int, d: int, bs: int, dtype: torch.dtype,
              impl: str = "c"):
    """impl: "c" (the `_C` kernel) or "triton" (vllm/attention/ops/triton_paged_attention.py)."""
    from vllm.attention.paged_attention import paged_attention_native

    blocks = math.ceil(ctx / bs)
    kv_bytes = 2 * S * ctx * hk * d * dtype.itemsize
    T = S * q_len
    nbytes = kv_bytes + 2 * T * hq * d * dtype.itemsize
    nsets = n_sets(nbytes)
    kc = torch.randn(S * blocks * nsets, bs, hk, d, dtype=dtype, device=DEV)
    vc = torch.randn_like(kc)
    perm = torch.randperm(S * blocks * nsets, device=DEV).to(torch.int32).view(nsets, S, blocks)
    sl = torch.full((S,), ctx, dtype=torch.int32, device=DEV)
    qsl = torch.arange(S + 1, dtype=torch.int32, device=DEV) * q_len
    q = torch.randn(T, hq, d, dtype=dtype, device=DEV)
    o = torch.empty_like(q)
    args = lambda i: (o, q, kc, vc, perm[i], sl, qsl, q_len, ctx, d**-0.5)  # noqa: E731
    if impl == "triton":
        from vllm.attention.ops.triton_paged_attention import triton_paged_attention

        k = [lambda i=i: triton_paged_attention(*args(i)) for i in range(nsets)]
    else:
        k = [lambda i=i: ops.paged_attention(*args(i), ops.CUDA) for i in range(nsets)]
    n = [lambda i=i: paged_attention_native(*args(i)) for i in range(1)] if S * ctx <= 65536 else None
    return k, n, nbytes


def case_moe(T: int, H: int, inter: int, E: int, topk: int, dtype: torch.dtype):
    from vllm.model_executor.layers.fused_moe import fused_moe_reference, select_experts

    hidden = torch.randn(T, H, dtype=dtype, device=DEV)
    w13 = torch.randn(E, 2 * inter, H, dtype=dtype, device=DEV) / 32
    w2 = torch.randn(E, H, inter, dtype=dtype, device=DEV) / 32
    wts, ids = select_experts(torch.randn(T, E, device=DEV), topk, True)
    out = torch.empty_like(hidden)
    k = [lambda: ops.fused_moe(out, hidden, w13, w2, wts, ids, ops.CUDA)]
    n = [lambda: fused_moe_reference(hidden, w13, w2, wts, ids)]
    return k, n, (w13.numel() + w2.numel()) * dtype.itemsize


BF16 = torch.bfloat16
CASES: dict[str, Callable] = {
    "rms_norm 256x4096 bf16": lambda: case_rms(256, 4096, BF16, False),
    "rms_norm 4096x4096 bf16": lambda: case_rms(4096, 4096, BF16, False),
    "rms_norm 4096x8192 fp16": lambda: case_rms(4096, 8192, torch.float16, False),
    "fused_add_rms_norm 256x4096 bf16": lambda: case_rms(256, 4096, BF16, True),
    "fused_add_rms_norm 4096x4096 bf16": lambda: case_rms(4096, 4096, BF16, True),
    "silu_and_mul 256x14336 bf16": lambda: case_act(256, 14336, BF16, "silu"),
    "silu_and_mul 4096x14336 bf16": lambda: case_act(4096, 14336, BF16, "silu"),
    "gelu_and_mul 4096x14336 bf16": lambda: case_act(4096, 14336, BF16, "gelu"),
    "gelu_tanh_and_mul 4096x14336 bf16": lambda: case_act(4096, 14336, BF16, "gelu_tanh"),
    "rotary neox 4096 tok 32/8 heads d128 bf16": lambda: case_rope(4096, 32, 8, 128, BF16),
    "reshape_and_cache 256 tok 8x128 bs16 bf16": lambda: case_cache(256, 8, 128, 16, BF16),
    "reshape_and_cache 4096 tok 8x128 bs16 bf16": lambda: case_cache(4096, 8, 128, 16, BF16),
    "paged_attn decode 256x1024 32/8 d128 bs16 bf16": lambda: case_attn(256, 1024, 1, 32, 8, 128, 16, BF16),
    "paged_attn decode 256x1024 32/8 d128 bs128 bf16": lambda: case_attn(256, 1024, 1, 32, 8, 128, 128, BF16),
    "paged_attn decode 16x8192 32/8 d128 bs16 bf16": lambda: case_attn(16, 8192, 1, 32, 8, 128, 16, BF16),
    "paged_attn decode 64x512 32/32 d128 bs16 bf16": lambda: case_attn(64, 512, 1, 32, 32, 128, 16, BF16),
    "paged_attn prefill 4x512 (q=512) 32/8 d128 bf16": lambda: case_attn(4, 512, 512, 32, 8, 128, 16, BF16),
    "paged_attn triton decode 256x1024 32/8 d128 bs16 bf16":
        lambda: case_attn(256, 1024, 1, 32, 8, 128, 16, BF16, "triton"),
    "paged_attn decode 256x192 32/8 d128 bs16 bf16": lambda: case_attn(256, 192, 1, 32, 8, 128, 16, BF16),
    "paged_attn triton decode 256x192 32/8 d128 bs16 bf16":
        lambda: case_attn(256, 192, 1, 32, 8, 128, 16, BF16, "triton"),
    "paged_attn triton decode 256x192 14/2 d64 bs16 bf16":
        lambda: case_attn(256, 192, 1, 14, 2, 64, 16, BF16, "triton"),
    "paged_attn decode 256x192 14/2 d64 bs16 bf16": lambda: case_attn(256, 192, 1, 14, 2, 64, 16, BF16),
    "paged_attn triton decode 64x512 32/32 d128 bs16 bf16":
        lambda: case_attn(64, 512, 1, 32, 32, 128, 16, BF16, "triton"),
    "paged_attn triton prefill 4x512 (q=512) 32/8 d128 bf16":
        lambda: case_attn(4, 512, 512, 32, 8, 128, 16, BF16, "triton"),
    "fused_moe 256 tok H2048 I1408 E8 top2 bf16": lambda: case_moe(256, 2048, 1408, 8, 2, BF16),
}


def run(only: list[str] | None) -> list[dict]:
    bw = copy_bandwidth()
    print(f"device: {torch.cuda.get_device_name()}  copy bandwidth: {bw / 1e12:.2f} TB/s (read+write)")
    rows = []
    for name, make in CASES.items():
        if only and not any(o in name for o in only):
            continue
        k, n, nbytes = make()
        graphable = not name.startswith("fused_moe")
        t = time_graph(k) if graphable else time_eager(k)
        tn = None
        if n:
            try:
                tn = time_eager(n, trials=3)
            except Exception as e:  # noqa: BLE001 - the reference may not fit; report and go on
                print(f"  native {name}: {type(e).__name__}: {e}")
        row = {"case": name, "us": t * 1e6, "GBps": nbytes / t / 1e9, "pct_copy_bw": 100 * nbytes / t / bw,
               "pct_3TBps": 100 * nbytes / t / 3e12, "native_us": tn * 1e6 if tn else None,
               "speedup_vs_native": tn / t if tn else None, "bytes": nbytes}
        rows.append(row)
        print(f"  {name}: {row['us']:.1f} us, {row['GBps']:.0f} GB/s "
              f"({row['pct_3TBps']:.0f}% of 3 TB/s)", flush=True)
        torch.cuda.empty_cache()
    rows.append({"case": "_copy_bandwidth", "GBps": bw / 1e9})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| case | time (us) | GB/s | % of 3.0 TB/s | % of measured copy BW | native (us) | speedup |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if r["case"].startswith("_"):
            continue
        nat = f"{r['native_us']:.1f}" if r["native_us"] else "-"
        sp = f"{r['speedup_vs_native']:.1f}x" if r["speedup_vs_native"] else "-"
        lines.append(f"| {r['case']} | {r['us']:.1f} | {r['GBps']:.0f} | {r['pct_3TBps']:.0f} | "
                     f"{r['pct_copy_bw']:.0f} | {nat} | {sp} |")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--only")
    a = ap.parse_args()
    assert ops.loaded(ops.CUDA), "vllm._C is not built"
    torch.manual_seed(0)
    result = run(a.only.split(",") if a.only else None)
    if a.json:
        with open(a.json, "w") as f:
            meta = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
            json.dump({**meta, "rows": result}, f, indent=1)
    print(table(result))
