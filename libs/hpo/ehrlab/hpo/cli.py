"""`ehrlab hpo …`: run studies from a spec, follow them, read and export their best trials.

    ehrlab hpo run SPEC [--mode multistage|maximal] [--stage S] [--n-trials N] [--parallel N] [--timeout S]
    ehrlab hpo show-best STUDY
    ehrlab hpo export-topk STUDY -k K [-o FILE]
    ehrlab hpo plot STUDY [-o DIR]
    ehrlab hpo ls

Running the same command again resumes: the studies live in the hpo-controller's database and their
trials keep running while no command is attached.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click

from ehrlab.core.wire import from_struct
from ehrlab.hpo.api import trial_from_proto
from ehrlab.hpo.spec import STAGES, load_spec
from ehrlab.hpo.studies import StudyDefinition
from ehrlab.v1 import hpo_pb2


def _connect() -> tuple[Any, Any]:
    from ehrlab.client import Client
    from ehrlab.hpo.client import HpoClient

    client = Client.connect()
    return client, HpoClient(client)


def _progress(study: hpo_pb2.Study) -> None:
    counts = study.counts
    budget = f"/{study.n_trials}" if study.n_trials else ""
    best = f"  best {study.best.value:.6g} (#{study.best.number})" if study.HasField("best") else ""
    state = "  finished" if study.finished else ""
    click.echo(f"  {study.name}: {counts.budgeted}{budget} trials  complete {counts.complete}  pruned {counts.pruned}"
               f"  failed {counts.failed}  running {counts.running}{best}{state}", err=True)


def _save_outputs(hpo: Any, name: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}-topk.json").write_text(json.dumps(_topk(hpo, name, 10), indent=2))
    _plots(hpo, name, out)


def _topk(hpo: Any, name: str, k: int) -> list[dict[str, Any]]:
    return [{"value": t.value, "params": t.params, "number": t.number} for t in hpo.top_k(name, k)]


def _plots(hpo: Any, name: str, out: Path) -> None:
    from ehrlab.hpo.plots import write_plots

    study = hpo.get(name, trials=True)
    definition = StudyDefinition.model_validate(from_struct(study.definition))
    for plot, where in write_plots(definition, [trial_from_proto(t) for t in study.trials], out).items():
        click.echo(f"  {plot}: {where}", err=True)


@click.group()
def hpo() -> None:
    """Hyperparameter studies: run (or resume) from a spec, inspect, export."""


@hpo.command("run")
@click.argument("spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mode", type=click.Choice(["multistage", "maximal"]),
              help="default: multistage when the spec has it, else maximal")
@click.option("--stage", type=click.Choice(STAGES), help="multistage: run only this stage")
@click.option("--n-trials", type=click.IntRange(min=1), help="budget of the study (maximal, or the --stage)")
@click.option("--parallel", type=click.IntRange(min=1), help="trials running at once")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0), help="seconds after which no trial starts")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("hpo-results"),
              show_default=True, help="where top-K JSON, plots and the refit summary go")
def run_command(spec_path: Path, mode: str | None, stage: str | None, n_trials: int | None, parallel: int | None,
                timeout_s: float | None, out: Path) -> None:
    """Runs the studies of SPEC and waits for them; re-running the same command resumes them."""
    from ehrlab.hpo.stages import Overrides, maximal, multistage

    spec = load_spec(spec_path)
    mode = mode or ("multistage" if spec.multistage is not None else "maximal")
    if stage and mode != "multistage":
        raise click.UsageError("--stage applies to --mode multistage")
    overrides = Overrides(n_trials=n_trials, parallel=parallel, timeout_s=timeout_s)
    client, hpo_client = _connect()
    if mode == "maximal":
        study = maximal(spec, hpo_client, overrides, progress=_progress)
        _save_outputs(hpo_client, study.name, out)
        _show(study)
        return
    outcome = multistage(spec, hpo_client, client, overrides, only=stage, progress=_progress,
                         report=lambda line: click.echo(line, err=True))
    for name, result in outcome.items():
        if isinstance(result, hpo_pb2.Study):
            _save_outputs(hpo_client, result.name, out)
            _show(result)
        else:
            path = out / f"{result.study}.json"
            path.write_text(json.dumps(result.to_dict(), indent=2))
            sd = "" if math.isnan(result.sd) else f" ± {result.sd:.4g}"
            click.echo(f"{name} refit: {result.metric} = {result.mean:.4g}{sd} (mean ± SD over "
                       f"{len(result.values)} seeds){'; failed seeds: ' + str(result.errors) if result.errors else ''}"
                       f"  -> {path}")
            if not result.values:
                sys.exit(1)


def _show(study: hpo_pb2.Study) -> None:
    if not study.HasField("best"):
        click.echo(f"{study.name}: no completed trial (failed {study.counts.failed}, pruned {study.counts.pruned})")
        return
    best = study.best
    click.echo(f"{study.name}: best {study.metric} = {best.value:.6g} (trial {best.number}, "
               f"experiment {best.experiment_id or '-'})")
    for name, value in sorted(from_struct(best.params).items()):
        click.echo(f"  {name}: {value}")


@hpo.command("show-best")
@click.argument("study")
def show_best_command(study: str) -> None:
    """The best trial of STUDY: its value and parameters."""
    _, hpo_client = _connect()
    _show(hpo_client.get(study))


@hpo.command("export-topk")
@click.argument("study")
@click.option("-k", "k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="default: stdout")
def export_topk_command(study: str, k: int, output: Path | None) -> None:
    """The K best trials of STUDY as JSON: [{value, params, number}], best first."""
    _, hpo_client = _connect()
    text = json.dumps(_topk(hpo_client, study, k), indent=2)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n")


@hpo.command("plot")
@click.argument("study")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("hpo-results"),
              show_default=True)
def plot_command(study: str, out: Path) -> None:
    """Optimisation history, parameter importances and intermediate values of STUDY as PNG files."""
    _, hpo_client = _connect()
    _plots(hpo_client, study, out)


@hpo.command("ls")
def ls_command() -> None:
    """Every study: progress, best value, whether it is finished."""
    _, hpo_client = _connect()
    for study in hpo_client.list():
        counts = study.counts
        best = f"{study.best.value:.6g}" if study.HasField("best") else "-"
        direction = "max" if study.direction == hpo_pb2.DIRECTION_MAXIMIZE else "min"
        state = "finished" if study.finished else ("running" if counts.running else "idle")
        click.echo(f"{study.name:40s} {study.metric}({direction}) {counts.budgeted}/{study.n_trials or '-'}  "
                   f"complete {counts.complete} pruned {counts.pruned} failed {counts.failed} "
                   f"running {counts.running}  best {best}  {state}")
