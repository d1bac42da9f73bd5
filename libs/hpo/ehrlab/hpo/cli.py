"""`ehrlab hpo …`."""

from __future__ import annotations

import click


@click.group()
def hpo() -> None:
    """Hyperparameter studies: run, inspect, export."""
