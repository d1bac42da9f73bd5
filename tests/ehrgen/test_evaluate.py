from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ehrlab.core.artifacts.local import LocalStore
from ehrlab.core.errors import SpecError
from ehrlab.core.runner import run_local
from ehrlab.ehrgen.evaluate import check_targets, coherence, evaluate_records, fidelity, privacy, validity
from ehrlab.ehrgen.records import Patient
from tests.ehrgen.conftest import make_cohort


def test_validity_counts_each_kind_of_problem() -> None:
    patients = [
        Patient(40.0, "F", (("ICD9CM/401.9",),)),                          # fine
        Patient(40.0, "F", (("ICD9CM/600.00",),)),                          # male-only code in a woman
        Patient(70.0, "F", (("ICD9CM/650",),)),                             # delivery at 70
        Patient(40.0, "M", (("ICD9CM/401.9", "ICD9CM/401.9"),)),            # duplicate within a visit
        Patient(40.0, "M", ()),                                             # no visits
    ]
    report = validity(patients)
    assert report["sex_violation_rate"] == pytest.approx(0.2)
    assert report["age_violation_rate"] == pytest.approx(0.2)
    assert report["duplicate_rate"] == pytest.approx(0.2)
    assert report["malformed_rate"] == pytest.approx(0.2)
    assert report["valid_fraction"] == pytest.approx(0.2)
    assert any("600.00" in e for e in report["examples"])


def test_identical_data_scores_perfectly_and_unrelated_data_does_not() -> None:
    real = make_cohort(400, seed=1)
    same = coherence(real, real)
    assert same["js_divergence"] == pytest.approx(0.0, abs=1e-12)
    assert same["top100_overlap"] == 1.0 and same["pair_precision"] == 1.0 and same["ks_codes_per_visit"] == 0
    perfect = fidelity(real, real)
    assert perfect["unigram_r2"] == pytest.approx(1.0) and perfect["bigram_r2"] == pytest.approx(1.0)
    assert perfect["conditional_r2"] == pytest.approx(1.0)
    shuffled_codes = sorted({c for p in real for v in p.visits for c in v})
    rng = np.random.default_rng(0)
    noise = [Patient(p.age, p.sex, tuple(tuple(rng.choice(shuffled_codes, len(v), replace=False)) for v in p.visits))
             for p in real]
    bad = fidelity(real, noise)
    assert bad["unigram_r2"] < 0.5 and bad["bigram_r2"] < 0.5
    assert coherence(real, noise)["js_divergence"] > 0.05
    other = fidelity(real, make_cohort(400, seed=2))          # same process, new sample: high but not perfect
    assert 0.8 < other["unigram_r2"] < 1.0


def test_membership_inference_sees_copies_and_not_fresh_samples() -> None:
    members, others = make_cohort(300, seed=3), make_cohort(300, seed=4)
    rng = np.random.default_rng(0)
    copied = privacy(members, others, members, members, rng, known_codes=5)
    assert copied["membership_accuracy"] > 0.7 and copied["mean_distance_members"] == 0
    fresh = privacy(members, others, make_cohort(600, seed=5), members, rng, known_codes=5)
    assert abs(fresh["membership_accuracy"] - 0.5) < 0.1
    assert copied["attribute_advantage"] > fresh["attribute_advantage"]


def test_targets_name_value_bound_and_verdict() -> None:
    real = make_cohort(300, seed=6)
    report = evaluate_records(real, real, train=make_cohort(300, seed=7))
    targets = check_targets(report)
    assert targets["validity.valid_fraction"] == {"value": 1.0, "target": ">= 1.0", "met": True}
    assert targets["coherence.js_divergence"]["met"] is True
    assert report["fidelity"]["ceiling"]["unigram_r2"] > 0.8
    with pytest.raises(SpecError, match="no synthetic records"):
        evaluate_records(real, [])


def test_the_task_writes_report_plots_and_records(trained: Path, cohort_file: Path, tmp_path: Path) -> None:
    path, _ = run_local("evaluate_generator", {"seed": 1, "n_synthetic": 80, "max_members": 50},
                        {"model": trained, "cohort": cohort_file}, store=LocalStore(tmp_path))
    report = json.loads((path / "report.json").read_text())
    assert report["records"] == {"real": 60, "synthetic": 80, "train": 510}
    assert report["validity"]["valid_fraction"] == 1.0
    assert {"unigram_r2", "bigram_r2", "conditional_r2", "ceiling"} <= set(report["fidelity"])
    assert {"membership_accuracy", "attribute_f1_members"} <= set(report["privacy"])
    assert report["perplexity"]["next_visit_perplexity"] > 1 and report["perplexity"]["infilling_perplexity"] > 1
    assert set(report["targets"]) >= {"fidelity.unigram_r2", "privacy.membership_accuracy"}
    for name in ("code_frequency.png", "visit_lengths.png"):
        assert (path / name).read_bytes()[:4] == b"\x89PNG"
    assert len((path / "synthetic.jsonl").read_text().splitlines()) == 80
    rows = [json.loads(line) for line in (path / "results.jsonl").read_text().splitlines()]
    assert {"metric": "validity.valid_fraction", "value": 1.0} in rows
