"""The `ehrlab` command line as users and CI run it: real processes against a running stack."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ehrlab.core.embedded.stack import Stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cli(core_stack: Stack, tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("cli")
    env = {**os.environ, **core_stack.env()}

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ehrlab.cli.main", *args], capture_output=True, text=True,
                              env=env, cwd=workdir, timeout=timeout)

    run.workdir = workdir  # type: ignore[attr-defined]
    run.workspace = core_stack.home.parent  # type: ignore[attr-defined]  # where relative result files go
    run.env = env  # type: ignore[attr-defined]
    return run


def write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text)
    return str(path)


def noop_spec(directory: Path, **params: object) -> str:
    salt = uuid.uuid4().hex
    lines = [f"name: cli-{salt[:6]}", "steps:", f"  a: {{kind: noop, params: {{payload: {salt}, "
             f"results: [{{score: 0.25}}, {{score: 0.75}}]}}}}"]
    extra = ", ".join(f"{k}: {v}" for k, v in params.items())
    lines.append(f"  b: {{kind: noop, inputs: {{x: a}}, params: {{payload: {salt}b{', ' + extra if extra else ''}}}}}")
    return write(directory, f"{salt}.yaml", "\n".join(lines) + "\n")


def test_malformed_yaml_is_a_one_line_error_naming_file_and_line(cli, tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "name: x\nsteps:\n  a: {kind: noop\n")
    result = cli("submit", path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: line ") and "malformed YAML" in lines[0]


def test_unknown_keys_name_the_file_and_key_path(cli, tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", "name: x\nsteps:\n  a: {kind: noop}\n")
    experiment = write(tmp_path, "exp.yaml", "steps:\n  a: {params: {sleeep_s: 1}}\n")
    result = cli("submit", base, experiment)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {experiment}: steps.a.params.sleeep_s: unknown key"


def test_submit_wait_succeeds_and_results_come_back(cli, tmp_path: Path) -> None:
    result = cli("submit", noop_spec(tmp_path), "--wait", "--label", "team=cli")
    assert result.returncode == 0, result.stderr
    experiment_id = result.stdout.split()[0]
    assert "succeeded — 2 ran, 0 cached" in result.stderr
    rows = list(csv.DictReader(io.StringIO(cli("results", experiment_id, "--format", "csv").stdout)))
    assert sorted(float(r["score"]) for r in rows) == [0.25, 0.75] and {r["task"] for r in rows} == {"a"}
    assert experiment_id in cli("ls", "--label", "team=cli").stdout
    shown = cli("show", experiment_id).stdout
    assert "succeeded 2" in shown and " b " in shown


def test_a_failed_experiment_fails_the_command(cli, tmp_path: Path) -> None:
    result = cli("submit", noop_spec(tmp_path, fail_attempts=9), "--wait", "--max-attempts", "1")
    assert result.returncode == 1
    assert "failed" in result.stderr and "failing on purpose" in result.stderr
    experiment_id = result.stdout.split()[0]
    retried = cli("retry", f"{experiment_id}-1")  # task b (seq 1), the one that failed
    assert retried.returncode == 0 and "queued again" in retried.stdout


def test_dry_run_and_bad_options(cli, tmp_path: Path) -> None:
    spec = noop_spec(tmp_path)
    plan = cli("submit", spec, "--dry-run")
    assert plan.returncode == 0 and "nothing submitted" in plan.stdout
    bad = cli("submit", spec, "--force", "nothing")
    assert bad.returncode == 2 and "options.force[0]" in bad.stderr
    assert cli("submit", spec, "--label", "oops").returncode == 2


def test_unknown_things_are_clear_errors(cli) -> None:
    missing = cli("show", "no-such-experiment")
    assert missing.returncode == 2 and "no experiment 'no-such-experiment'" in missing.stderr
    task = cli("task", "run", "no-such-task")
    assert task.returncode == 2 and "no task 'no-such-task'" in task.stderr


@pytest.mark.slow
def test_the_pipeline_example_end_to_end_and_partly_cached(cli) -> None:
    base, small = ROOT / "examples/pipeline/base.yaml", ROOT / "examples/pipeline/datasets/small.yaml"
    first = cli("submit", str(base), str(small), str(ROOT / "examples/pipeline/experiments/default.yaml"), "--wait",
                timeout=600)
    assert first.returncode == 0, first.stderr
    second = cli("submit", str(base), str(small), str(ROOT / "examples/pipeline/experiments/strong-confounding.yaml"),
                 "--wait", timeout=600)
    assert second.returncode == 0, second.stderr
    assert "5 ran, 2 cached" in second.stderr               # cohort and sample reused, the rest recomputed
    rows = list(csv.DictReader((cli.workspace / "results/pipeline/results.csv").open()))
    assert {r["experiment"] for r in rows} == {"pipeline-default", "pipeline-strong-confounding"}
    assert {"method", "effect", "true_effect"} <= set(rows[0])


def test_client_example_scripts(cli, tmp_path: Path) -> None:
    spec = noop_spec(tmp_path)
    result = subprocess.run([sys.executable, str(ROOT / "examples/clients/submit_and_watch.py"), spec],
                            capture_output=True, text=True, env=cli.env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "EXPERIMENT_STATE_SUCCEEDED" in result.stdout
    experiment_id = result.stdout.split()[1]
    out = tmp_path / "rows.csv"
    query = subprocess.run([sys.executable, str(ROOT / "examples/clients/query_results.py"), experiment_id,
                            "--out", str(out)], capture_output=True, text=True, env=cli.env, timeout=60)
    assert query.returncode == 0, query.stderr
    assert "2 result rows" in query.stdout and out.exists()
    raw = subprocess.run([sys.executable, str(ROOT / "examples/clients/raw_grpc.py"),
                          cli.env["EHRLAB_CONTROLLER_ADDR"]], capture_output=True, text=True, timeout=60)
    assert raw.returncode == 0, raw.stderr
    assert "EXPERIMENT_STATE_SUCCEEDED" in raw.stdout and "NOT_FOUND" in raw.stdout


@pytest.mark.slow
def test_up_and_down(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHRLAB_")}
    env["EHRLAB_HOME"] = str(tmp_path / ".ehrlab")
    up = subprocess.run([sys.executable, "-m", "ehrlab.cli.main", "up"], capture_output=True, text=True, env=env,
                        cwd=tmp_path, timeout=180)
    try:
        assert up.returncode == 0, up.stderr
        assert "controller" in up.stdout and "result-store" in up.stdout
        again = subprocess.run([sys.executable, "-m", "ehrlab.cli.main", "up"], capture_output=True, text=True,
                               env=env, cwd=tmp_path, timeout=60)
        assert again.returncode == 2 and "already running" in again.stderr
        listed = subprocess.run([sys.executable, "-m", "ehrlab.cli.main", "ls"], capture_output=True, text=True,
                                env=env, cwd=tmp_path, timeout=60)
        assert listed.returncode == 0, listed.stderr
    finally:
        down = subprocess.run([sys.executable, "-m", "ehrlab.cli.main", "down"], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=120)
    assert down.returncode == 0 and "stopped" in down.stderr
    assert not (tmp_path / ".ehrlab" / "stack.json").exists()
