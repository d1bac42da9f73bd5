from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ehrlab.cli.main import cli
from ehrlab.core.config import validate
from ehrlab.core.errors import SpecError
from ehrlab.core.planning import PlanContext, Source, get_planner
from ehrlab.ehrgen.data import load_patients

BASE = {"name": "gen", "planner": "ehr_generator", "seed": 9, "cohort": {"source": "/data/meds"}}


def plan(spec: dict) -> dict:
    planner = get_planner("ehr_generator")
    return {node.name: node for node in planner.plan(validate(planner.spec_model, spec), PlanContext())}


def test_train_evaluate_publish_graph_with_seeds_and_resources() -> None:
    nodes = plan({**BASE, "train": {"size": "tiny"}, "evaluate": {"n_synthetic": 10},
                  "publish": {"name": "m", "at_least": {"validity.valid_fraction": 1}},
                  "resources": {"train": {"gpu": 0}}})
    assert list(nodes) == ["train", "evaluate", "publish"]
    assert nodes["train"].params == {"seed": 9, "size": "tiny"} and nodes["train"].resources == {"gpu": 0}
    assert nodes["train"].inputs == {"cohort": Source("/data/meds")}
    assert nodes["evaluate"].inputs == {"model": "train", "cohort": Source("/data/meds")}
    assert nodes["evaluate"].params == {"seed": 9, "n_synthetic": 10}
    assert nodes["publish"].inputs == {"model": "train", "report": "evaluate"}


def test_simulated_cohorts_and_existing_models() -> None:
    nodes = plan({**BASE, "cohort": {"simulate": {"n_patients": 100}}, "model": {"source": "/models/m"},
                  "heldout": {"source": "/data/other"}})
    assert list(nodes) == ["simulate", "evaluate"]
    assert nodes["simulate"].kind == "simulate_cohort" and nodes["simulate"].params == {"seed": 9, "n_patients": 100}
    assert nodes["evaluate"].inputs == {"model": Source("/models/m"), "cohort": "simulate",
                                        "heldout": Source("/data/other")}


@pytest.mark.parametrize(("change", "message"), [
    ({"cohort": {}}, "exactly one of cohort.source and cohort.simulate"),
    ({"train": {}, "model": {"source": "/m"}}, "not both"),
    ({"resources": {"trian": {}}}, "unknown step 'trian'"),
    ({"model": {"source": "/m"}, "publish": {"name": "x"}}, "publishing needs a model trained"),
    ({"publish": {"name": "bad name"}}, "publish.name"),
])
def test_bad_specs_name_the_problem(change: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        plan({**BASE, **change})


def test_cli_generates_locally_to_jsonl_and_meds(trained: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out.jsonl"
    result = runner.invoke(cli, ["ehrgen", "generate", "--model", str(trained), "--age", "40", "--sex", "F",
                                 "--age", "70", "--sex", "M", "--count", "3", "--seed", "1",
                                 "--sampling", "max_visits=3", "--out", str(out), "--meds", str(tmp_path / "meds")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["age"], r["sex"]) for r in lines] == [(40.0, "F")] * 3 + [(70.0, "M")] * 3
    assert [p.visits for p in load_patients(tmp_path / "meds")] == [tuple(map(tuple, r["visits"])) for r in lines]


@pytest.mark.parametrize(("arguments", "message"), [
    (["--age", "-2", "--sex", "F"], "age must not be negative"),
    (["--age", "40", "--sex", "Q"], "unknown sex 'Q'"),
    (["--age", "40", "--sex", "F", "--count", "0"], "count"),
    (["--age", "40", "--sex", "F", "--history", '[["ICD9CM/NOPE"]]'], "unknown code"),
    (["--age", "40", "--sex", "F", "--sampling", "top_p=3"], "top_p"),
    (["--age", "40"], "one --sex per --age"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(trained: Path, tmp_path: Path, arguments: list[str],
                                                      message: str) -> None:
    out = tmp_path / "out.jsonl"
    if "--sex" not in arguments:
        arguments = [*arguments, "--sex", "F", "--sex", "M"]
    result = CliRunner().invoke(cli, ["ehrgen", "generate", "--model", str(trained), *arguments, "--out", str(out)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.slow
def test_end_to_end_train_evaluate_publish_generate_through_the_stack(stack, cohort_file: Path,
                                                                      tmp_path: Path) -> None:
    env = {**os.environ, **stack.env()}
    ehrlab = [sys.executable, "-m", "ehrlab.cli.main"]
    trained = subprocess.run([*ehrlab, "ehrgen", "train", "--cohort", str(cohort_file), "--size", "tiny",
                              "--param", "epochs=1", "--param", "max_len=64", "--n-synthetic", "30",
                              "--publish", "e2e-tiny", "--cpu"], env=env, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "validity.valid_fraction" in trained.stdout
    out = tmp_path / "records.jsonl"
    generated = subprocess.run([*ehrlab, "ehrgen", "generate", "--model", "e2e-tiny", "--age", "55", "--sex", "M",
                                "--count", "4", "--out", str(out)], env=env, capture_output=True, text=True,
                               timeout=120)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert len(out.read_text().splitlines()) == 4
