"""`vllm bench latency`: time one batch of fixed-length requests end to end."""

from __future__ import annotations

import statistics
import time
from typing import Any

import click

from vllm.benchmarks.common import build_llm, machine_info, random_token_prompts, vocab_size_of, write_json
from vllm.engine.arg_utils import engine_options


@click.command("latency")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--input-len", type=int, default=32, show_default=True)
@click.option("--output-len", type=int, default=128, show_default=True)
@click.option("--num-iters-warmup", type=int, default=1, show_default=True)
@click.option("--num-iters", type=int, default=3, show_default=True)
@click.option("--output-json", type=click.Path(dir_okay=False), default=None)
@engine_options
def latency_cmd(batch_size: int, input_len: int, output_len: int, num_iters_warmup: int,
                num_iters: int, output_json: str | None, **kwargs: Any) -> None:
    """Latency of a batch: prompts of --input-len random tokens, exactly --output-len new tokens
    each (EOS ignored). Accepts every engine option; --model may be random:<shape>."""
    from vllm.sampling_params import SamplingParams

    if batch_size < 1 or output_len < 1 or num_iters < 1:
        raise click.BadParameter("--batch-size, --output-len and --num-iters must be >= 1")
    llm, startup = build_llm(kwargs)
    prompts = random_token_prompts(batch_size, input_len, vocab_size_of(llm))
    params = SamplingParams(temperature=0.0, max_tokens=output_len, ignore_eos=True)
    for _ in range(num_iters_warmup):
        llm.generate(prompts, params, use_tqdm=False)
    times = []
    cpu_start = time.process_time()
    for _ in range(num_iters):
        start = time.perf_counter()
        llm.generate(prompts, params, use_tqdm=False)
        times.append(time.perf_counter() - start)
    avg = statistics.fmean(times)
    cpu = (time.process_time() - cpu_start) / num_iters
    result = {
        "batch_size": batch_size, "input_len": input_len, "output_len": output_len,
        "avg_latency_s": avg, "latencies_s": times,
        "output_tok_per_s": batch_size * output_len / avg,
        "total_tok_per_s": batch_size * (input_len + output_len) / avg,
        "startup_s": startup, "avg_process_cpu_s": cpu, **machine_info(),
    }
    click.echo(f"avg latency: {avg:.3f} s over {num_iters} iters "
               f"(batch {batch_size}, {input_len} in / {output_len} out)")
    click.echo(f"output tokens/s: {result['output_tok_per_s']:.1f}; "
               f"total tokens/s: {result['total_tok_per_s']:.1f}; start-up {startup:.1f} s")
    write_json(output_json, result)
    llm.llm_engine.shutdown()
