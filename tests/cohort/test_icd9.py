"""ICD-9-CM code table and the age/sex validity rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ehrlab.cohort import icd9


def test_code_table_has_every_cms_diagnosis_code_with_its_hierarchy() -> None:
    table = icd9.code_table()
    assert len(table) == 14_567
    row = table.index["4280"]
    assert table.code[row] == "428.0"
    assert table.description[row] == "Congestive heart failure, unspecified"
    assert (table.category[row], table.section[row], table.chapter[row]) == ("428", "420-429", "390-459")
    assert table.category[table.index["E8889"]] == "E888"
    assert table.category[table.index["042"]] == "042"  # a category that is itself a billable code
    assert icd9.categories()["428"] == "Heart failure"
    assert icd9.describe("390-459") == "Diseases Of The Circulatory System"
    assert icd9.describe("ICD9CM/250.00").startswith("Diabetes mellitus without mention of complication")


@pytest.mark.parametrize("spelling", ["428.0", "4280", "ICD9CM/428.0", "icd9cm/4280", " 428.0 "])
def test_codes_are_accepted_in_any_common_spelling(spelling: str) -> None:
    assert icd9.normalize(spelling) == "4280"
    assert icd9.to_meds(spelling) == "ICD9CM/428.0"


@pytest.mark.parametrize("code", ["MEDS_BIRTH", "GENDER//F", "ICD10CM/I50.9", "42", "ABC"])
def test_non_icd9_codes_have_no_rules(code: str) -> None:
    assert icd9.normalize(code) is None
    assert icd9.is_allowed(code, 200.0, "M")
    assert icd9.violations(code, 200.0, "M") == []


@pytest.mark.parametrize(("code", "age", "sex", "rules"), [
    ("V20.2", 17.9, "F", []),
    ("V20.2", 18.0, "F", ["pediatric"]),
    ("650", 15.0, "F", []),
    ("650", 50.9, "F", []),
    ("650", 51.0, "F", ["maternity"]),
    ("650", 14.9, "F", ["maternity"]),
    ("650", 30.0, "M", ["female_only"]),
    ("650", 62.0, "M", ["maternity", "female_only"]),
    ("V22.0", 30.0, "M", ["female_only"]),
    ("600.00", 70.0, "M", []),
    ("600.00", 70.0, "F", ["male_only"]),
    ("185", 70.0, "F", ["male_only"]),
    ("174.9", 50.0, "M", ["female_only"]),
    ("175.9", 50.0, "F", ["male_only"]),
    ("183.0", 50.0, "M", ["female_only"]),
    ("614.9", 30.0, "M", ["female_only"]),
    ("765.29", 0.5, "M", []),
    ("765.29", 1.0, "M", ["perinatal"]),
    ("V30.00", 3.0, "F", ["perinatal"]),
    ("V20.31", 5 * icd9.DAY, "F", []),
    ("V20.31", 40 * icd9.DAY, "F", ["newborn_check"]),
    ("798.0", 2.0, "F", ["sids"]),
    ("290.0", 64.0, "F", ["senile"]),
    ("290.0", 65.0, "F", []),
    ("428.0", 0.1, "F", []),
])
def test_rules(code: str, age: float, sex: str, rules: list[str]) -> None:
    found = icd9.violations(code, age, sex)
    assert [message.split(":")[0] for message in found] == rules
    assert icd9.is_allowed(code, age, sex) is (not rules)
    assert icd9.is_allowed(icd9.to_meds(code), age, sex) is (not rules)


def test_unknown_age_or_sex_skips_those_rules() -> None:
    assert icd9.is_allowed("650", None, "F")
    assert icd9.is_allowed("650", 30.0, None)
    assert not icd9.is_allowed("650", None, "M")
    assert icd9.violations("600.0", float("nan"), None) == []


def test_bad_sex_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown sex"):
        icd9.is_allowed("650", 30.0, "X")
    assert icd9.normalize_sex("female") == "F" and icd9.normalize_sex("GENDER//M") == "M"


def test_vectorised_mask_agrees_with_the_scalar_rules() -> None:
    table = icd9.code_table()
    rules = icd9.rules_for(table.code.tolist())
    ages = np.array([0.2, 5.0, 16.0, 30.0, 55.0, 70.0, np.nan])
    for sex in ("F", "M"):
        mask = rules.mask(ages, sex)
        assert mask.shape == (len(ages), len(table))
        for i in range(0, len(table), 37):
            for j, age in enumerate(ages):
                assert mask[j, i] == icd9.is_allowed(table.code[i], None if np.isnan(age) else age, sex)
    both = rules.mask(np.array([30.0, 30.0]), np.array(["F", "M"]))
    pregnancy = table.index["650"]
    assert both[:, pregnancy].tolist() == [True, False]
    assert np.array_equal(icd9.allowed_mask(table.code.tolist(), 30.0, "M"), both[1])


def test_sex_specific_ranges_cover_the_sex_specific_chapters() -> None:
    table = icd9.code_table()
    male_chapter = np.char.startswith(table.key.astype(str), "60") & (table.category.astype(str) <= "608")
    assert (table.sex[male_chapter] == icd9.MALE).all()
    female = (table.category.astype(str) >= "614") & (table.category.astype(str) <= "679")
    assert (table.sex[female] == icd9.FEMALE).all()


def test_every_rule_is_documented() -> None:
    text = (Path(__file__).parents[2] / "docs" / "cohort.md").read_text()
    for rule in icd9.RULES:
        assert f"`{rule.name}`" in text, rule.name
        for span in rule.ranges:
            assert span in text, (rule.name, span)
