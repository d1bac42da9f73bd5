"""`ehrlab textclf …`: the model registry in the platform's artifact store."""

from __future__ import annotations

from pathlib import Path

import click

from ehrlab.core.artifacts import open_store
from ehrlab.core.settings import load_settings
from ehrlab.textclf.registry import list_models, publish_model


@click.group()
def textclf() -> None:
    """Text classification: the model registry (models/NAME/VERSION in the artifact store)."""


@textclf.command("publish-model")
@click.argument("name")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--version", default="1", show_default=True, help="versions never change once published")
def publish_model_command(name: str, directory: Path, version: str) -> None:
    """Copies a model DIRECTORY (config.json, weights, tokenizer) into the registry as NAME@VERSION."""
    store = open_store(load_settings().store_uri)
    published = publish_model(store, name, directory, version=version)
    click.echo(f"registry:{published.name}@{published.version}  {published.size / 1e6:.1f} MB  "
               f"digest {published.digest[:12]}  ({store.uri})")


@textclf.command("models")
def models_command() -> None:
    """Lists the registry's models; a task names one as registry:NAME or registry:NAME@VERSION."""
    for model in sorted(list_models(open_store(load_settings().store_uri)), key=lambda m: (m.name, m.version)):
        click.echo(f"registry:{model.name}@{model.version}  {model.size / 1e6:.1f} MB  {model.created}")
