"""`vllm bench throughput`: offline throughput of many random-token requests."""

from __future__ import annotations

import time
from typing import Any

import click

from vllm.benchmarks.common import build_llm, machine_info, random_token_prompts, vocab_size_of, write_json
from vllm.engine.arg_utils import engine_options


@click.command("throughput")
@click.option("--num-prompts", type=int, default=64, show_default=True)
@click.option("--input-len", type=int, default=128, show_default=True)
@click.option("--output-len", type=int, default=128, show_default=True)
@click.option("--output-json", type=click.Path(dir_okay=False), default=None)
@click.option("--use-tqdm/--no-tqdm", default=False, show_default=True)
@engine_options
def throughput_cmd(num_prompts: int, input_len: int, output_len: int, output_json: str | None,
                   use_tqdm: bool, **kwargs: Any) -> None:
    """Requests/s and tokens/s for --num-prompts random-token prompts of --input-len tokens,
    each generating exactly --output-len tokens (EOS ignored). Also reports start-up time
    (LLM() to ready). Accepts every engine option; --model may be random:<shape>."""
    from vllm.sampling_params import SamplingParams

    if num_prompts < 1 or output_len < 1:
        raise click.BadParameter("--num-prompts and --output-len must be >= 1")
    llm, startup = build_llm(kwargs)
    prompts = random_token_prompts(num_prompts, input_len, vocab_size_of(llm))
    params = SamplingParams(temperature=0.0, max_tokens=output_len, ignore_eos=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    outs = llm.generate(prompts, params, use_tqdm=use_tqdm)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    out_tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)
    in_tokens = sum(len(o.prompt_token_ids) for o in outs)
    stats = llm.llm_engine.get_stats()
    result = {
        "num_prompts": num_prompts, "input_len": input_len, "output_len": output_len,
        "elapsed_s": elapsed, "requests_per_s": num_prompts / elapsed,
        "input_tok_per_s": in_tokens / elapsed, "output_tok_per_s": out_tokens / elapsed,
        "total_tok_per_s": (in_tokens + out_tokens) / elapsed, "startup_s": startup,
        # CPU seconds this process used: on a shared machine, wall time / cpu time shows contention
        "process_cpu_s": cpu,
        "num_preemptions": stats.num_preemptions, **machine_info(),
    }
    click.echo(f"throughput: {result['requests_per_s']:.2f} requests/s, "
               f"{result['input_tok_per_s']:.1f} input tok/s, "
               f"{result['output_tok_per_s']:.1f} output tok/s "
               f"({num_prompts} prompts, {input_len} in / {output_len} out, {elapsed:.1f} s)")
    click.echo(f"start-up (LLM() to ready): {startup:.1f} s; process CPU time {cpu:.1f} s")
    write_json(output_json, result)
    llm.llm_engine.shutdown()
