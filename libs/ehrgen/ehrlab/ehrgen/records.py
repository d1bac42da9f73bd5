"""Patient records as the generator sees them: demographics and visits of diagnosis codes.

A record is what PromptEHR models: age (years, at the first visit), sex, and an ordered list of
visits, each an ordered list of distinct codes. Records read from and write to JSON lines; MEDS
input and output go through `ehrlab.ehrgen.data`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrlab.cohort import icd9
from ehrlab.core.errors import SpecError

MAX_AGE = 130.0

Visits = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Patient:
    age: float
    sex: str
    visits: Visits
    subject_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"age": round(self.age, 4), "sex": self.sex, "visits": [list(v) for v in self.visits]}
        if self.subject_id is not None:
            body = {"subject_id": self.subject_id, **body}
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any], *, path: str = "") -> Patient:
        if not isinstance(body, dict):
            raise SpecError(f"a patient record must be an object, got {type(body).__name__}", path=path)
        unknown = set(body) - {"subject_id", "age", "sex", "visits"}
        if unknown:
            raise SpecError(f"unknown key {sorted(unknown)[0]!r}", path=path)
        age, sex = check_demographics(body.get("age"), body.get("sex"), path=path)
        return cls(age=age, sex=sex, visits=check_visits(body.get("visits", []), path=_join(path, "visits")),
                   subject_id=body.get("subject_id"))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def normalize_sex(value: Any, *, path: str = "sex") -> str:
    """'F'/'M' from the spellings data sources use (F, female, GENDER//F, …); anything else is an error."""
    try:
        sex = icd9.normalize_sex(value) if isinstance(value, str) else None
    except ValueError:
        sex = None
    if sex is None:
        raise SpecError(f"unknown sex {value!r} (use F or M)", path=path)
    return sex


def check_demographics(age: Any, sex: Any, *, path: str = "") -> tuple[float, str]:
    """Validated (age, sex): age a finite number of years in [0, 130], sex F or M."""
    if isinstance(age, bool) or not isinstance(age, (int, float)) or not math.isfinite(age):
        raise SpecError(f"age must be a number of years, got {age!r}", path=_join(path, "age"))
    if age < 0:
        raise SpecError(f"age must not be negative, got {age}", path=_join(path, "age"))
    if age > MAX_AGE:
        raise SpecError(f"age {age} is not a human age (at most {MAX_AGE:g})", path=_join(path, "age"))
    return float(age), normalize_sex(sex, path=_join(path, "sex"))


def check_visits(visits: Any, *, path: str = "visits") -> Visits:
    """Visits as tuples of code strings; an empty visit or a code repeated within a visit is an error."""
    if not isinstance(visits, (list, tuple)):
        raise SpecError("visits must be a list of lists of codes", path=path)
    checked = []
    for i, visit in enumerate(visits):
        where = f"{path}[{i}]"
        if not isinstance(visit, (list, tuple)) or not visit:
            raise SpecError("a visit must be a non-empty list of codes", path=where)
        if not all(isinstance(code, str) and code for code in visit):
            raise SpecError("codes must be non-empty strings", path=where)
        if len(set(visit)) != len(visit):
            duplicate = next(c for c in visit if list(visit).count(c) > 1)
            raise SpecError(f"code {duplicate!r} appears twice in one visit", path=where)
        checked.append(tuple(visit))
    return tuple(checked)


def read_jsonl(path: str | Path) -> list[Patient]:
    """Patient records from a JSON-lines file; errors name the file and line."""
    patients = []
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                body = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SpecError(f"not JSON: {exc.msg}", path=f"line {number}", source=str(path)) from None
            try:
                patients.append(Patient.from_json(body, path=f"line {number}"))
            except SpecError as exc:
                raise SpecError(exc.message, path=exc.path, source=str(path)) from None
    return patients


def write_jsonl(patients: Iterable[Patient], path: str | Path) -> int:
    """Writes records atomically (a temporary file renamed into place): readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            for patient in patients:
                handle.write(json.dumps(patient.to_json()) + "\n")
                count += 1
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
