"""The experiment report: ICC against a published example, summaries, failures, files and plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ehrlab.grading.analysis import build_report, icc_oneway, pearson, summary, write_report
from ehrlab.grading.model import ErrorRecord, GradeResult, Model, ModelPair, NoteResult, Vendor

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; their ICC(1,1) is 0.17
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def test_icc_matches_shrout_and_fleiss() -> None:
    result = icc_oneway(SHROUT_FLEISS)
    assert result.value == pytest.approx(0.1657, abs=5e-4)
    assert result.lower < result.value < result.upper and result.groups == 6
    # the F-based 95% interval of ICC(1,1) for these data (BMS=11.24, WMS=6.26, df 5 and 18)
    assert result.lower == pytest.approx(-0.133, abs=5e-3)
    assert result.upper == pytest.approx(0.723, abs=5e-3)


def test_icc_edge_cases() -> None:
    assert icc_oneway([[1, 1], [3, 3], [5, 5]]).value == 1.0           # replications agree perfectly
    assert math.isnan(icc_oneway([[2, 2], [2, 2]]).value)              # no variance at all: undefined
    assert math.isnan(icc_oneway([[1, 2]]).value)                      # one target
    unbalanced = icc_oneway([[1, 2, 3], [4, 5], [7, 8, 9, 8]])           # failed grades leave holes
    assert 0 < unbalanced.value < 1
    assert summary([2, 4, 6]).sd == pytest.approx(2.0) and math.isnan(summary([1]).sd)
    assert pearson([(1, 2), (2, 4), (3, 6)]) == pytest.approx(1.0)


def _model(id: int) -> Model:
    return Model(id=id, vendor=Vendor.OFFLINE, model=f"template:0.{id}")


def test_report_per_pair_case_agreement_and_failures(tmp_path: Path) -> None:
    pairs = [ModelPair(id=1, experiment_id=1, generator=_model(9), grader=_model(1)),
             ModelPair(id=2, experiment_id=1, generator=_model(5), grader=_model(1))]
    notes, grades = [], []
    next_id = iter(range(1, 10_000))
    for pair_id, base in ((1, 8.0), (2, 4.0)):
        for case_id in (10, 11):
            for replication in range(2):
                note = NoteResult(id=next(next_id), experiment_id=1, case_id=case_id, pair_id=pair_id,
                                  replication=replication, note={"plan": "x"})
                notes.append(note)
                for rubric_id in (100 + case_id, 200 + case_id):
                    for g in range(2):
                        grades.append(GradeResult(id=next(next_id), result_id=note.id, rubric_id=rubric_id,
                                                  replication=g, overall=base + case_id - 10 + replication + g * 0.5))
    failed_note = NoteResult(id=9000, experiment_id=1, case_id=11, pair_id=2, replication=2, failed=True,
                             errors=[ErrorRecord(attempt=1, type="rate_limit", message="429"),
                                     ErrorRecord(attempt=2, type="timeout", message="slow")])
    failed_grade = GradeResult(id=9001, result_id=notes[0].id, rubric_id=110, replication=2, failed=True,
                               errors=[ErrorRecord(attempt=1, type="malformed_output", message="bad")])
    max_scores = {110: 10.0, 111: 10.0, 210: 20.0, 211: 20.0}
    report = build_report("e", pairs, [*notes, failed_note], [*grades, failed_grade], max_scores,
                          {10: "case-a", 11: "case-b"}, skipped=[{"case": "c", "reason": "no eligible rubric"}])

    first, second = report.pairs
    assert (first.notes, first.failed_notes, first.grades, first.failed_grades) == (4, 0, 17, 1)
    assert (second.notes, second.failed_notes) == (5, 1)
    assert first.overall.n == 16 and first.overall.mean == pytest.approx(9.25)
    assert second.overall.mean == pytest.approx(5.25)
    assert first.replication_icc.groups == 8 and first.replication_icc.value > 0.5
    assert first.author_icc.groups == 4                       # per note: the two authors' percentages
    assert report.failures == {"note:rate_limit": 1, "note:timeout": 1, "grade:malformed_output": 1}
    assert report.still_failed == {"note:timeout": 1, "grade:malformed_output": 1}
    assert [(c["case"], c["pair_id"], c["n"]) for c in report.cases] == [("case-a", 1, 8), ("case-a", 2, 8),
                                                                         ("case-b", 1, 8), ("case-b", 2, 8)]
    paths = write_report(report, tmp_path / "out")
    body = json.loads(paths[0].read_text())
    assert body["pairs"][0]["overall"]["mean"] == pytest.approx(9.25)
    assert "percent_by_pair" not in body
    assert "| 1: offline:template:0.9 → offline:template:0.1 |" in paths[1].read_text()
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[2].stat().st_size > 5000
