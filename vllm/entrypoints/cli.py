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


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked (``subcommands``:
    name -> "module:attribute")."""

    def __init__(self, *args: object, subcommands: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.subcommands = subcommands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.subcommands)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = self.subcommands.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, subcommands=SUBCOMMANDS)
@click.version_option(package_name="vllm")
def main() -> None:
    """vLLM: hardware-portable LLM inference and serving."""


if __name__ == "__main__":
    main()
