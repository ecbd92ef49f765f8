"""torch.profiler table of decode steps of the issue-4 workload (64 sequences, 128-token
prompts, the smollm2-135m checkpoint; dtype auto = bf16 on AVX-512 bf16 CPUs).

python benchmarks/scripts/profile_bf16_decode.py [--model DIR] [--steps 10]
"""

from __future__ import annotations

import argparse
import time

from torch.profiler import ProfilerActivity, profile

from vllm import LLM, SamplingParams
from vllm.sampling_params import RequestOutputKind


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="/work/ckpt/smollm2-135m")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    llm = LLM(model=args.model, max_num_seqs=args.batch)
    engine = llm.llm_engine
    params = SamplingParams(temperature=0.0, max_tokens=args.steps + 20, ignore_eos=True,
                            output_kind=RequestOutputKind.FINAL_ONLY)
    for i in range(args.batch):
        engine.add_request(str(i), [(i * 7 + j * 13) % 40000 + 10 for j in range(128)], params.clone())
    running = engine.core.scheduler.running
    while len(running) < args.batch or any(r.num_output_tokens == 0 for r in running):
        engine.step()
    for _ in range(3):
        engine.step()
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(args.steps):
            engine.step()
    per_step = (time.perf_counter() - start) / args.steps
    load = open("/proc/loadavg").read().split()[:3]
    print(f"load {load}: {args.steps} decode steps of 64 sequences, {1e3 * per_step:.1f} ms/step "
          "(profiled)")
    print(prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_cpu_time_total", row_limit=22, max_name_column_width=34,
        max_shapes_column_width=50))


if __name__ == "__main__":
    main()
