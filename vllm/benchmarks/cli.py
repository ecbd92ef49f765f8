"""`vllm bench {ops,latency,throughput,serve}`; each subcommand lives in its own module."""

from __future__ import annotations

import click

from vllm.entrypoints.cli import LazyGroup

SUBCOMMANDS = {
    "ops": "vllm.benchmarks.ops:ops_cmd",
    "latency": "vllm.benchmarks.latency:latency_cmd",
    "throughput": "vllm.benchmarks.throughput:throughput_cmd",
    "serve": "vllm.benchmarks.serve:serve_cmd",
}


@click.group(cls=LazyGroup, subcommands=SUBCOMMANDS)
def bench() -> None:
    """Benchmarks: kernel ops, offline latency/throughput, online serving."""
