"""`ehrlab grading …` against a real GradingStore server: one-line errors, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ehrlab.cli.main import cli
from ehrlab.grading.client import GradingClient
from ehrlab.grading.store import GradingStore
from tests.grading.test_cases import GOOD


def ehrlab(address: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["grading", "--address", address, *args], catch_exceptions=False)


def test_a_study_set_up_from_the_command_line(grading_address: str, grading: GradingClient, tmp_path: Path) -> None:
    generated = ehrlab(grading_address, "cases", "generate", "--count", "6", "--seed", "3",
                       "--ineligible-fraction", "0.3", "--out", str(tmp_path / "cases.yaml"), "--load")
    assert generated.exit_code == 0, generated.output
    assert (tmp_path / "cases.yaml").exists() and "stored 6 case(s)" in generated.output
    eligible = ehrlab(grading_address, "cases", "eligible")
    assert "eligible case(s)" in eligible.output
    count = len(grading.eligible_cases())
    assert 0 < count < 6

    assert ehrlab(grading_address, "models", "add", "--vendor", "offline", "--model", "template:0.8").exit_code == 0
    added = ehrlab(grading_address, "models", "add", "--vendor", "openai", "--model", "gpt-4.1",
                   "--credentials", "openai")
    assert "model 2: openai gpt-4.1" in added.output
    assert "openai" in ehrlab(grading_address, "models", "ls").output

    created = ehrlab(grading_address, "experiment", "create", "study", "--note-replications", "5",
                     "--grade-replications", "2")
    assert created.exit_code == 0 and "5 note × 2 grade replications" in created.output
    assert f"added {count} case(s)" in ehrlab(grading_address, "experiment", "add-cases", "study",
                                              "--eligible").output
    assert "pair 1" in ehrlab(grading_address, "experiment", "add-model", "study", "--generator", "1",
                              "--grader", "1").output
    shown = ehrlab(grading_address, "experiment", "show", "study")
    assert shown.exit_code == 0 and "offline:template:0.8" in shown.output
    assert str(count * 5) in shown.output and str(count * 5 * 2 * 2) in shown.output   # expected notes and grades
    assert "grades" in ehrlab(grading_address, "progress", "study").output
    assert ehrlab(grading_address, "recent", "study").exit_code == 0
    report = ehrlab(grading_address, "report", "study", "--out", str(tmp_path / "report"))
    assert report.exit_code == 0 and (tmp_path / "report" / "pairs.png").exists()


@pytest.mark.parametrize(("args", "message"), [
    (("models", "add", "--vendor", "openai", "--credentials", "sk-abcdefghijklmnopqrstuvwxyz012345"),
     "looks like an API key"),
    (("models", "add", "--vendor", "openai-compatible"), "base_url"),
    (("experiment", "add-model", "nope", "--generator", "1", "--grader", "1"), "unknown grading experiment"),
    (("experiment", "create", "x", "--note-replications", "0"), "note_replications"),
    (("progress", "missing"), "unknown grading experiment 'missing'"),
])
def test_bad_input_is_one_line_and_exit_2(grading_address: str, args: tuple[str, ...], message: str) -> None:
    result = ehrlab(grading_address, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_loading_a_bad_file_names_it_and_stores_nothing(grading_address: str, store: GradingStore,
                                                        tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD.replace("chest-pain-001", "other").replace("sense: negative",
                                                                                     "sense: sideways"))
    result = ehrlab(grading_address, "cases", "load", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path / 'b.yaml'}: cases[0].rubrics[0].criteria[1].sense" in result.output
    assert store.db.fetch_one("SELECT count(*) AS n FROM grading_case")["n"] == 0
    assert ehrlab(grading_address, "cases", "load", str(tmp_path / "a.yaml")).exit_code == 0
    assert "chest-pain-001" in ehrlab(grading_address, "cases", "ls").output
