"""Profile decode steps of a running engine with torch.profiler and print where the time goes.

Usage: python benchmarks/scripts/profile_decode.py --model CKPT [--batch 256] [--steps 5]
       [--enforce-eager] [--trace out.json]
Starts `batch` requests of 128 random prompt tokens, steps the engine until every request is
decoding, then profiles `steps` engine steps (scheduling + forward + sampling + output
processing) and prints the top kernels/ops by device time and by host time.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from vllm import LLM, SamplingParams
from vllm.benchmarks.common import random_token_prompts


def host_phases(engine, steps: int) -> None:  # type: ignore[no-untyped-def]
    """Unprofiled host time per step in each phase of the engine loop (wrapped methods)."""
    core = engine.core
    targets = [(core.scheduler, "schedule"), (core.executor, "execute_model_async"),
               (core.executor, "wait_model"), (core.scheduler, "update_from_output"),
               (engine.output_processor, "process")]
    totals = {name: 0.0 for _, name in targets}
    saved = []
    for obj, name in targets:
        fn = getattr(obj, name)
        saved.append((obj, name, fn))

        def timed(*a, _fn=fn, _name=name, **k):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                totals[_name] += time.perf_counter() - t

        setattr(obj, name, timed)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        engine.step()
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / steps
    for obj, name, fn in saved:
        setattr(obj, name, fn)
    parts = ", ".join(f"{k} {v / steps * 1e3:.2f}" for k, v in totals.items())
    print(f"host ms per step (wall {wall * 1e3:.2f}): {parts}; "
          f"steps ahead so far {getattr(core, 'num_steps_ahead', 'n/a')}")


def gpu_gaps(prof) -> None:  # type: ignore[no-untyped-def]
    """Idle time of the GPU between consecutive device activities, and the largest gaps."""
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type.name == "CUDA" and e.time_range.end > e.time_range.start)
    if not spans:
        return
    gaps, end = [], spans[0][1]
    for s, e in spans[1:]:
        if s > end:
            gaps.append(s - end)
        end = max(end, e)
    total = spans[-1][1] - spans[0][0]
    big = sorted(gaps, reverse=True)[:8]
    print(f"GPU span {total / 1e3:.2f} ms, idle {sum(gaps) / 1e3:.2f} ms in {len(gaps)} gaps; "
          f"largest (us): {[round(g) for g in big]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--enforce-eager", action="store_true")
    ap.add_argument("--trace", default=None)
    ap.add_argument("--prefill", action="store_true",
                    help="profile the first steps (prefill chunks) instead of decode steps")
    args = ap.parse_args()
    llm = LLM(model=args.model, enforce_eager=args.enforce_eager)
    engine = llm.llm_engine
    vocab = engine.core.executor.worker.runner.vocab_size  # type: ignore[attr-defined]
    params = SamplingParams(temperature=0.0, max_tokens=64, ignore_eos=True)
    for i, p in enumerate(random_token_prompts(args.batch, 128, vocab)):
        engine.add_request(str(i), p, params)
    if args.prefill:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                engine.step()
            torch.cuda.synchronize()
        print(f"{args.steps} first (prefill) steps: {(time.perf_counter() - t0) * 1e3:.1f} ms")
        gpu_gaps(prof)
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25))
        engine.shutdown()
        return
    for _ in range(8):  # prefill, then a few decode steps to warm up
        engine.step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        engine.step()
    torch.cuda.synchronize()
    per_step = (time.perf_counter() - t0) / args.steps
    acts = [ProfilerActivity.CPU, ProfilerActivity.CUDA]
    with profile(activities=acts) as prof:
        for _ in range(args.steps):
            engine.step()
        torch.cuda.synchronize()
    print(f"batch {args.batch}: {per_step * 1e3:.2f} ms per decode step unprofiled "
          f"({args.batch / per_step:.0f} tok/s); graphs={'off' if args.enforce_eager else 'on'}")
    host_phases(engine, args.steps)
    gpu_gaps(prof)
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    if args.trace:
        prof.export_chrome_trace(args.trace)
    engine.shutdown()


if __name__ == "__main__":
    main()
