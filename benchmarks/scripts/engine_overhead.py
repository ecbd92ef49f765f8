"""Host overhead per decode step: a tiny 2-layer model (the forward is nearly free), N running
decode sequences; reports wall ms per step, ms inside the model forward + logits, and the rest,
as wall time and as the main thread's CPU time (robust to other processes on shared cores).

python benchmarks/scripts/engine_overhead.py --num-seqs 64 256 [--steps 40] [--sampling greedy|random]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch


def measure(model_dir: str, num_seqs: int, steps: int, random_sampling: bool,
            seeded: bool = False) -> dict[str, float]:
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_dir, max_num_seqs=num_seqs, max_num_batched_tokens=max(2048, num_seqs * 16),
              max_model_len=512, dtype="float32")
    engine = llm.llm_engine
    runner = engine.core.executor.worker.runner
    model = runner.model
    fwd = {"t": 0.0, "c": 0.0}
    orig_forward, orig_logits = model.forward, model.compute_logits

    def timed(fn):  # noqa: ANN001, ANN202
        def wrapper(*a, **k):  # noqa: ANN002, ANN003, ANN202
            t0, c0 = time.perf_counter(), time.thread_time()
            r = fn(*a, **k)
            fwd["t"] += time.perf_counter() - t0
            fwd["c"] += time.thread_time() - c0
            return r
        return wrapper

    model.forward = timed(orig_forward)
    model.compute_logits = timed(orig_logits)
    params = (SamplingParams(temperature=0.8, top_p=0.9, top_k=50, seed=1 if seeded else None,
                             max_tokens=steps + 8,
                             ignore_eos=True) if random_sampling else
              SamplingParams(temperature=0.0, max_tokens=steps + 8, ignore_eos=True))
    from vllm.sampling_params import RequestOutputKind

    params.output_kind = RequestOutputKind.FINAL_ONLY  # as LLM.generate / bench throughput do
    g = torch.Generator().manual_seed(0)
    for i in range(num_seqs):
        ids = torch.randint(3, 600, (16,), generator=g).tolist()
        engine.add_request(str(i), ids, params.clone())
    engine.step()  # prefill
    walls, fwds, host_cpu = [], [], []
    for _ in range(steps):
        fwd["t"] = fwd["c"] = 0.0
        t0, c0 = time.perf_counter(), time.thread_time()
        engine.step()
        walls.append(time.perf_counter() - t0)
        fwds.append(fwd["t"])
        host_cpu.append(time.thread_time() - c0 - fwd["c"])
    engine.abort_request([str(i) for i in range(num_seqs)])
    engine.shutdown()
    wall = statistics.median(walls) * 1e3
    model_ms = statistics.median(fwds) * 1e3
    return {"num_seqs": num_seqs, "wall_ms": wall, "model_ms": model_ms, "host_ms": wall - model_ms,
            "host_cpu_ms": statistics.median(host_cpu) * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--num-seqs", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--sampling", choices=["greedy", "random"], default="greedy")
    ap.add_argument("--seeded", action="store_true", help="random sampling with a seed per request")
    args = ap.parse_args()
    from vllm.testing.checkpoints import make_checkpoint

    model_dir = os.path.join(tempfile.gettempdir(), "vllm-overhead-tiny-llama")
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        make_checkpoint("llama", model_dir, size="tiny")
    print(f"loadavg {open('/proc/loadavg').read().split()[:3]}")
    for n in args.num_seqs:
        r = measure(model_dir, n, args.steps, args.sampling == "random", args.seeded)
        print(f"{args.sampling:6s} seqs={n:4d}  step {r['wall_ms']:.2f} ms  model+logits "
              f"{r['model_ms']:.2f} ms  outside: wall {r['host_ms']:.2f} ms, main-thread CPU "
              f"{r['host_cpu_ms']:.2f} ms")


if __name__ == "__main__":
    main()
