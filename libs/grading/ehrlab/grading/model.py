"""The grading data model: cases, rubrics and their criteria, models, experiments, notes and grades.

These pydantic models are the one definition of what is valid. Files, the CLI and the GradingStore
RPCs all validate through them, so a bad rubric is refused with the path of the offending key
(`rubrics[0].criteria[2].weight: required key is missing`) before anything is written.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from ehrlab.core.config import SpecModel

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# The author the original system recorded for machine-written rubrics; any other author is human.
MACHINE_AUTHOR = "llm"


class Sense(StrEnum):
    """positive: the note should do what the criterion says; negative: the note must NOT do it."""

    POSITIVE = "positive"
    NEGATIVE = "negative"


class Validation(StrEnum):
    NOT_EVALUATED = "not_evaluated"
    REFUSED = "refused"
    ACCEPTED = "accepted"


class Vendor(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    OPENAI_COMPATIBLE = "openai-compatible"   # vLLM, llama.cpp server, Ollama, … by base URL
    OFFLINE = "offline"                       # fact-template notes and MiniLM-similarity grades: a baseline


class Criterion(SpecModel):
    criterion: str = Field(min_length=1)
    weight: float = Field(gt=0)
    sense: Sense


class Rubric(SpecModel):
    author: str = Field(min_length=1, max_length=200)
    validation: Validation = Validation.NOT_EVALUATED
    validated_at: datetime | None = None
    criteria: list[Criterion] = Field(min_length=1)

    @model_validator(mode="after")
    def _validated_needs_time(self) -> Rubric:
        if self.validation is not Validation.NOT_EVALUATED and self.validated_at is None:
            raise ValueError(f"validated_at is required when validation is {self.validation.value!r}")
        return self

    @property
    def is_human(self) -> bool:
        return self.author != MACHINE_AUTHOR

    @property
    def max_score(self) -> float:
        """The overall score of a note that satisfies every criterion fully."""
        return sum(c.weight for c in self.criteria if c.sense is Sense.POSITIVE)


class Case(SpecModel):
    """A visit to write a note about: its transcript, the facts a good note holds, and rubrics."""

    name: str = Field(pattern=NAME_PATTERN, max_length=200)
    transcript: str = Field(min_length=1)
    facts: dict[str, Any] = Field(default_factory=dict)
    rubrics: list[Rubric] = Field(default_factory=list)
    source: str = ""


SECRET_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# Shapes of real API keys: a secret pasted where its name belongs is refused, never stored.
_KEY_SHAPES = re.compile(r"^(sk-|sk_|xai-|AIza|ghp_|hf_)|^[A-Za-z0-9_\-]{40,}$")


class ModelSpec(SpecModel):
    """A model a backend can call. `credentials_ref` names a secret (see ehrlab.grading.secrets)."""

    vendor: Vendor
    model: str = Field("", max_length=200)     # empty: the vendor's default (backends.DEFAULT_MODELS)
    base_url: str = Field("", max_length=500)
    credentials_ref: str = Field("", max_length=200)
    reasoning_model: str = Field("", max_length=200)   # used when a pair grades with reasoning; empty: `model`

    @field_validator("credentials_ref")
    @classmethod
    def _reference_not_secret(cls, value: str) -> str:
        if value and _KEY_SHAPES.search(value):
            raise ValueError("looks like an API key: give the NAME of a secret (env/file), never the key itself")
        if value and not re.match(SECRET_NAME, value):
            raise ValueError(f"secret names use letters, digits, '_', '.', '-' (got {value!r})")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not re.match(r"^https?://", value):
            raise ValueError(f"base_url must start with http:// or https:// (got {value!r})")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _compatible_needs_url(self) -> ModelSpec:
        if self.vendor is Vendor.OPENAI_COMPATIBLE and not self.base_url:
            raise ValueError("an openai-compatible model needs base_url (e.g. http://localhost:8000/v1)")
        return self


class Model(ModelSpec):
    id: int


class ExperimentDefinition(SpecModel):
    name: str = Field(pattern=NAME_PATTERN, max_length=200)
    code_version: str = Field("", max_length=200)   # empty: the code version of the grading task kinds
    note_replications: int = Field(1, ge=1, le=1000)
    grade_replications: int = Field(1, ge=1, le=1000)
    description: str = ""


class Experiment(ExperimentDefinition):
    id: int
    created: datetime | None = None


class ModelPair(SpecModel):
    """One experiment ↔ model combination: who writes the notes, who grades them, and how."""

    id: int
    experiment_id: int
    generator: Model
    grader: Model
    grader_is_reasoning: bool = False

    @property
    def label(self) -> str:
        grader = self.grader.model or "default"
        return (f"{self.generator.vendor.value}:{self.generator.model or 'default'} → "
                f"{self.grader.vendor.value}:{grader}{' (reasoning)' if self.grader_is_reasoning else ''}")


class StoredRubric(Rubric):
    id: int
    case_id: int
    created: datetime | None = None


class StoredCase(SpecModel):
    id: int
    name: str
    transcript: str
    facts: dict[str, Any] = Field(default_factory=dict)
    source: str = ""
    rubrics: list[StoredRubric] = Field(default_factory=list)
    created: datetime | None = None


class ErrorRecord(SpecModel):
    """One failed attempt: what kind of failure, what it said, when."""

    attempt: int = 0
    type: str
    message: str
    time: datetime | None = None


class CriterionGrade(SpecModel):
    id: int = Field(ge=0)
    rationale: str = ""
    satisfaction: float = Field(ge=0, le=100)
    score: float = 0.0


class NoteKey(SpecModel):
    """What identifies one note of an experiment: case × model pair × replication."""

    experiment_id: int
    case_id: int
    pair_id: int
    replication: int = Field(ge=0)


class NoteResult(NoteKey):
    id: int = 0
    note: dict[str, Any] | None = None
    failed: bool = False
    errors: list[ErrorRecord] = Field(default_factory=list)
    attempts: int = 0
    updated: datetime | None = None


class GradeKey(SpecModel):
    """What identifies one grade: note × rubric × replication."""

    result_id: int
    rubric_id: int
    replication: int = Field(ge=0)


class GradeResult(GradeKey):
    id: int = 0
    grades: list[CriterionGrade] = Field(default_factory=list)
    overall: float | None = None
    failed: bool = False
    errors: list[ErrorRecord] = Field(default_factory=list)
    attempts: int = 0
    updated: datetime | None = None


class CaseRubrics(SpecModel):
    """The rubrics an experiment grades one case against, or why the case is skipped."""

    case_id: int
    case_name: str
    rubrics: list[StoredRubric] = Field(default_factory=list)
    skip_reason: str = ""
