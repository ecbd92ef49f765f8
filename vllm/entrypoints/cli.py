"""`vllm` command line: serve, bench, collect-env. Subcommands load lazily (fast --help)."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command
SUBCOMMANDS = {
    "serve": "vllm.entrypoints.openai.cli_serve:serve",
    "bench": "vllm.benchmarks.cli:bench",
    "collect-env": "vllm.entrypoints.collect_env:collect_env",
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
@click.version_option(package_name="vllm")
def main() -> None:
    """vLLM: hardware-portable LLM inference and serving."""


if __name__ == "__main__":
    main()
