"""Alert and recording rules: promtool checks them and runs their unit tests (rules_test.yaml)."""

from __future__ import annotations

from pathlib import Path

from tests.support.fixtures import require_installed
from tests.support.prometheus import check_rules, run_rule_tests

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "ehrlab" / "files" / "prometheus-rules.yaml"


def test_rules_are_valid() -> None:
    require_installed("promtool")
    result = check_rules(RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def test_rule_unit_tests_pass() -> None:
    require_installed("promtool")
    result = run_rule_tests(Path(__file__).with_name("rules_test.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_expectation_fails(tmp_path: Path) -> None:
    """The unit tests can fail: the same stalled-experiment test expecting no alert is reported."""
    require_installed("promtool")
    broken = tmp_path / "broken_test.yaml"
    broken.write_text(f"""
rule_files: [{RULES}]
evaluation_interval: 30s
tests:
  - interval: 1m
    input_series:
      - series: 'ehrlab_experiment_progress_ratio{{experiment="xstuck"}}'
        values: '0.5x60'
    alert_rule_test:
      - eval_time: 45m
        alertname: EhrlabExperimentStalled
        exp_alerts: []
""")
    result = run_rule_tests(broken)
    assert result.returncode != 0 and "EhrlabExperimentStalled" in result.stdout + result.stderr
