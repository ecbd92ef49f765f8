"""Where an offline throughput run's time goes, step by step: the `vllm bench throughput`
workload (random prompts, EOS ignored, greedy) with each engine step's scheduled tokens and the
wall time between consecutive step completions, summarised per kind of step.

Usage: python benchmarks/scripts/step_timeline.py --model CKPT [--num-prompts 256]
       [--input-len 128] [--output-len 128] [--max-num-batched-tokens N] [--runs 2]
       [--cprofile STEPS]   (host profile of the first run's first steps, top functions by cumulative time)
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from vllm import LLM, SamplingParams
from vllm.benchmarks.common import random_token_prompts, vocab_size_of
from vllm.core.scheduler import Scheduler


def run_once(llm: LLM, prompts: list, params: SamplingParams,
             profile_steps: int = 0) -> list[tuple[float, int, int]]:
    """(completion time, scheduled tokens, scheduled requests) per step, then the elapsed time."""
    steps: list[tuple[float, int, int]] = []
    orig = Scheduler.update_from_output
    prof = cProfile.Profile() if profile_steps else None

    def timed(self, sched, out):  # type: ignore[no-untyped-def]
        result = orig(self, sched, out)
        steps.append((time.perf_counter(), sched.total_num_scheduled_tokens, len(sched.num_scheduled_tokens)))
        if prof is not None and len(steps) == profile_steps:
            prof.disable()
        return result

    Scheduler.update_from_output = timed  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        if prof is not None:
            prof.enable()
        llm.generate(prompts, params, use_tqdm=False)
        elapsed = time.perf_counter() - start
    finally:
        Scheduler.update_from_output = orig  # type: ignore[method-assign]
    print(f"elapsed {elapsed:.3f} s, {len(steps)} steps, "
          f"{sum(len(p) for p in prompts)} prompt tokens")
    prev = start
    groups: dict[str, list[float]] = {}
    for t, toks, reqs in steps:
        kind = "decode" if toks == reqs else ("prefill" if reqs == 0 or toks >= 8 * reqs else "mixed")
        kind += f" x{reqs}" if kind == "decode" else ""
        groups.setdefault(kind, []).append(t - prev)
        prev = t
    for kind, ts in sorted(groups.items()):
        median = sorted(ts)[len(ts) // 2]
        print(f"  {kind:14} {len(ts):4} steps  {sum(ts) * 1e3:8.1f} ms  (median {median * 1e3:6.2f} ms)")
    begins = [start] + [x[0] for x in steps[:7]]
    print("  first 8 steps (ms, tokens, requests):",
          [(round((t - s) * 1e3, 1), k, r) for (t, k, r), s in zip(steps[:8], begins, strict=False)])
    print(f"  after the last step: {(start + elapsed - steps[-1][0]) * 1e3:.1f} ms")
    if prof is not None:
        print(f"host profile of the first {profile_steps} steps (cProfile, cumulative):")
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    return steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--num-prompts", type=int, default=256)
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--max-num-batched-tokens", type=int, default=None)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--cprofile", type=int, default=0, metavar="STEPS",
                    help="cProfile the first run up to this many completed steps")
    args = ap.parse_args()
    kw = {"max_num_batched_tokens": args.max_num_batched_tokens} if args.max_num_batched_tokens else {}
    llm = LLM(model=args.model, **kw)
    params = SamplingParams(temperature=0.0, max_tokens=args.output_len, ignore_eos=True)
    for run in range(args.runs):  # new prompts each run: no prefix-cache hits across runs
        prompts = random_token_prompts(args.num_prompts, args.input_len, vocab_size_of(llm), seed=run)
        run_once(llm, prompts, params, args.cprofile if run == 0 else 0)
    llm.llm_engine.shutdown()


if __name__ == "__main__":
    main()
