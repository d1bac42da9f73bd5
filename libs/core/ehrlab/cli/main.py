"""`ehrlab`: the command line. Core commands live here; each domain library adds its own group
(`ehrlab causal …`, `ehrlab hpo …`) through the `ehrlab.cli` entry point group."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import click

from ehrlab.core.errors import EhrlabError


class _Cli(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(ep.name for ep in entry_points(group="ehrlab.cli"))})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        for ep in entry_points(group="ehrlab.cli", name=name):
            return ep.load()
        return None

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except EhrlabError as exc:  # expected errors: one line, no traceback
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """ehrlab: reproducible clinical ML experiments, from one machine to a GPU cluster."""


def main() -> None:
    cli(prog_name="ehrlab")


if __name__ == "__main__":
    main()
