"""Case files: visits to write notes about, the facts a good note holds, and the rubrics to grade by.

A case file is YAML or JSON holding one case, or `cases:` with a list of them:

    name: chest-pain-001                 # unique; letters, digits, . _ -
    transcript: |
      DOCTOR: What brings you in today?
      PATIENT: I've had chest pain for three days.
    facts:                               # what the note must hold, by SOAP section (lists of statements)
      subjective: [Chest pain for three days]
      objective: [Blood pressure 150/95]
      assessment: [Chest pain, suspected angina]
      plan: [ECG today]
    rubrics:
      - author: dr_rivera                # "llm" marks a machine-written rubric (never eligible)
        validation: accepted             # not_evaluated | refused | accepted
        validated_at: 2026-03-02T10:00:00Z   # required unless not_evaluated
        criteria:
          - {criterion: Documents chest pain for three days, weight: 3, sense: positive}
          - {criterion: States that the patient smokes, weight: 2, sense: negative}

Every key is validated before anything is stored: an error names the file and the key path
(`cases.yaml: cases[3].rubrics[0].criteria[2].sense: …`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from ehrlab.core.config import SpecModel, load_layer, validate
from ehrlab.core.errors import SpecError
from ehrlab.grading.model import Case

SUFFIXES = (".yaml", ".yml", ".json")


class CaseFile(SpecModel):
    cases: list[Case]


def load_case_file(path: str | Path) -> list[Case]:
    layer = load_layer(path)  # JSON is YAML: one parser, errors with line and column
    content = dict(layer.content)
    if "cases" in content:
        return validate(CaseFile, content, source=layer.source).cases
    return [validate(Case, content, source=layer.source)]


def case_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The case files named, with directories expanded to the case files in them (sorted)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        elif path.exists():
            found.append(path)
        else:
            raise SpecError("file not found", source=str(path))
    return found


def load_cases(paths: Iterable[str | Path]) -> list[Case]:
    """Every case in the files and folders named; a name used twice is an error."""
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for path in case_paths(paths):
        for index, case in enumerate(load_case_file(path)):
            if case.name in seen:
                raise SpecError(f"case name {case.name!r} is already used in {seen[case.name]}",
                                path=f"cases[{index}].name", source=str(path))
            seen[case.name] = str(path)
            cases.append(case)
    return cases


def dump_cases(cases: Sequence[Case], path: str | Path) -> Path:
    """Writes cases to one file (YAML, or JSON when the name ends in .json) that load_cases reads back."""
    path = Path(path)
    body: dict[str, Any] = {"cases": [c.model_dump(mode="json", exclude_defaults=True) for c in cases]}
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(body, indent=1) if path.suffix == ".json" else yaml.safe_dump(body, sort_keys=False,
                                                                                     allow_unicode=True)
    path.write_text(text)
    return path
