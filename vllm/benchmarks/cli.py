"""`vllm bench {ops,latency,throughput,serve}`; each subcommand lives in its own module."""

from __future__ import annotations

import importlib

import click

SUBCOMMANDS = {
    "ops": "vllm.benchmarks.ops:ops_cmd",
    "latency": "vllm.benchmarks.latency:latency_cmd",
    "throughput": "vllm.benchmarks.throughput:throughput_cmd",
    "serve": "vllm.benchmarks.serve:serve_cmd",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyGroup)
def bench() -> None:
    """Benchmarks: kernel ops, offline latency/throughput, online serving."""
