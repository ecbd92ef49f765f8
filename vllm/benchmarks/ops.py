"""`vllm bench ops`: time every CustomOp kernel against its forward_native at LLM shapes.

For each op, each implementation available on this platform (forward_cpu, forward_cuda, ...) is
timed next to forward_native on the same inputs; the table reports the median time, the speedup
over native and the achieved memory bandwidth (bytes read + written / time).
"""

from __future__ import annotations

import datetime
import json
import platform as py_platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import click
import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Case:
    """One op at one shape: the CustomOp instance, a call taking (op method), bytes moved."""

    op: str
    shape: str
    layer: Any
    call: Callable[[Callable[..., Any]], Any]
    nbytes: int


@dataclass
class Result:
    op: str
    impl: str
    dtype: str
    shape: str
    median_ms: float
    min_ms: float
    speedup: float  # native median / this median
    speedup_min: float  # native min / this min (robust when other processes share the CPU)
    gbps: float  # bytes moved / median time


def _norm_cases(dt: torch.dtype, dev: str, tokens: int, hidden: int) -> list[Case]:
    from vllm.model_executor.layers.layernorm import RMSNorm

    layer = RMSNorm(hidden, dtype=dt).to(dev)
    x = torch.randn(tokens, hidden, dtype=dt, device=dev)
    res = torch.randn_like(x)
    es, shape = x.element_size(), f"{tokens}x{hidden}"
    return [
        Case("rms_norm", shape, layer, lambda f: f(x), 2 * x.numel() * es + hidden * es),
        Case("fused_add_rms_norm", shape, layer, lambda f: f(x, res), 4 * x.numel() * es),
    ]


def _act_cases(dt: torch.dtype, dev: str, tokens: int, inter: int) -> list[Case]:
    from vllm.model_executor.layers.activation import GeluAndMul, SiluAndMul

    x = torch.randn(tokens, 2 * inter, dtype=dt, device=dev)
    nbytes, shape = 3 * tokens * inter * x.element_size(), f"{tokens}x{2 * inter}"
    layers = {"silu_and_mul": SiluAndMul(), "gelu_and_mul": GeluAndMul("none"),
              "gelu_tanh_and_mul": GeluAndMul("tanh")}
    return [Case(name, shape, layer, lambda f: f(x), nbytes) for name, layer in layers.items()]


def _rope_case(dt: torch.dtype, dev: str, tokens: int, hq: int, hk: int, d: int) -> Case:
    from vllm.model_executor.layers.rotary_embedding import RotaryEmbedding

    rope = RotaryEmbedding(d, d, 8192, 10000.0, True, dtype=dt).to(dev)
    q = torch.randn(tokens, hq * d, dtype=dt, device=dev)
    k = torch.randn(tokens, hk * d, dtype=dt, device=dev)
    pos = torch.randint(0, 8192, (tokens,), device=dev)
    nbytes = (2 * (q.numel() + k.numel()) + tokens * d) * q.element_size()
    return Case("rotary_embedding", f"{tokens}t {hq}/{hk}h d{d}", rope, lambda f: f(pos, q, k),
                nbytes)


def _cache_case(dt: torch.dtype, dev: str, tokens: int, hk: int, d: int) -> Case:
    from vllm.model_executor.layers.kv_cache import ReshapeAndCache

    bs, blocks = 16, 4 * tokens // 16
    k = torch.randn(tokens, hk, d, dtype=dt, device=dev)
    v = torch.randn_like(k)
    kc = torch.zeros(blocks, bs, hk, d, dtype=dt, device=dev)
    vc = torch.zeros_like(kc)
    slots = torch.randperm(blocks * bs, device=dev)[:tokens]
    return Case("reshape_and_cache", f"{tokens}t {hk}h d{d}", ReshapeAndCache(),
                lambda f: f(k, v, kc, vc, slots), 4 * k.numel() * k.element_size())


def _attn_case(dt: torch.dtype, dev: str, seqs: int, ctx: int | tuple[int, int], hq: int, hk: int,
               d: int) -> Case:
    """Decode (one query token per sequence); ctx is a length or a (lo, hi) range to draw from."""
    from vllm.attention.paged_attention import PagedAttention

    bs = 16
    lo, hi = (ctx, ctx) if isinstance(ctx, int) else ctx
    gen = torch.Generator().manual_seed(0)
    lens = torch.randint(lo, hi + 1, (seqs,), generator=gen)
    per_seq = (hi + bs - 1) // bs
    nb = seqs * per_seq
    kc = torch.randn(nb, bs, hk, d, dtype=dt, device=dev)
    vc = torch.randn_like(kc)
    bt = torch.randperm(nb, generator=gen).to(torch.int32).view(seqs, per_seq).to(dev)
    seq_lens = lens.to(torch.int32).to(dev)
    qsl = torch.arange(seqs + 1, dtype=torch.int32, device=dev)
    q = torch.randn(seqs, hq, d, dtype=dt, device=dev)
    out = torch.empty_like(q)
    nbytes = (2 * int(lens.sum()) * hk * d + 2 * q.numel()) * q.element_size()
    shape = f"decode {seqs}x{ctx if lo == hi else f'[{lo},{hi}]'} {hq}/{hk}h d{d}"
    return Case("paged_attention", shape, PagedAttention(),
                lambda f: f(out, q, kc, vc, bt, seq_lens, qsl, 1, hi, d**-0.5), nbytes)


# Shape sets: "llm" = 7B-class layers at 256 tokens; "decode" = the smollm2-135m shape of the
# CPU throughput benchmark at one decode step of 64 sequences (hidden 576, intermediate 1536,
# 9 query / 3 kv heads of 64, contexts of 128-256 tokens), where fixed per-call costs matter.
SHAPES = {
    "llm": dict(tokens=256, hidden=4096, inter=11008, hq=32, hk=8, d=128, seqs=(256, 32),
                ctx=1024),
    "decode": dict(tokens=64, hidden=576, inter=1536, hq=9, hk=3, d=64, seqs=(64, 64),
                   ctx=(128, 256)),
}


def build_cases(dt: torch.dtype, dev: str, gpu: bool, wanted: set[str],
                shapes: str = "llm") -> list[Case]:
    """The cases for the ops in `wanted` (all when empty); inputs are only made for those."""
    sh = SHAPES[shapes]
    t, hq, hk, d = sh["tokens"], sh["hq"], sh["hk"], sh["d"]
    seqs = sh["seqs"][0] if gpu else sh["seqs"][1]
    groups: list[tuple[tuple[str, ...], Callable[[], list[Case]]]] = [
        (("rms_norm", "fused_add_rms_norm"), lambda: _norm_cases(dt, dev, t, sh["hidden"])),
        (("silu_and_mul", "gelu_and_mul", "gelu_tanh_and_mul"),
         lambda: _act_cases(dt, dev, t, sh["inter"])),
        (("rotary_embedding",), lambda: [_rope_case(dt, dev, t, hq, hk, d)]),
        (("reshape_and_cache",), lambda: [_cache_case(dt, dev, t, hk, d)]),
        (("paged_attention",), lambda: [_attn_case(dt, dev, seqs, sh["ctx"], hq, hk, d)]),
    ]
    known = {name for names, _ in groups for name in names}
    unknown = wanted - known
    if unknown:
        raise click.BadParameter(f"unknown ops {sorted(unknown)}; choose from {sorted(known)}",
                                 param_hint="--ops")
    cases: list[Case] = []
    for names, make in groups:
        if not wanted or wanted & set(names):
            cases += [c for c in make() if not wanted or c.op in wanted]
    return cases


def time_call(
    fn: Callable[[], Any], iters: int, warmup: int, sync: Callable[[], None]
) -> tuple[float, float]:
    """(median, min) wall time of fn() in milliseconds."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times)


def impl_methods(layer: Any) -> list[str]:
    """Non-native methods of `layer` that can run on this platform, in preference order."""
    from vllm.platforms import current_platform

    return [m for m in current_platform.op_method_order
            if m != "native" and type(layer).implements(m) and current_platform.method_available(m)[0]]


def bench_case(case: Case, dtype_name: str, iters: int, warmup: int) -> list[Result]:
    from vllm.platforms import current_platform

    sync = current_platform.synchronize
    rows: list[Result] = []
    native = (0.0, 0.0)
    for method in ["native", *impl_methods(case.layer)]:
        fn = getattr(case.layer, f"forward_{method}")
        ms, best = time_call(lambda fn=fn: case.call(fn), iters, warmup, sync)
        native = (ms, best) if method == "native" else native
        rows.append(Result(case.op, method, dtype_name, case.shape, ms, best, native[0] / ms,
                           native[1] / best, case.nbytes / (ms * 1e-3) / 1e9))
    return rows


def machine() -> dict[str, Any]:
    from vllm.platforms import current_platform

    info: dict[str, Any] = {"platform": current_platform.name, "device": current_platform.device_name(),
                            "torch": torch.__version__, "threads": torch.get_num_threads(),
                            "python": py_platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
        info["cpu_model"] = model
    except OSError:
        pass
    if current_platform.has_extension("_C_cpu"):
        from vllm import _C_cpu  # type: ignore[attr-defined]

        info["kernel_isa"] = _C_cpu.isa()
        info["compiled_isas"] = _C_cpu.compiled_isas()
    return info


def format_table(rows: list[Result]) -> str:
    head = (f"| {'op':<18} | {'impl':<6} | {'dtype':<5} | {'shape':<26} | {'median ms':>9} "
            f"| {'min ms':>9} | {'vs native':>9} | {'(min)':>8} | {'GB/s':>7} |")
    sep = "|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|"
    lines = [head, sep]
    for r in rows:
        lines.append(f"| {r.op:<18} | {r.impl:<6} | {r.dtype:<5} | {r.shape:<26} | {r.median_ms:>9.3f} "
                     f"| {r.min_ms:>9.3f} | {r.speedup:>8.2f}x | {r.speedup_min:>7.2f}x | {r.gbps:>7.2f} |")
    return "\n".join(lines)


@click.command("ops")
@click.option("--dtype", "dtypes", default="bf16,fp32", show_default=True,
              help="Comma-separated dtypes: fp32, bf16, fp16.")
@click.option("--iters", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(0, 1000))
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 1024),
              help="torch / OpenMP threads (CPU).")
@click.option("--ops", "only", default="", help="Comma-separated op names to run (default all).")
@click.option("--shapes", type=click.Choice(sorted(SHAPES)), default="llm", show_default=True,
              help="llm: 7B-class layers at 256 tokens; decode: smollm2-135m at 64 sequences.")
@click.option("--json", "json_path", default=None, help="Write the results as JSON here.")
def ops_cmd(dtypes: str, iters: int, warmup: int, threads: int, only: str, shapes: str,
            json_path: str | None) -> None:
    """Time each op's kernels vs forward_native at LLM shapes."""
    from vllm.platforms import current_platform

    names = [d.strip() for d in dtypes.split(",") if d.strip()]
    bad = [d for d in names if d not in DTYPES]
    if bad or not names:
        raise click.BadParameter(f"{bad or dtypes!r}: choose from {', '.join(DTYPES)}", param_hint="--dtype")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    wanted = {o.strip() for o in only.split(",") if o.strip()}
    dev = current_platform.device_type
    rows: list[Result] = []
    for name in names:
        for case in build_cases(DTYPES[name], dev, dev != "cpu", wanted, shapes):
            rows += bench_case(case, name, iters, warmup)
    click.echo(format_table(rows))
    if json_path:
        doc = {"command": " ".join(["vllm", "bench", "ops", *sys.argv[3:]]),
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), "iters": iters, "shapes": shapes, "results": [asdict(r) for r in rows]}
        with open(json_path, "w") as f:
            json.dump(doc, f, indent=2)
        click.echo(f"wrote {json_path}")
