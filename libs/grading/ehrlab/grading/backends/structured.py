"""Prompts, JSON schemas and strict parsing of what LLMs answer.

Notes are SOAP notes: one JSON object with the four sections as strings. Grades are one JSON object
`{"grades": [{"id", "rationale", "satisfaction"}, …]}` holding exactly one item per criterion (ids
0..n-1) with satisfaction a number in 0..100. Anything else — not JSON, a missing section, a
missing, repeated or extra criterion, satisfaction out of range — is a MalformedOutputError, which
is transient: the same request usually succeeds on another attempt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ehrlab.grading.backends import MalformedOutputError
from ehrlab.grading.model import Criterion, CriterionGrade

NOTE_SECTIONS = ("subjective", "objective", "assessment", "plan")

NOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {section: {"type": "string"} for section in NOTE_SECTIONS},
    "required": list(NOTE_SECTIONS),
    "additionalProperties": False,
}

GRADES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"grades": {"type": "array", "items": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "rationale": {"type": "string"},
                       "satisfaction": {"type": "number"}},  # range checked on parsing
        "required": ["id", "rationale", "satisfaction"],
        "additionalProperties": False,
    }}},
    "required": ["grades"],
    "additionalProperties": False,
}

NOTE_SYSTEM = (
    "You are a clinical scribe. From the transcript of a visit, write the visit's SOAP note. Answer with one "
    "JSON object with exactly the string fields subjective, objective, assessment and plan. State only what "
    "the transcript supports; do not invent findings, medications or diagnoses."
)

GRADE_SYSTEM = (
    "You grade a clinical note against a rubric. For every criterion, judge how fully the note complies with "
    "it and give a satisfaction from 0 to 100. A criterion marked POSITIVE describes something the note "
    "should do: 100 means it does so completely, 0 not at all. A criterion marked NEGATIVE describes something "
    "the note must NOT do: 100 means the note avoids it entirely, 0 means it clearly does it. Answer with one "
    "JSON object {\"grades\": [{\"id\": <criterion id>, \"rationale\": <one or two sentences>, "
    "\"satisfaction\": <0-100>}]} with exactly one item per criterion."
)


def note_prompt(transcript: str) -> str:
    return f"Transcript of the visit:\n\n{transcript.strip()}\n\nWrite the SOAP note as JSON."


def grade_prompt(note: dict[str, Any], criteria: Sequence[Criterion], transcript: str) -> str:
    listed = "\n".join(f"{i}. [{c.sense.value.upper()}] {c.criterion}" for i, c in enumerate(criteria))
    return (f"Transcript of the visit:\n\n{transcript.strip()}\n\nThe note:\n\n{render_note(note)}\n\n"
            f"Criteria (id. [sense] text):\n{listed}\n\nGrade all {len(criteria)} criteria as JSON.")


def render_note(note: dict[str, Any]) -> str:
    return "\n".join(f"{section.upper()}: {text}" for section, text in note.items())


def _load_json(text: str | None, what: str) -> Any:
    if not text or not text.strip():
        raise MalformedOutputError(f"{what}: the model returned no content")
    body = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, flags=re.S)
    if fenced:
        body = fenced.group(1)
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedOutputError(f"{what}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
                                   f"{body[:120]!r}") from None


def parse_note(answer: str | dict[str, Any] | None) -> dict[str, str]:
    data = answer if isinstance(answer, dict) else _load_json(answer, "note")
    if not isinstance(data, dict):
        raise MalformedOutputError(f"note: expected a JSON object, got {type(data).__name__}")
    missing = [s for s in NOTE_SECTIONS if not isinstance(data.get(s), str)]
    if missing:
        raise MalformedOutputError(f"note: missing or non-text section(s): {', '.join(missing)}")
    return {section: data[section] for section in NOTE_SECTIONS}


def parse_grades(answer: str | dict[str, Any] | list[Any] | None, criteria_count: int) -> list[CriterionGrade]:
    data = answer if isinstance(answer, (dict, list)) else _load_json(answer, "grades")
    items = data.get("grades") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise MalformedOutputError("grades: expected {\"grades\": [...]} or a list of grades")
    if len(items) != criteria_count:
        raise MalformedOutputError(f"grades: expected {criteria_count} item(s), one per criterion, got {len(items)}")
    grades = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedOutputError(f"grades[{index}]: expected an object")
        grade_id, satisfaction = item.get("id"), item.get("satisfaction")
        if isinstance(grade_id, bool) or not isinstance(grade_id, int) or not 0 <= grade_id < criteria_count:
            raise MalformedOutputError(f"grades[{index}].id: expected a criterion id 0..{criteria_count - 1}, "
                                       f"got {grade_id!r}")
        if isinstance(satisfaction, bool) or not isinstance(satisfaction, (int, float)) or not 0 <= satisfaction <= 100:
            raise MalformedOutputError(f"grades[{index}].satisfaction: expected a number 0..100, got {satisfaction!r}")
        grades.append(CriterionGrade(id=grade_id, rationale=str(item.get("rationale") or ""),
                                     satisfaction=float(satisfaction)))
    ids = sorted(g.id for g in grades)
    if ids != list(range(criteria_count)):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise MalformedOutputError(f"grades: criterion id(s) {repeated} graded more than once, others missing")
    return sorted(grades, key=lambda g: g.id)
