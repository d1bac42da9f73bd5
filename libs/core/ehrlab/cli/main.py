"""`ehrlab`: the command line. Core commands live here; each domain library adds its own group
(`ehrlab causal …`, `ehrlab hpo …`) through the `ehrlab.cli` entry point group."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections import Counter
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ehrlab.core.errors import EhrlabError, SpecError

console = Console(stderr=True)
out = Console()

STATE_NAMES = {1: "pending", 2: "ready", 3: "running", 4: "succeeded", 5: "cached", 6: "failed", 7: "skipped",
               8: "cancelled"}
EXPERIMENT_STATES = {1: "pending", 2: "running", 3: "succeeded", 4: "failed", 5: "cancelled"}
FINISHED_TASK = {4, 5, 6, 7, 8}


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

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EhrlabError as exc:  # expected errors: one line, no traceback
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--controller", envvar="EHRLAB_CONTROLLER_ADDR", help="controller address host:port "
              "(default: the embedded stack, else 127.0.0.1:50051)")
@click.option("--token", envvar="EHRLAB_TOKEN", default="", help="bearer token the services require")
@click.option("--tls/--no-tls", envvar="EHRLAB_TLS", default=False, help="use TLS")
@click.option("--tls-ca", envvar="EHRLAB_TLS_CA", default="", help="CA bundle (PEM) to trust; implies --tls")
@click.pass_context
def cli(ctx: click.Context, controller: str | None, token: str, tls: bool, tls_ca: str) -> None:
    """ehrlab: reproducible clinical ML experiments, from one machine to a GPU cluster."""
    ctx.obj = {"controller": controller, "token": token, "tls": tls, "ca": tls_ca}


def client_from(ctx: click.Context) -> Any:
    """A Client for the controller the global options name (used by every group, domain ones too)."""
    from ehrlab.client import Client

    obj = ctx.find_root().obj or {}
    return Client.connect(obj.get("controller"), token=obj.get("token", ""), tls=obj.get("tls", False),
                          ca=obj.get("ca", ""))


# --- embedded stack ----------------------------------------------------------------------------------

@cli.command()
@click.option("--home", envvar="EHRLAB_HOME", default=".ehrlab", show_default=True, type=click.Path())
def up(home: str) -> None:
    """Start PostgreSQL and every service as local processes (embedded mode)."""
    from ehrlab.core.embedded.stack import Stack

    with console.status("starting the embedded stack…"):
        stack = Stack(home, fixed_ports=True).up()
    table = Table(title=f"ehrlab embedded stack in {stack.home}")
    for column in ("service", "gRPC", "metrics", "pid"):
        table.add_column(column)
    for name, process in stack.processes.items():
        table.add_row(name, process.address, f"http://127.0.0.1:{process.metrics}/metrics", str(process.pid))
    out.print(table)
    out.print(f"database: {stack.database_url}\nartifacts: {stack.home / 'store'}")


@cli.command()
@click.option("--home", envvar="EHRLAB_HOME", default=".ehrlab", show_default=True, type=click.Path())
def down(home: str) -> None:
    """Stop the embedded stack."""
    from ehrlab.core.embedded.stack import Stack

    stack = Stack.load(home)
    if stack is None:
        console.print(f"no stack running in {Path(home).absolute()}")
        return
    stack.down()
    console.print("stopped")


def ensure_stack(home: str = ".ehrlab") -> None:
    """Starts the embedded stack unless one is running (or a remote controller is configured)."""
    from ehrlab.core.embedded.stack import Stack

    if os.environ.get("EHRLAB_CONTROLLER_ADDR"):
        return
    stack = Stack.load(home)
    if stack is not None and stack.running():
        return
    with console.status("starting the embedded stack…"):
        Stack(home, fixed_ports=True).up()


# --- experiments ---------------------------------------------------------------------------------------

def _labels(values: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise SpecError(f"labels are key=value, got {value!r}", path="--label")
        labels[key] = val
    return labels


def _csv_list(value: str) -> list[str]:
    return [v for v in (value or "").split(",") if v]


@cli.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--wait", is_flag=True, help="follow progress; exit non-zero unless the experiment succeeds")
@click.option("--force", default="", help="KIND[,KIND…] (or task names) to recompute, with everything downstream")
@click.option("--skip", default="", help="KIND[,KIND…] (or task names) not to run")
@click.option("--failfast", is_flag=True, help="stop the experiment at the first failed task")
@click.option("--max-attempts", type=int, default=0, help="attempts per task (default: the spec's, else 3)")
@click.option("--max-parallel", type=int, default=0, help="tasks of this experiment running at once")
@click.option("--label", "labels", multiple=True, help="key=value label (repeatable)")
@click.option("--request-id", default=None, help="idempotency key: the same id returns the same experiment")
@click.option("--dry-run", is_flag=True, help="validate and plan only; show what would run")
@click.pass_context
def submit(ctx: click.Context, specs: tuple[str, ...], wait: bool, force: str, skip: str, failfast: bool,
           max_attempts: int, max_parallel: int, labels: tuple[str, ...], request_id: str | None,
           dry_run: bool) -> None:
    """Submit an experiment. SPECS are YAML files merged in order (base -> dataset -> experiment)."""
    client = client_from(ctx)
    experiment = client.submit(list(specs), request_id=request_id, force=_csv_list(force), skip=_csv_list(skip),
                               failfast=failfast, max_attempts=max_attempts, max_parallel=max_parallel,
                               labels=_labels(labels), dry_run=dry_run)
    if dry_run:
        _print_tasks(experiment.tasks, title=f"plan of {experiment.name} (nothing submitted)")
        return
    out.print(f"{experiment.id}  {experiment.name}")
    if wait:
        sys.exit(_follow(client, experiment.id))


@cli.command()
@click.argument("experiment")
@click.pass_context
def watch(ctx: click.Context, experiment: str) -> None:
    """Live progress of an experiment until it ends (exit code as `submit --wait`)."""
    sys.exit(_follow(client_from(ctx), experiment))


def _follow(client: Any, experiment_id: str) -> int:
    """Progress bars from WatchExperiment: one overall, one per task kind. Returns the exit code."""
    tasks: dict[str, tuple[str, int]] = {}
    final = None
    interactive = console.is_terminal
    progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console,
                        disable=not interactive)
    bars: dict[str, Any] = {}
    last_line = 0.0

    def refresh() -> None:
        nonlocal last_line
        by_kind: dict[str, Counter[int]] = {}
        for kind, state in tasks.values():
            by_kind.setdefault(kind, Counter())[state] += 1
        total = Counter(state for _, state in tasks.values())
        rows = {"all tasks": total, **{f"  {k}": c for k, c in sorted(by_kind.items())}}
        for label, counts in rows.items():
            done = sum(counts[s] for s in FINISHED_TASK)
            detail = " ".join(f"{STATE_NAMES[s]}={n}" for s, n in sorted(counts.items()) if n and s not in (4,))
            if label not in bars:
                bars[label] = progress.add_task(label, total=sum(counts.values()), detail="")
            progress.update(bars[label], completed=done, total=sum(counts.values()), detail=detail)
        if tasks and not interactive and time.monotonic() - last_line > 5:
            last_line = time.monotonic()
            done = sum(total[s] for s in FINISHED_TASK)
            console.print(f"{done}/{len(tasks)} tasks finished  " +
                          " ".join(f"{STATE_NAMES[s]}={n}" for s, n in sorted(total.items()) if n))

    with progress:
        for event in client.watch(experiment_id):
            if event.HasField("task"):
                tasks[event.task.id] = (event.task.kind, event.task.state)
            elif event.HasField("experiment"):
                final = event.experiment
            if not event.snapshot or event.HasField("experiment"):
                refresh()
    final = client.get_experiment(experiment_id)
    state = EXPERIMENT_STATES.get(final.state, "?")
    counts = final.counts
    summary = (f"{final.id} {final.name}: {state} — {counts.succeeded} ran, {counts.cached} cached, "
               f"{counts.failed} failed, {counts.skipped} skipped, {counts.cancelled} cancelled")
    console.print(summary, style="green" if state == "succeeded" else "red")
    if final.error:
        console.print(f"  {final.error}", style="red")
    return 0 if state == "succeeded" else 1


@cli.command("ls")
@click.option("--state", "states", multiple=True, type=click.Choice(list(EXPERIMENT_STATES.values())))
@click.option("--label", "labels", multiple=True, help="key=value (repeatable)")
@click.option("--limit", type=int, default=50, show_default=True)
@click.pass_context
def list_experiments(ctx: click.Context, states: tuple[str, ...], labels: tuple[str, ...], limit: int) -> None:
    """List experiments, newest first."""
    codes = [k for k, v in EXPERIMENT_STATES.items() if v in states]
    table = Table()
    for column in ("id", "name", "state", "progress", "tasks", "created"):
        table.add_column(column)
    for exp in client_from(ctx).list_experiments(states=codes, labels=_labels(labels), limit=limit):
        table.add_row(exp.id, exp.name, EXPERIMENT_STATES.get(exp.state, "?"), f"{exp.progress:.0%}",
                      str(exp.counts.total), exp.times.created.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"))
    out.print(table)


def _print_tasks(tasks: Any, title: str) -> None:
    table = Table(title=title)
    for column in ("task", "kind", "state", "attempts", "key", "error"):
        table.add_column(column, overflow="fold")
    for task in tasks:
        note = task.error or (f"waiting: {task.waiting}" if task.waiting else "")
        table.add_row(task.name, task.kind, STATE_NAMES.get(task.state, "?"), str(task.attempt), task.key[:12],
                      note[:160])
    out.print(table)


@cli.command()
@click.argument("experiment")
@click.option("--tasks/--no-tasks", "with_tasks", default=True)
@click.pass_context
def show(ctx: click.Context, experiment: str, with_tasks: bool) -> None:
    """An experiment's state, counts, and tasks."""
    client = client_from(ctx)
    exp = client.get_experiment(experiment)
    c = exp.counts
    out.print(f"[bold]{exp.name}[/bold] ({exp.id})  planner={exp.planner}  "
              f"state={EXPERIMENT_STATES.get(exp.state)}  progress={exp.progress:.0%}")
    out.print(f"tasks: {c.total} — succeeded {c.succeeded}, cached {c.cached}, running {c.running}, "
              f"ready {c.ready}, pending {c.pending}, failed {c.failed}, skipped {c.skipped}, cancelled {c.cancelled}")
    if exp.error:
        out.print(f"[red]error: {exp.error}[/red]")
    if with_tasks:
        _print_tasks(client.tasks(exp.id), title="tasks")


@cli.command()
@click.argument("experiment")
@click.option("--reason", default="")
@click.pass_context
def cancel(ctx: click.Context, experiment: str, reason: str) -> None:
    """Cancel an experiment: running tasks are stopped, nothing new starts."""
    exp = client_from(ctx).cancel(experiment, reason)
    out.print(f"{exp.id}: cancel requested")


@cli.command()
@click.argument("task_id")
@click.pass_context
def retry(ctx: click.Context, task_id: str) -> None:
    """Run a failed, cancelled or skipped task again (and what it blocked)."""
    task = client_from(ctx).retry_task(task_id)
    out.print(f"{task.id} ({task.name}): queued again")


@cli.command()
@click.argument("experiment")
@click.option("--kind", default="", help="only rows of this task kind")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "jsonl"]), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write to a file instead of stdout")
@click.pass_context
def results(ctx: click.Context, experiment: str, kind: str, fmt: str, output: str | None) -> None:
    """Result rows of an experiment, as a table, CSV or JSON lines."""
    rows = client_from(ctx).results(experiment, kind=kind)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    handle = open(output, "w", newline="") if output else sys.stdout  # noqa: SIM115
    try:
        if fmt == "jsonl":
            for row in rows:
                handle.write(json.dumps(row) + "\n")
        elif fmt == "csv":
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()}
                             for r in rows)
        else:
            table = Table(title=f"{len(rows)} result rows")
            for column in columns:
                table.add_column(column, overflow="fold")
            for row in rows:
                table.add_row(*(_fmt(row.get(c)) for c in columns))
            Console(file=handle).print(table)
    finally:
        if output:
            handle.close()


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


@cli.command()
@click.pass_context
def kinds(ctx: click.Context) -> None:
    """Task kinds and planners the controller knows."""
    reply = client_from(ctx).kinds()
    table = Table()
    for column in ("kind", "service", "inputs", "code version"):
        table.add_column(column)
    for kind in reply.kinds:
        table.add_row(kind.name, kind.service, ", ".join(kind.inputs), kind.code_version)
    out.print(table)
    out.print(f"planners: {', '.join(reply.planners)}")


# --- the demo --------------------------------------------------------------------------------------------

@cli.command()
@click.option("--spec", "spec_path", default="examples/causal/demo.yaml", show_default=True,
              type=click.Path(exists=True, dir_okay=False), help="the experiment to run")
@click.option("--out", default="results/demo", show_default=True, type=click.Path(file_okay=False),
              help="where the final tasks' tables and plots are copied")
@click.pass_context
def demo(ctx: click.Context, spec_path: str, out: str) -> None:
    """Run an experiment end to end in embedded mode, show its results, then run it again: all cached."""
    ensure_stack()
    client = client_from(ctx)
    experiment = client.submit([spec_path], labels={"demo": "true"})
    console.print(f"[bold]{experiment.name}[/bold] ({experiment.id}): {experiment.counts.total} tasks")
    if _follow(client, experiment.id):
        sys.exit(1)
    _show_outputs(client, experiment.id, Path(out))
    console.print("\n[bold]the same experiment again[/bold] — every task's key is unchanged, so nothing runs:")
    start = time.monotonic()
    again = client.submit([spec_path], labels={"demo": "true"})
    code = _follow(client, again.id)
    final = client.get_experiment(again.id)
    console.print(f"{final.counts.cached}/{final.counts.total} tasks cached, {final.counts.succeeded} ran, "
                  f"{time.monotonic() - start:.1f}s")
    console.print("the embedded stack keeps running (`ehrlab ls`, `ehrlab show ID`, `ehrlab down` to stop)")
    sys.exit(code)


def _show_outputs(client: Any, experiment_id: str, out: Path) -> None:
    """Copies the files of the experiment's final tasks (tables, plots) to `out` and prints its tables."""
    from ehrlab.core.artifacts import open_store
    from ehrlab.core.artifacts.manifest import load_complete

    tasks = client.tasks(experiment_id)
    used = {dep for task in tasks for dep in task.depends_on}
    out.mkdir(parents=True, exist_ok=True)
    for task in (t for t in tasks if t.name not in used and t.output.uri):
        root, _, prefix = task.output.uri.partition("/artifacts/")
        store = open_store(root)
        manifest = load_complete(store, f"artifacts/{prefix}")
        for entry in manifest.files if manifest else ():
            if entry.path.endswith((".md", ".png", ".csv", ".html", ".json")):
                target = out / Path(entry.path).name
                store.get_file(f"artifacts/{prefix}/{entry.path}", target)
                if entry.path.endswith(".md"):  # Markdown as is: a wide table must not be cut to the terminal
                    click.echo(target.read_text())
        console.print(f"outputs of {task.name} copied to {out}/")


# --- task attempts -------------------------------------------------------------------------------------

@cli.group()
def task() -> None:
    """Task attempts (what launchers run)."""


@task.command("run")
@click.argument("task_id")
@click.option("--attempt", type=int, default=0, help="attempt number (default: the controller's count)")
@click.pass_context
def task_run(ctx: click.Context, task_id: str, attempt: int) -> None:
    """Run one attempt of a task: fetch its spec, pull inputs, compute, push outputs and manifest.

    Exit codes: 0 done, 1 failed (retry may help), 2 configuration error, 3 pruned.
    """
    from ehrlab.core.reporting import GrpcReporter
    from ehrlab.core.runner import (
        EXIT_CONFIG,
        InputRef,
        TaskSpec,
        record_outcome,
        run_attempt,
        write_termination_message,
    )
    from ehrlab.core.settings import load_settings

    settings = load_settings()
    client = client_from(ctx)
    try:
        message = client.get_task(task_id)
    except EhrlabError as exc:
        write_termination_message(str(exc))
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    from google.protobuf import json_format

    spec = TaskSpec(
        task_id=message.id, kind=message.kind, key=message.key, dataset=message.dataset,
        params=json.loads(json.dumps(json_format.MessageToDict(message.params))),
        inputs={name: InputRef(uri=ref.uri if not ref.key else "", digest=ref.digest, dataset=ref.dataset,
                               kind=ref.kind, key=ref.key) for name, ref in message.inputs.items()},
        experiment_id=message.experiment_id, name=message.name, attempt=attempt or message.attempt,
        store_uri=settings.store_uri, labels=dict(message.labels),
        resources={"cpu": message.resources.cpu or 1.0, "memory": message.resources.memory_bytes or (1 << 30),
                   "gpu": message.resources.gpu, "node_pool": message.resources.node_pool})
    reporter = GrpcReporter(spec, settings)
    try:
        code, text = run_attempt(spec, reporter=reporter)
    finally:
        reporter.close()
    if code:
        write_termination_message(text)
        click.echo(f"task {task_id} failed: {text}", err=True)
    outcome = os.environ.get("EHRLAB_ATTEMPT_OUTCOME")
    if outcome:
        record_outcome(Path(outcome), code, text)
    sys.exit(code)


def main() -> None:
    cli(prog_name="ehrlab")


if __name__ == "__main__":
    main()
