"""`ehrlab ehrgen train|generate|evaluate`.

train and evaluate submit an `ehr_generator` experiment to the controller (or, with --local, evaluate
in this process); generate runs locally from a model directory, or asks the ehr-generator service for
a published name or artifact key. Output files are written whole or not at all.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from ehrlab.core.errors import SpecError

SIZES = ("tiny", "small", "medium", "large", "base")
CPU_RESOURCES = {"gpu": 0, "node_pool": "", "cpu": 1, "memory": "4Gi"}   # --cpu: any worker, e.g. embedded mode


def _values(pairs: tuple[str, ...], option: str) -> dict[str, Any]:
    """KEY=VALUE pairs with YAML values (numbers, booleans, lists) into a dict."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SpecError(f"expected KEY=VALUE, got {pair!r}", path=option)
        out[key] = yaml.safe_load(value)
    return out


def _client(ctx: click.Context) -> Any:
    from ehrlab.cli.main import client_from

    return client_from(ctx)


def _submit_and_report(ctx: click.Context, spec: dict[str, Any], wait: bool) -> None:
    client = _client(ctx)
    experiment = client.submit(spec)
    click.echo(f"{experiment.id}  {experiment.name}")
    if not wait:
        return
    final = client.wait(experiment.id)
    rows = [r for r in client.results(experiment.id, kind="evaluate_generator") if "metric" in r]
    _print_targets({r["metric"]: r["value"] for r in rows})
    if final.error:
        click.echo(f"error: {final.error}", err=True)
        sys.exit(1)


def _print_targets(values: dict[str, float]) -> None:
    from ehrlab.ehrgen.evaluate import TARGETS

    for path, (bound, kind) in TARGETS.items():
        if path in values:
            value = values[path]
            met = value >= bound if kind == "min" else value <= bound
            click.echo(f"  {path:<34} {value:8.4f}  ({'>=' if kind == 'min' else '<='} {bound:g}: "
                       f"{'met' if met else 'missed'})")


@click.group()
def ehrgen() -> None:
    """Synthetic EHR generator (PromptEHR-style): train, generate, evaluate."""


@ehrgen.command()
@click.option("--cohort", required=True, help="MEDS directory, MIMIC-III CSV directory or JSON lines")
@click.option("--name", default="", help="experiment name (default: ehrgen-<cohort name>)")
@click.option("--size", type=click.Choice(SIZES), default="small", show_default=True)
@click.option("--tokenizer", type=click.Choice(["flat", "hierarchical"]), default="flat", show_default=True)
@click.option("--epochs", type=int, default=None)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--param", "params", multiple=True, help="train_generator param KEY=VALUE (repeatable)")
@click.option("--n-synthetic", type=int, default=0, help="records the evaluation generates (0: one per held-out)")
@click.option("--publish", "publish_name", default="", help="publish the model under this name after evaluation")
@click.option("--cpu", is_flag=True, help="train on CPU workers instead of the GPU node pool")
@click.option("--wait/--no-wait", default=True, show_default=True)
@click.pass_context
def train(ctx: click.Context, cohort: str, name: str, size: str, tokenizer: str, epochs: int | None, seed: int,
          params: tuple[str, ...], n_synthetic: int, publish_name: str, cpu: bool, wait: bool) -> None:
    """Train a generator on a cohort, evaluate it (and publish it), as an ehr_generator experiment."""
    train_params: dict[str, Any] = {"size": size, "tokenizer": tokenizer, **_values(params, "--param")}
    if epochs is not None:
        train_params["epochs"] = epochs
    spec: dict[str, Any] = {
        "name": name or f"ehrgen-{Path(cohort).stem or 'cohort'}", "planner": "ehr_generator", "seed": seed,
        "cohort": {"source": str(Path(cohort).absolute())}, "train": train_params,
        "evaluate": {"n_synthetic": n_synthetic},
    }
    if publish_name:
        spec["publish"] = {"name": publish_name, "at_least": {"validity.valid_fraction": 1.0}}
    if cpu:
        spec["resources"] = {step: CPU_RESOURCES for step in ("train", "evaluate")}
    _submit_and_report(ctx, spec, wait)


@ehrgen.command()
@click.option("--model", required=True, help="a model directory (train_generator artifact)")
@click.option("--cohort", required=True, help="the cohort the model was trained on (its held-out split is used)")
@click.option("--heldout", default="", help="evaluate on these records instead of the held-out split")
@click.option("--n-synthetic", type=int, default=0)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--param", "params", multiple=True, help="evaluate_generator param KEY=VALUE (repeatable)")
@click.option("--local", "out", default="", help="evaluate in this process and write the report and plots here")
@click.option("--cpu", is_flag=True, help="evaluate on CPU workers instead of the GPU node pool")
@click.option("--wait/--no-wait", default=True, show_default=True)
@click.pass_context
def evaluate(ctx: click.Context, model: str, cohort: str, heldout: str, n_synthetic: int, seed: int,
             params: tuple[str, ...], out: str, cpu: bool, wait: bool) -> None:
    """Evaluate a generator: validity, coherence, fidelity, diversity, privacy, perplexity."""
    evaluate_params = {"n_synthetic": n_synthetic, "seed": seed, **_values(params, "--param")}
    if out:
        _evaluate_here(model, cohort, heldout, evaluate_params, Path(out))
        return
    spec: dict[str, Any] = {"name": f"ehrgen-eval-{Path(model).name}", "planner": "ehr_generator", "seed": seed,
                            "cohort": {"source": str(Path(cohort).absolute())},
                            "model": {"source": str(Path(model).absolute())}, "evaluate": evaluate_params}
    if heldout:
        spec["heldout"] = {"source": str(Path(heldout).absolute())}
    if cpu:
        spec["resources"] = {"evaluate": CPU_RESOURCES}
    _submit_and_report(ctx, spec, wait)


def _evaluate_here(model: str, cohort: str, heldout: str, params: dict[str, Any], out: Path) -> None:
    from ehrlab.core.config import validate
    from ehrlab.ehrgen.artifact import load_bundle
    from ehrlab.ehrgen.data import load_patients
    from ehrlab.ehrgen.evaluate import cohort_splits, evaluate_generator
    from ehrlab.ehrgen.kinds import EvaluateGeneratorParams
    from ehrlab.ehrgen.records import write_jsonl

    checked = validate(EvaluateGeneratorParams, params, source="--param")
    bundle = load_bundle(model)
    train, test = cohort_splits(bundle, load_patients(cohort))
    records = load_patients(heldout) if heldout else test
    out.mkdir(parents=True, exist_ok=True)
    report, synthetic = evaluate_generator(bundle, records, train, checked, plots_dir=out)
    write_jsonl(synthetic, out / "synthetic.jsonl")
    (out / "report.json").write_text(json.dumps(report, indent=1))
    click.echo(f"report: {out / 'report.json'}")
    _print_targets({path: value for path in report.get("targets", {})
                    if (value := report["targets"][path]["value"]) is not None})


@ehrgen.command()
@click.option("--model", required=True, help="model directory, published name or artifact key")
@click.option("--age", "ages", type=float, multiple=True, required=True, help="age in years (repeatable)")
@click.option("--sex", "sexes", multiple=True, required=True, help="F or M, one per --age")
@click.option("--count", type=int, default=1, show_default=True, help="records per (age, sex)")
@click.option("--history", default="", help="visits to complete: JSON [[code, …], …] or a file holding it")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--sampling", "sampling_pairs", multiple=True,
              help="temperature, top_p, top_k, greedy, max_visits, hierarchical, … as KEY=VALUE")
@click.option("--out", default="", help="write JSON lines here (default: standard output)")
@click.option("--meds", default="", help="write a MEDS dataset into this (new) directory")
@click.option("--service", is_flag=True, help="ask the ehr-generator service even for a local model")
@click.pass_context
def generate(ctx: click.Context, model: str, ages: tuple[float, ...], sexes: tuple[str, ...], count: int,
             history: str, seed: int, sampling_pairs: tuple[str, ...], out: str, meds: str, service: bool) -> None:
    """Generate synthetic records for given demographics (optionally completing a history)."""
    from ehrlab.ehrgen.data import write_meds
    from ehrlab.ehrgen.records import write_jsonl

    if len(ages) != len(sexes):
        raise SpecError(f"give one --sex per --age ({len(ages)} ages, {len(sexes)} sexes)", path="--sex")
    visits = _history(history)
    sampling = _values(sampling_pairs, "--sampling")
    if service or not Path(model).expanduser().is_dir():
        patients = _generate_remote(ctx, model, list(zip(ages, sexes, strict=True)), count, visits, seed, sampling)
    else:
        patients = _generate_here(model, list(zip(ages, sexes, strict=True)), count, visits, seed, sampling)
    if meds:
        write_meds(patients, meds)
    if out:
        write_jsonl(patients, out)
    if not out and not meds:
        for patient in patients:
            click.echo(json.dumps(patient.to_json()))


def _history(value: str) -> list[list[str]]:
    if not value:
        return []
    text = Path(value).read_text() if Path(value).is_file() else value
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"not JSON: {exc.msg}", path="--history") from None


def _generate_here(model: str, demographics: list[tuple[float, str]], count: int, history: list[list[str]],
                   seed: int, sampling: dict[str, Any]) -> list:
    from ehrlab.core.config import validate
    from ehrlab.ehrgen.artifact import load_bundle
    from ehrlab.ehrgen.generate import Generator, requests_for
    from ehrlab.ehrgen.kinds import SamplingParams

    checked = validate(SamplingParams, sampling, source="--sampling")
    requests = requests_for(demographics, count, history)
    return list(Generator(load_bundle(model)).generate(requests, seed=seed, sampling=checked))


def _generate_remote(ctx: click.Context, model: str, demographics: list[tuple[float, str]], count: int,
                     history: list[list[str]], seed: int, sampling: dict[str, Any]) -> list:
    from ehrlab.client import rpc_errors
    from ehrlab.core.wire import to_struct
    from ehrlab.ehrgen.records import Patient
    from ehrlab.v1 import ehr_generator_pb2

    sex_enum = {"F": ehr_generator_pb2.SEX_FEMALE, "M": ehr_generator_pb2.SEX_MALE}
    request = ehr_generator_pb2.GenerateRequest(
        model=model, count=count, seed=seed, sampling=to_struct(sampling),
        demographics=[ehr_generator_pb2.Demographics(age=age, sex=sex_enum.get(str(sex).upper(), 0))
                      for age, sex in demographics],
        history=[ehr_generator_pb2.Visit(codes=visit) for visit in history])
    stub = _client(ctx).stub("ehr-generator")
    sexes = {ehr_generator_pb2.SEX_FEMALE: "F", ehr_generator_pb2.SEX_MALE: "M"}
    with rpc_errors("generate"):
        return [Patient(p.demographics.age, sexes[p.demographics.sex], tuple(tuple(v.codes) for v in p.visits))
                for p in stub.Generate(request, timeout=3600)]

