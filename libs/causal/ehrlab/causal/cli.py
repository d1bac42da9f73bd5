"""`ehrlab causal run`: the reference runner's flags, as a `causal_batch` spec submitted to the controller.

    ehrlab causal run ce0p62_cy0p62_y0p2_i0p2 --n-runs 20 --inner-runs 5 --baseline-only \\
        --sample-fraction 0.1 --meds /data/meds --wait

builds the same spec as the YAML form (see examples/causal/); `--spec FILE` layers YAML underneath
the flags (model settings, resources), `--dry-run` prints the spec instead of submitting it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml

from ehrlab.causal.kinds import ARMS
from ehrlab.core.config import Layer, load_layer, merge_layers, validate
from ehrlab.core.errors import SpecError

DEFAULT_PATIENTS = 10_000


def build_spec(experiments: tuple[str, ...], *, n_runs: int, inner_runs: int, baseline_only: bool,
               bert_only: bool, sample_fraction: float | None, sample_size: int | None, base_seed: int,
               overwrite: bool, failfast: bool, timeout_factor: float | None, meds: str | None,
               patients: int | None, name: str | None) -> dict[str, Any]:
    """The spec the flags mean; flag conflicts are SpecErrors naming the flags."""
    if baseline_only and bert_only:
        raise SpecError("--baseline-only and --bert-only exclude each other")
    if (sample_fraction is None) == (sample_size is None):
        raise SpecError("give exactly one of --sample-fraction or --sample-size")
    if meds and patients:
        raise SpecError("--meds and --patients exclude each other (a MEDS dataset, or a simulated cohort)")
    spec: dict[str, Any] = {
        "name": name or f"causal-{'-'.join(experiments)}"[:200],
        "planner": "causal_batch",
        "experiments": list(experiments),
        "n_runs": n_runs,
        "inner_runs": inner_runs,
        "arms": ["baseline"] if baseline_only else ["bert"] if bert_only else list(ARMS),
        "base_seed": base_seed,
        "overwrite": overwrite,
        "failfast": failfast,
        "data": {"meds": str(Path(meds).absolute()) if meds and "://" not in meds else meds} if meds
        else {"simulate": {"n_patients": patients or DEFAULT_PATIENTS, "seed": base_seed}},
    }
    spec["sample_fraction" if sample_fraction is not None else "sample_size"] = (
        sample_fraction if sample_fraction is not None else sample_size)
    if timeout_factor is not None:
        spec["timeout_factor"] = timeout_factor
    return spec


def check_spec(layers: list[Layer]) -> None:
    """Validates the merged spec here, so a bad flag or file fails before anything is submitted."""
    from ehrlab.causal.planner import CausalBatchSpec

    validate(CausalBatchSpec, merge_layers(layers))


def summary_table(rows: list[dict[str, Any]]) -> str:
    """The aggregate's summary rows (from the result-store) as the Markdown table estimates.md holds."""
    import pandas as pd

    from ehrlab.causal.aggregate import markdown

    columns = ("experiment", "arm", "outcome", "method")
    frame = pd.DataFrame([{k: v for k, v in row.items() if k not in ("task", "kind")} for row in rows])
    for column in frame.columns:
        if column not in columns and column != "estimand":
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return markdown(frame, "")


@click.group(name="causal")
def causal() -> None:
    """Known-truth causal batch experiments (N outer runs x K reshuffles)."""


@causal.command("run")
@click.argument("experiments", nargs=-1, required=True)
@click.option("-n", "--n-runs", type=click.IntRange(1), default=1, show_default=True, help="outer runs (samples)")
@click.option("-k", "--inner-runs", type=click.IntRange(1), default=1, show_default=True,
              help="fold reshuffles per outer run")
@click.option("--baseline-only", is_flag=True, help="only the CatBoost arm")
@click.option("--bert-only", is_flag=True, help="only the transformer arm")
@click.option("--sample-fraction", type=click.FloatRange(0, 1, min_open=True), help="share of patients per run")
@click.option("--sample-size", type=click.IntRange(1), help="patients per run")
@click.option("--base-seed", type=int, default=42, show_default=True, help="outer run r samples with base + r")
@click.option("--overwrite", is_flag=True, help="recompute every step, even cached ones")
@click.option("--failfast", is_flag=True, help="stop at the first failed task")
@click.option("--timeout-factor", type=click.FloatRange(0, min_open=True), help="scale every task's timeout")
@click.option("--meds", help="a MEDS dataset (directory or s3:// prefix); default: a simulated cohort")
@click.option("--patients", type=click.IntRange(1), help=f"size of the simulated cohort [{DEFAULT_PATIENTS}]")
@click.option("--spec", "spec_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="YAML layered under the flags (model settings, resources, …)")
@click.option("--name", help="experiment name")
@click.option("--wait", is_flag=True, help="wait for the end and print the estimates table")
@click.option("--dry-run", is_flag=True, help="print the spec as YAML and submit nothing")
def run(experiments: tuple[str, ...], n_runs: int, inner_runs: int, baseline_only: bool, bert_only: bool,
        sample_fraction: float | None, sample_size: int | None, base_seed: int, overwrite: bool, failfast: bool,
        timeout_factor: float | None, meds: str | None, patients: int | None, spec_files: tuple[str, ...],
        name: str | None, wait: bool, dry_run: bool) -> None:
    """Runs EXPERIMENTS (names like ce0p62_cy0p62_y0p2_i0p2) as one causal_batch experiment."""
    spec = build_spec(experiments, n_runs=n_runs, inner_runs=inner_runs, baseline_only=baseline_only,
                      bert_only=bert_only, sample_fraction=sample_fraction, sample_size=sample_size,
                      base_seed=base_seed, overwrite=overwrite, failfast=failfast, timeout_factor=timeout_factor,
                      meds=meds, patients=patients, name=name)
    layers = [*(load_layer(path) for path in spec_files), Layer("command line", spec)]
    check_spec(layers)
    if dry_run:
        click.echo(yaml.safe_dump(merge_layers(layers).data, sort_keys=False), nl=False)
        return
    from ehrlab.client import Client
    from ehrlab.v1 import common_pb2

    with Client.connect() as client:
        experiment = client.submit([*spec_files, spec])
        click.echo(f"submitted {experiment.name} ({experiment.id})")
        if not wait:
            return
        final = client.wait(experiment.id)
        rows = client.results(experiment.id, kind="aggregate_estimates")
        if rows:
            click.echo(summary_table(rows))
        click.echo(f"experiment {final.id}: {common_pb2.ExperimentState.Name(final.state)}")
        if final.state != common_pb2.EXPERIMENT_STATE_SUCCEEDED:
            sys.exit(1)
