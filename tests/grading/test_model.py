"""Scoring (negative-sense criteria included) and validation of the grading model."""

from __future__ import annotations

import pytest

from ehrlab.core.config import validate
from ehrlab.core.errors import SpecError
from ehrlab.grading.model import Case, Criterion, CriterionGrade, ModelSpec, Rubric, Sense
from ehrlab.grading.scoring import criterion_score, score_grades


def test_positive_criterion_earns_its_weight_times_satisfaction() -> None:
    criterion = Criterion(criterion="Documents the chief complaint", weight=4, sense=Sense.POSITIVE)
    assert criterion_score(criterion, 100) == 4
    assert criterion_score(criterion, 25) == 1
    assert criterion_score(criterion, 0) == 0


def test_negative_criterion_costs_the_weight_it_fails_to_avoid() -> None:
    criterion = Criterion(criterion="States a medication never discussed", weight=3, sense=Sense.NEGATIVE)
    assert criterion_score(criterion, 100) == 0          # fully avoided: no penalty
    assert criterion_score(criterion, 0) == -3           # clearly done: the whole weight
    assert criterion_score(criterion, 40) == pytest.approx(-1.8)


def test_overall_is_the_sum_and_grades_may_come_in_any_order() -> None:
    criteria = [Criterion(criterion="a", weight=2, sense=Sense.POSITIVE),
                Criterion(criterion="b", weight=5, sense=Sense.POSITIVE),
                Criterion(criterion="c", weight=3, sense=Sense.NEGATIVE)]
    grades = [CriterionGrade(id=2, satisfaction=50), CriterionGrade(id=0, satisfaction=100),
              CriterionGrade(id=1, satisfaction=20)]
    scored, overall = score_grades(criteria, grades)
    assert [g.id for g in scored] == [0, 1, 2]
    assert [g.score for g in scored] == pytest.approx([2.0, 1.0, -1.5])
    assert overall == pytest.approx(1.5)


@pytest.mark.parametrize("ids", [[0, 1], [0, 1, 1], [0, 1, 2, 3], [1, 2, 3]])
def test_grades_must_cover_each_criterion_once(ids: list[int]) -> None:
    criteria = [Criterion(criterion=str(i), weight=1, sense=Sense.POSITIVE) for i in range(3)]
    with pytest.raises(ValueError, match="one grade per criterion"):
        score_grades(criteria, [CriterionGrade(id=i, satisfaction=50) for i in ids])


def test_satisfaction_outside_0_100_is_refused() -> None:
    with pytest.raises(ValueError):
        criterion_score(Criterion(criterion="a", weight=1, sense=Sense.POSITIVE), 101)


def test_criterion_without_weight_is_refused_with_its_path() -> None:
    body = {"name": "c1", "transcript": "t", "rubrics": [
        {"author": "dr_a", "criteria": [{"criterion": "x", "weight": 1, "sense": "positive"},
                                        {"criterion": "y", "sense": "positive"}]}]}
    with pytest.raises(SpecError) as error:
        validate(Case, body, source="cases.yaml")
    assert error.value.path == "rubrics[0].criteria[1].weight"
    assert error.value.source == "cases.yaml"
    assert "required" in error.value.message


@pytest.mark.parametrize("sense", ["pos", "", "NEGATIVE", 1])
def test_invalid_sense_is_refused(sense: object) -> None:
    with pytest.raises(SpecError) as error:
        validate(Criterion, {"criterion": "x", "weight": 1, "sense": sense})
    assert error.value.path == "sense"


@pytest.mark.parametrize("weight", [0, -2])
def test_weight_must_be_positive(weight: float) -> None:
    with pytest.raises(SpecError) as error:
        validate(Criterion, {"criterion": "x", "weight": weight, "sense": "positive"})
    assert error.value.path == "weight"


def test_a_validated_rubric_needs_its_validation_time() -> None:
    with pytest.raises(SpecError, match="validated_at is required"):
        validate(Rubric, {"author": "dr_a", "validation": "accepted",
                          "criteria": [{"criterion": "x", "weight": 1, "sense": "positive"}]})


def test_max_score_counts_positive_weights_only() -> None:
    rubric = Rubric(author="a", criteria=[Criterion(criterion="x", weight=2, sense=Sense.POSITIVE),
                                          Criterion(criterion="y", weight=5, sense=Sense.NEGATIVE)])
    assert rubric.max_score == 2


@pytest.mark.parametrize("key", ["sk-proj-abcdefghijklmnop", "A" * 48])
def test_a_key_given_as_credentials_is_refused_without_echoing_it(key: str) -> None:
    with pytest.raises(SpecError) as error:
        validate(ModelSpec, {"vendor": "openai", "credentials_ref": key})
    assert error.value.path == "credentials_ref"
    assert "looks like an API key" in str(error.value)
    assert key not in str(error.value)


@pytest.mark.parametrize("reference", ["has space", "../etc/passwd", "/abs"])
def test_credentials_are_a_plain_secret_name(reference: str) -> None:
    with pytest.raises(SpecError) as error:
        validate(ModelSpec, {"vendor": "openai", "credentials_ref": reference})
    assert error.value.path == "credentials_ref"


def test_openai_compatible_needs_a_base_url_and_vendors_are_known() -> None:
    with pytest.raises(SpecError, match="base_url"):
        validate(ModelSpec, {"vendor": "openai-compatible", "model": "llama"})
    with pytest.raises(SpecError) as error:
        validate(ModelSpec, {"vendor": "mistral"})
    assert error.value.path == "vendor"
    assert validate(ModelSpec, {"vendor": "openai-compatible", "base_url": "http://localhost:8000/v1/"}).base_url \
        == "http://localhost:8000/v1"
