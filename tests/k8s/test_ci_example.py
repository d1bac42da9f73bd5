"""The GitHub Actions example: it uses only CLI options that exist, and its experiment spec plans."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from ehrlab.cli.main import cli
from ehrlab.core.config import load_layer
from ehrlab.engine.planning import plan_experiment

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ci"


def test_workflow_submits_and_waits_with_existing_options() -> None:
    workflow = yaml.safe_load((EXAMPLE / "ehrlab-experiment.yml").read_text())
    steps = workflow["jobs"]["experiment"]["steps"]
    script = "\n".join(step.get("run", "") for step in steps).replace("\\\n", " ")
    assert "ehrlab submit \"$SPEC\" --wait" in script
    runner = CliRunner()
    for command in ("submit", "show", "results"):
        help_text = runner.invoke(cli, [command, "--help"]).output
        [line] = re.findall(rf"ehrlab {command} [^\n]*", script)
        for option in {word for word in line.split() if word.startswith("--")}:
            assert option in help_text, f"ehrlab {command} has no option {option}"
    assert workflow["jobs"]["experiment"]["env"]["SPEC"].endswith("'examples/ci/experiment.yaml' }}")


def test_example_spec_plans() -> None:
    plan = plan_experiment([load_layer(EXAMPLE / "experiment.yaml")])
    assert [task.kind for task in plan.tasks] == ["simulate_cohort", "noop"]
