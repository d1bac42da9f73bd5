"""`ehrlab grading …`: cases, models, experiments, runs, progress and reports of note-grading studies.

Everything goes through the result-store's GradingStore service, found like every other service
(`--address`, EHRLAB_RESULT_STORE_ADDR, the settings file, or the embedded stack of `ehrlab up`).

    ehrlab grading cases load cases/                      # or: cases generate --count 20 --load
    ehrlab grading models add --vendor openai --model gpt-4.1 --credentials openai
    ehrlab grading experiment create study --note-replications 5 --grade-replications 2
    ehrlab grading experiment add-cases study --eligible
    ehrlab grading experiment add-model study --generator 1 --grader 1
    ehrlab grading run study --workers 16 --wait
    ehrlab grading progress study
    ehrlab grading report study --out reports/study
"""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ehrlab.grading.client import GradingClient
from ehrlab.grading.model import ExperimentDefinition, ModelSpec

console = Console(highlight=False, soft_wrap=True)


def store_from(ctx: click.Context) -> GradingClient:
    """The GradingStore client: at --address if given, else at the result-store the platform client finds."""
    address = (ctx.find_object(dict) or {}).get("grading_address")
    if address:
        return GradingClient.connect(address)
    from ehrlab.cli.main import client_from

    return GradingClient(client_from(ctx).channel("result-store"))


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


@click.group()
@click.option("--address", envvar="EHRLAB_GRADING_ADDR", default=None,
              help="GradingStore (result-store) address host:port; default: where the result-store is")
@click.pass_context
def grading(ctx: click.Context, address: str | None) -> None:
    """Note-generation and rubric-grading experiments."""
    ctx.ensure_object(dict)["grading_address"] = address


# ---- cases ----------------------------------------------------------------------------------------------------
@grading.group()
def cases() -> None:
    """Cases (transcript, facts, rubrics): load, generate, list, eligibility."""


@cases.command("load")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.pass_context
def cases_load(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Load case files (YAML/JSON, or folders of them); all are validated before anything is stored."""
    from ehrlab.grading.cases import load_cases

    loaded = load_cases(paths)
    stored = store_from(ctx).put_cases(loaded)
    console.print(f"stored {len(stored)} case(s) with {sum(len(c.rubrics) for c in stored)} rubric(s)")


@cases.command("generate")
@click.option("--count", type=int, default=20, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--ineligible-fraction", type=float, default=0.0, show_default=True,
              help="share of cases given only one accepted human rubric")
@click.option("--meds", type=click.Path(exists=True, file_okay=False), help="MEDS dataset to take patients from")
@click.option("--prefix", default="synthetic", show_default=True, help="case names are PREFIX-<subject id>")
@click.option("--out", type=click.Path(dir_okay=False), help="write the cases to this YAML/JSON file")
@click.option("--load/--no-load", "load", default=False, help="store them in the GradingStore")
@click.pass_context
def cases_generate(ctx: click.Context, count: int, seed: int, ineligible_fraction: float, meds: str | None,
                   prefix: str, out: str | None, load: bool) -> None:
    """Synthetic cases from EHR patients: a visit transcript, its facts, and two authors' rubrics."""
    from ehrlab.grading.cases import dump_cases
    from ehrlab.grading.synthetic import generated_cases, patients_from_meds

    if not (out or load):
        raise click.UsageError("give --out FILE and/or --load")
    if not 0 <= ineligible_fraction <= 1:
        raise click.BadParameter("must be within 0..1", param_hint="--ineligible-fraction")
    patients = patients_from_meds(meds, limit=count) if meds else None
    made = generated_cases(count, seed, ineligible_fraction=ineligible_fraction, patients=patients, prefix=prefix)
    if out:
        console.print(f"wrote {len(made)} case(s) to {dump_cases(made, out)}")
    if load:
        console.print(f"stored {len(store_from(ctx).put_cases(made))} case(s)")


@cases.command("ls")
@click.pass_context
def cases_ls(ctx: click.Context) -> None:
    """Every case with its rubric counts."""
    _table("cases", ["id", "name", "rubrics", "accepted", "source"],
           [[c.id, c.name, c.rubrics, c.accepted, c.source] for c in store_from(ctx).list_cases()])


@cases.command("eligible")
@click.pass_context
def cases_eligible(ctx: click.Context) -> None:
    """Cases with accepted rubrics by at least two distinct human authors."""
    rows = store_from(ctx).eligible_cases()
    _table(f"{len(rows)} eligible case(s)", ["id", "name", "human authors"],
           [[c.id, c.name, c.human_authors] for c in rows])


# ---- models ---------------------------------------------------------------------------------------------------
@grading.group()
def models() -> None:
    """Models that write and grade notes (credentials only by secret name)."""


@models.command("ls")
@click.pass_context
def models_ls(ctx: click.Context) -> None:
    _table("models", ["id", "vendor", "model", "base url", "credentials (secret name)", "reasoning model"],
           [[m.id, m.vendor.value, m.model or "default", m.base_url, m.credentials_ref, m.reasoning_model]
            for m in store_from(ctx).list_models()])


@models.command("add")
@click.option("--vendor", required=True, type=click.Choice(["openai", "anthropic", "openai-compatible", "offline"]))
@click.option("--model", default="", help="model name (empty: the vendor's default)")
@click.option("--base-url", default="", help="endpoint (required for openai-compatible servers)")
@click.option("--credentials", "credentials_ref", default="",
              help="NAME of the secret holding the API key (env EHRLAB_SECRET_<NAME> or a mounted file)")
@click.option("--reasoning-model", default="", help="model used when a pair grades with reasoning")
@click.pass_context
def models_add(ctx: click.Context, **values: str) -> None:
    from ehrlab.core.config import validate

    model = store_from(ctx).add_model(validate(ModelSpec, values, source="options"))
    console.print(f"model {model.id}: {model.vendor.value} {model.model or 'default'}")


# ---- experiments ------------------------------------------------------------------------------------------------
@grading.group()
def experiment() -> None:
    """Grading experiments: create, add cases and model pairs, show."""


@experiment.command("create")
@click.argument("name")
@click.option("--note-replications", type=int, default=1, show_default=True, help="notes per case and model pair")
@click.option("--grade-replications", type=int, default=1, show_default=True, help="grades per note and rubric")
@click.option("--code-version", default="", help="recorded with the experiment (default: the grading code's)")
@click.option("--description", default="")
@click.pass_context
def experiment_create(ctx: click.Context, **values: Any) -> None:
    from ehrlab.core.config import validate

    created = store_from(ctx).create_experiment(validate(ExperimentDefinition, values, source="options"))
    console.print(f"experiment {created.id}: {created.name} (code version {created.code_version}, "
                  f"{created.note_replications} note × {created.grade_replications} grade replications)")


@experiment.command("ls")
@click.pass_context
def experiment_ls(ctx: click.Context) -> None:
    _table("grading experiments", ["id", "name", "notes", "grades", "code version", "created"],
           [[e.id, e.name, e.note_replications, e.grade_replications, e.code_version, e.created]
            for e in store_from(ctx).list_experiments()])


@experiment.command("add-cases")
@click.argument("name")
@click.argument("case_ids", nargs=-1, type=int)
@click.option("--eligible", is_flag=True, help="add every eligible case")
@click.pass_context
def experiment_add_cases(ctx: click.Context, name: str, case_ids: tuple[int, ...], eligible: bool) -> None:
    if not case_ids and not eligible:
        raise click.UsageError("give CASE_IDS and/or --eligible")
    response = store_from(ctx).add_cases(name, case_ids, all_eligible=eligible)
    console.print(f"added {response.added} case(s); the experiment has {response.total}")


@experiment.command("add-model")
@click.argument("name")
@click.option("--generator", "generator_id", type=int, required=True, help="model id that writes the notes")
@click.option("--grader", "grader_id", type=int, required=True, help="model id that grades them")
@click.option("--reasoning", is_flag=True, help="grade with the grader's reasoning variant")
@click.pass_context
def experiment_add_model(ctx: click.Context, name: str, generator_id: int, grader_id: int, reasoning: bool) -> None:
    pair = store_from(ctx).add_pair(name, generator_id, grader_id, reasoning)
    console.print(f"pair {pair.id}: {pair.label}")


@experiment.command("show")
@click.argument("name")
@click.pass_context
def experiment_show(ctx: click.Context, name: str) -> None:
    store = store_from(ctx)
    detail = store.get_experiment(name)
    e = detail.experiment
    console.print(f"experiment {e.id}: {e.name}  code version {e.code_version}  "
                  f"{e.note_replications} note × {e.grade_replications} grade replications  "
                  f"{len(detail.case_ids)} case(s)")
    from ehrlab.grading import wire

    _table("model pairs", ["id", "generator → grader"], [[p.id, wire.pair_from(p).label] for p in detail.pairs])
    if detail.skipped:
        _table("skipped cases", ["case", "reason"], [[s.case_name, s.reason] for s in detail.skipped])
    _print_progress(store, name)


# ---- runs, progress, reports ---------------------------------------------------------------------------------------
@grading.command("run")
@click.argument("name")
@click.option("--workers", type=int, default=3, show_default=True, help="tasks running at once")
@click.option("--max-attempts", type=int, default=3, show_default=True, help="attempts per note or grade")
@click.option("--backoff", type=float, default=2.0, show_default=True, help="first retry delay (s); doubles")
@click.option("--request-timeout", type=float, default=120.0, show_default=True, help="per model call (s)")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--wait", is_flag=True, help="follow progress; exit non-zero unless every task succeeds")
@click.pass_context
def run(ctx: click.Context, name: str, workers: int, max_attempts: int, backoff: float, request_timeout: float,
        seed: int, wait: bool) -> None:
    """Run (or resume) an experiment: notes and grades already stored are never redone."""
    from ehrlab.cli.main import _follow, client_from

    if workers < 1 or max_attempts < 1:
        raise click.BadParameter("--workers and --max-attempts must be at least 1")
    store = store_from(ctx)
    definition = store.get_experiment(name).experiment
    client = client_from(ctx)
    submitted = client.submit(run_spec(definition.name, workers=workers, max_attempts=max_attempts,
                                       backoff=backoff, request_timeout=request_timeout, seed=seed),
                              labels={"grading_experiment": definition.name})
    console.print(f"{submitted.id}  {submitted.name}")
    if wait:
        code = _follow(client, submitted.id)
        _print_progress(store, definition.name)
        sys.exit(code)


def run_spec(experiment: str, *, workers: int = 3, max_attempts: int = 3, backoff: float = 2.0,
             request_timeout: float = 120.0, seed: int = 42) -> dict[str, Any]:
    """The note_grading spec `ehrlab grading run` submits."""
    return {"name": f"grading-{experiment}", "planner": "note_grading", "seed": seed,
            "grading": {"experiment": experiment, "request_timeout_s": request_timeout},
            "options": {"max_parallel": workers, "max_attempts": max_attempts, "retry_backoff_s": backoff}}


def _print_progress(store: GradingClient, name: str) -> None:
    p = store.progress(name)
    _table("progress", ["", "total", "successful", "failed", "expected"],
           [["notes", p.notes.total, p.notes.successful, p.notes.failed, p.expected_notes],
            ["grades", p.grades.total, p.grades.successful, p.grades.failed, p.expected_grades]])


@grading.command("progress")
@click.argument("name")
@click.pass_context
def progress(ctx: click.Context, name: str) -> None:
    """Notes and grades: total, successful, failed, expected."""
    _print_progress(store_from(ctx), name)


@grading.command("recent")
@click.argument("name")
@click.option("-n", "--limit", type=int, default=10, show_default=True)
@click.pass_context
def recent(ctx: click.Context, name: str, limit: int) -> None:
    """The latest notes and grades written, newest first."""
    rows = store_from(ctx).recent(name, limit)
    _table("recent activity", ["what", "id", "case", "pair", "replication", "rubric", "failed", "updated"],
           [[a.what, a.id, a.case_id, a.pair_id, a.replication, a.rubric_id or "", a.failed,
             a.updated.ToDatetime().isoformat(timespec="seconds")] for a in rows])


@grading.command("report")
@click.argument("name")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="folder for report.json, report.md and pairs.png")
@click.pass_context
def report(ctx: click.Context, name: str, out: str) -> None:
    """Scores per model pair and case, agreement (ICC) between replications and authors, failures, a plot."""
    from ehrlab.grading.analysis import markdown, report_from_store, write_report

    made = report_from_store(store_from(ctx), name)
    paths = write_report(made, out)
    console.print(markdown(made))
    console.print("wrote " + ", ".join(str(p) for p in paths))
