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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--enforce-eager", action="store_true")
    ap.add_argument("--trace", default=None)
    args = ap.parse_args()
    llm = LLM(model=args.model, enforce_eager=args.enforce_eager)
    engine = llm.llm_engine
    vocab = engine.core.executor.worker.runner.vocab_size  # type: ignore[attr-defined]
    params = SamplingParams(temperature=0.0, max_tokens=64, ignore_eos=True)
    for i, p in enumerate(random_token_prompts(args.batch, 128, vocab)):
        engine.add_request(str(i), p, params)
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
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    if args.trace:
        prof.export_chrome_trace(args.trace)
    engine.shutdown()


if __name__ == "__main__":
    main()
