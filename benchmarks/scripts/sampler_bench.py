"""Main-thread CPU time of one sampler call (metadata + Sampler.forward + the host copy of the
ids), one torch thread, for common parameter sets: 64 rows x 49152 and 256 rows x 640.

python benchmarks/scripts/sampler_bench.py [label]
"""

from __future__ import annotations

import sys
import time

import torch

from vllm.model_executor.layers.sampler import Sampler, SamplingRequestState, build_sampling_metadata
from vllm.sampling_params import SamplingParams

CASES = {
    "greedy": dict(temperature=0.0),
    "temp": dict(temperature=0.8),
    "topk50": dict(temperature=0.8, top_k=50),
    "topp": dict(temperature=0.8, top_p=0.9),
    "topk+topp": dict(temperature=0.8, top_k=50, top_p=0.9),
}


def main() -> None:
    label = sys.argv[1] if len(sys.argv) > 1 else ""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    sampler = Sampler()
    for vocab, rows in ((640, 256), (49152, 64)):
        logits = torch.randn(rows, vocab) * 3  # [N, V]
        for name, kw in CASES.items():
            states = [SamplingRequestState(SamplingParams(**kw), [1, 2], [3], None) for _ in range(rows)]

            def run(states=states, vocab=vocab, logits=logits) -> list[int]:  # noqa: ANN001
                meta = build_sampling_metadata(states, vocab, torch.device("cpu"))
                return sampler(logits, meta).sampled_token_ids.tolist()

            run()
            times = []
            for _ in range(7):
                t0 = time.thread_time()
                run()
                times.append(time.thread_time() - t0)
            times.sort()
            print(f"{label} V={vocab} N={rows} {name:10s}: min {1e3 * times[0]:7.2f} "
                  f"med {1e3 * times[3]:7.2f} ms (1 thread, CPU time)", flush=True)


if __name__ == "__main__":
    main()
