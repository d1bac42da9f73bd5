"""The grading tables (schema `results`) and every query on them.

The result-store process hosts these tables and serves them over the GradingStore gRPC service;
nothing else reads them directly. Writes are idempotent under retry: loading the same case twice,
adding the same model or pair twice, and recording a note that is already stored change nothing.
A successful note or grade is final: a late duplicate attempt (a worker killed after writing, then
retried) gets the stored row back, so each note is stored once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ehrlab.core.db import Database
from ehrlab.core.errors import ConflictError, NotFoundError, SpecError
from ehrlab.core.hashing import hash_value
from ehrlab.grading.model import (
    MACHINE_AUTHOR,
    Case,
    CaseRubrics,
    CriterionGrade,
    ErrorRecord,
    Experiment,
    ExperimentDefinition,
    GradeKey,
    GradeResult,
    Model,
    ModelPair,
    ModelSpec,
    NoteKey,
    NoteResult,
    StoredCase,
    StoredRubric,
    Validation,
)

SCHEMA = "results"
AUTHORS_NEEDED = 2


def _rubric_digest(rubric: Any) -> str:
    return hash_value(rubric.model_dump(mode="json", include={"author", "validation", "validated_at", "criteria"}))


def _error_json(error: ErrorRecord) -> list[dict[str, Any]]:
    stamped = error if error.time else error.model_copy(update={"time": datetime.now(UTC)})
    return [stamped.model_dump(mode="json")]


class GradingStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> GradingStore:
        db = Database(url, schema=SCHEMA, application="ehrlab-grading").open()
        store = cls(db)
        if migrate:
            store.migrate()
        return store

    def migrate(self) -> list[str]:
        return self.db.migrate("ehrlab.grading", "migrations")

    def close(self) -> None:
        self.db.close()

    # ---- cases and rubrics -------------------------------------------------------------------------
    def put_cases(self, cases: Sequence[Case]) -> list[StoredCase]:
        """Stores cases (by name) and their rubrics, all or nothing; returns them as stored.

        A case already stored under the same name must have the same transcript and facts (results
        refer to it); its rubrics may grow (new rubrics are added, known ones kept).
        """

        def work(conn: psycopg.Connection[Any]) -> list[int]:
            ids = []
            for index, case in enumerate(cases):
                row = conn.execute(
                    "INSERT INTO grading_case (name, transcript, facts, source) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name "
                    "RETURNING id, transcript, facts", (case.name, case.transcript, Jsonb(case.facts), case.source),
                ).fetchone()
                if row["transcript"] != case.transcript or row["facts"] != case.facts:
                    raise ConflictError(f"cases[{index}]: case {case.name!r} is already stored with a different "
                                        "transcript or facts (give the new version a new name)")
                for rubric in case.rubrics:
                    conn.execute(
                        "INSERT INTO grading_rubric (case_id, author, validation, validated_at, criteria, digest) "
                        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (case_id, digest) DO NOTHING",
                        (row["id"], rubric.author, rubric.validation.value, rubric.validated_at,
                         Jsonb([c.model_dump(mode="json") for c in rubric.criteria]), _rubric_digest(rubric)))
                ids.append(row["id"])
            return ids

        return self.get_cases(self.db.run(work))

    def get_cases(self, ids: Sequence[int]) -> list[StoredCase]:
        """Cases by id, in the order asked, with all their rubrics; an unknown id is NotFoundError."""
        rows = {r["id"]: r for r in self.db.fetch_all("SELECT * FROM grading_case WHERE id = ANY(%s)", (list(ids),))}
        missing = [i for i in ids if i not in rows]
        if missing:
            raise NotFoundError(f"unknown case id(s): {', '.join(map(str, missing))}")
        rubrics: dict[int, list[StoredRubric]] = {}
        for r in self.db.fetch_all("SELECT * FROM grading_rubric WHERE case_id = ANY(%s) ORDER BY id", (list(ids),)):
            rubrics.setdefault(r["case_id"], []).append(_rubric(r))
        return [StoredCase(id=i, name=rows[i]["name"], transcript=rows[i]["transcript"], facts=rows[i]["facts"],
                           source=rows[i]["source"], created=rows[i]["created"], rubrics=rubrics.get(i, []))
                for i in ids]

    def case_id(self, name_or_id: str | int) -> int:
        row = self.db.fetch_one("SELECT id FROM grading_case WHERE name = %s OR id::text = %s",
                                (str(name_or_id), str(name_or_id)))
        if row is None:
            raise NotFoundError(f"unknown case {name_or_id!r}")
        return row["id"]

    def list_cases(self, *, limit: int = 1000, after_id: int = 0) -> list[dict[str, Any]]:
        """Case summaries (id, name, source, rubric counts), by id, one page at a time."""
        return self.db.fetch_all(
            "SELECT c.id, c.name, c.source, count(r.id) AS rubrics, "
            "count(r.id) FILTER (WHERE r.validation = 'accepted') AS accepted "
            "FROM grading_case c LEFT JOIN grading_rubric r ON r.case_id = c.id WHERE c.id > %s "
            "GROUP BY c.id ORDER BY c.id LIMIT %s", (after_id, limit))

    def eligible_cases(self) -> list[dict[str, Any]]:
        """Cases with accepted rubrics by at least two distinct human authors (the original's query)."""
        return self.db.fetch_all(
            "SELECT r.case_id, c.name, count(DISTINCT r.author) AS authors FROM grading_rubric r "
            "JOIN grading_case c ON c.id = r.case_id "
            "WHERE r.validation = 'accepted' AND r.author IS NOT NULL AND r.author <> %s "
            "GROUP BY r.case_id, c.name HAVING count(DISTINCT r.author) >= %s ORDER BY r.case_id",
            (MACHINE_AUTHOR, AUTHORS_NEEDED))

    # ---- models --------------------------------------------------------------------------------------
    def add_model(self, spec: ModelSpec) -> Model:
        """Adds a model (or returns the identical one already stored)."""
        values = spec.model_dump(mode="json")
        row = self.db.fetch_one(
            "INSERT INTO grading_model (vendor, model, base_url, credentials_ref, reasoning_model) "
            "VALUES (%(vendor)s, %(model)s, %(base_url)s, %(credentials_ref)s, %(reasoning_model)s) "
            "ON CONFLICT (vendor, model, base_url, credentials_ref, reasoning_model) "
            "DO UPDATE SET vendor = EXCLUDED.vendor RETURNING *", values)
        return _model(row)

    def list_models(self) -> list[Model]:
        return [_model(r) for r in self.db.fetch_all("SELECT * FROM grading_model ORDER BY vendor, model, id")]

    def get_model(self, model_id: int) -> Model:
        row = self.db.fetch_one("SELECT * FROM grading_model WHERE id = %s", (model_id,))
        if row is None:
            raise NotFoundError(f"unknown model id {model_id} (see `ehrlab grading models ls`)")
        return _model(row)

    # ---- experiments ----------------------------------------------------------------------------------
    def create_experiment(self, definition: ExperimentDefinition) -> Experiment:
        """Creates the experiment, or returns it when one with the same name and definition exists."""
        values = definition.model_dump()
        row = self.db.fetch_one(
            "INSERT INTO grading_experiment (name, code_version, note_replications, grade_replications, description) "
            "VALUES (%(name)s, %(code_version)s, %(note_replications)s, %(grade_replications)s, %(description)s) "
            "ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING *", values)
        stored = _experiment(row)
        if stored.model_dump(include=set(values)) != values:
            raise ConflictError(f"experiment {definition.name!r} already exists with a different definition "
                                f"(code version {stored.code_version!r}, {stored.note_replications} note and "
                                f"{stored.grade_replications} grade replications)")
        return stored

    def get_experiment(self, name_or_id: str | int) -> Experiment:
        row = self.db.fetch_one("SELECT * FROM grading_experiment WHERE name = %s OR id::text = %s",
                                (str(name_or_id), str(name_or_id)))
        if row is None:
            raise NotFoundError(f"unknown grading experiment {name_or_id!r}")
        return _experiment(row)

    def list_experiments(self) -> list[Experiment]:
        return [_experiment(r) for r in self.db.fetch_all("SELECT * FROM grading_experiment ORDER BY id")]

    def add_cases(self, experiment_id: int, case_ids: Sequence[int]) -> int:
        """Adds cases to an experiment (all must exist); returns how many were new to it."""
        self.get_experiment(experiment_id)
        self.get_cases(list(dict.fromkeys(case_ids)))  # NotFoundError names every unknown id; nothing written

        def work(conn: psycopg.Connection[Any]) -> int:
            cursor = conn.cursor()
            cursor.executemany("INSERT INTO grading_experiment_case (experiment_id, case_id) VALUES (%s, %s) "
                               "ON CONFLICT DO NOTHING", [(experiment_id, c) for c in dict.fromkeys(case_ids)],
                               returning=False)
            return cursor.rowcount

        return self.db.run(work)

    def experiment_case_ids(self, experiment_id: int) -> list[int]:
        return [r["case_id"] for r in self.db.fetch_all(
            "SELECT case_id FROM grading_experiment_case WHERE experiment_id = %s ORDER BY case_id", (experiment_id,))]

    def add_pair(self, experiment_id: int, generator_id: int, grader_id: int, reasoning: bool = False) -> ModelPair:
        self.get_experiment(experiment_id)
        for field, model_id in (("generator", generator_id), ("grader", grader_id)):
            try:
                self.get_model(model_id)
            except NotFoundError as exc:
                raise SpecError(str(exc), path=field) from None
        row = self.db.fetch_one(
            "INSERT INTO grading_experiment_model (experiment_id, generator_model_id, grader_model_id, "
            "grader_is_reasoning) VALUES (%s, %s, %s, %s) ON CONFLICT (experiment_id, generator_model_id, "
            "grader_model_id, grader_is_reasoning) DO UPDATE SET experiment_id = EXCLUDED.experiment_id RETURNING id",
            (experiment_id, generator_id, grader_id, reasoning))
        return next(p for p in self.pairs(experiment_id) if p.id == row["id"])

    def pairs(self, experiment_id: int) -> list[ModelPair]:
        rows = self.db.fetch_all("SELECT * FROM grading_experiment_model WHERE experiment_id = %s ORDER BY id",
                                 (experiment_id,))
        models = {m.id: m for m in self.list_models()}
        return [ModelPair(id=r["id"], experiment_id=experiment_id, generator=models[r["generator_model_id"]],
                          grader=models[r["grader_model_id"]], grader_is_reasoning=r["grader_is_reasoning"])
                for r in rows]

    def case_rubrics(self, experiment_id: int) -> list[CaseRubrics]:
        """For each case of the experiment: the rubrics to grade against, or why there are none.

        Per case, each human author's latest accepted rubric; of those, the most recent ones by up
        to two distinct authors. Fewer than two human authors: the case is not eligible.
        """
        cases = self.db.fetch_all(
            "SELECT c.id, c.name FROM grading_experiment_case e JOIN grading_case c ON c.id = e.case_id "
            "WHERE e.experiment_id = %s ORDER BY c.id", (experiment_id,))
        latest = self.db.fetch_all(
            "SELECT DISTINCT ON (r.case_id, r.author) r.* FROM grading_rubric r "
            "JOIN grading_experiment_case e ON e.case_id = r.case_id AND e.experiment_id = %s "
            "WHERE r.validation = 'accepted' AND r.author IS NOT NULL AND r.author <> %s "
            "ORDER BY r.case_id, r.author, r.validated_at DESC, r.id DESC", (experiment_id, MACHINE_AUTHOR))
        per_case: dict[int, list[StoredRubric]] = {}
        for row in latest:
            per_case.setdefault(row["case_id"], []).append(_rubric(row))
        chosen = []
        for case in cases:
            rubrics = sorted(per_case.get(case["id"], []), key=lambda r: (r.validated_at, r.id), reverse=True)
            if len(rubrics) < AUTHORS_NEEDED:
                reason = (f"no eligible rubric: {len(rubrics)} human author(s) with an accepted rubric, "
                          f"{AUTHORS_NEEDED} needed")
                chosen.append(CaseRubrics(case_id=case["id"], case_name=case["name"], skip_reason=reason))
            else:
                chosen.append(CaseRubrics(case_id=case["id"], case_name=case["name"],
                                          rubrics=rubrics[:AUTHORS_NEEDED]))
        return chosen

    def record_skips(self, experiment_id: int, reasons: dict[int, str]) -> None:
        """Sets why cases are left out of a run: those in `reasons` are, the experiment's others are not."""

        def work(conn: psycopg.Connection[Any]) -> None:
            conn.execute("UPDATE grading_experiment_case SET skip_reason = '', skipped_at = NULL "
                         "WHERE experiment_id = %s AND skip_reason <> '' AND NOT case_id = ANY(%s)",
                         (experiment_id, list(reasons)))
            conn.cursor().executemany(
                "UPDATE grading_experiment_case SET skip_reason = %s, skipped_at = now() "
                "WHERE experiment_id = %s AND case_id = %s AND skip_reason <> %s",
                [(reason, experiment_id, case_id, reason) for case_id, reason in reasons.items()])

        self.db.run(work)

    def skipped_cases(self, experiment_id: int) -> list[dict[str, Any]]:
        return self.db.fetch_all(
            "SELECT e.case_id, c.name, e.skip_reason, e.skipped_at FROM grading_experiment_case e "
            "JOIN grading_case c ON c.id = e.case_id WHERE e.experiment_id = %s AND e.skip_reason <> '' "
            "ORDER BY e.case_id", (experiment_id,))

    # ---- notes and grades --------------------------------------------------------------------------------
    def get_note(self, key: NoteKey) -> NoteResult | None:
        row = self.db.fetch_one(
            "SELECT * FROM grading_result WHERE experiment_id = %(experiment_id)s AND case_id = %(case_id)s "
            "AND pair_id = %(pair_id)s AND replication = %(replication)s", key.model_dump())
        return _note(row) if row else None

    def record_note(self, key: NoteKey, note: dict[str, Any], attempt: int) -> NoteResult:
        """Stores a generated note unless one is stored already; returns the stored note."""
        return self._record_note(key, note=Jsonb(note), failed=False, errors=Jsonb([]), attempt=attempt,
                                 update="note = EXCLUDED.note, failed = false")

    def record_note_failure(self, key: NoteKey, error: ErrorRecord) -> NoteResult:
        """Marks the note failed and appends the error, unless a successful note is already stored."""
        return self._record_note(key, note=None, failed=True, errors=Jsonb(_error_json(error)), attempt=error.attempt,
                                 update="errors = grading_result.errors || EXCLUDED.errors")

    def _record_note(self, key: NoteKey, *, update: str, **values: Any) -> NoteResult:
        params = {**key.model_dump(), **values}
        row = self._write(
            "INSERT INTO grading_result (experiment_id, case_id, pair_id, replication, note, failed, errors, attempts) "
            "VALUES (%(experiment_id)s, %(case_id)s, %(pair_id)s, %(replication)s, %(note)s, %(failed)s, %(errors)s, "
            "%(attempt)s) ON CONFLICT (experiment_id, case_id, pair_id, replication) DO UPDATE SET " + update +
            ", attempts = GREATEST(grading_result.attempts, EXCLUDED.attempts), updated = now() "
            "WHERE grading_result.failed RETURNING *", params,
            what=f"note of case {key.case_id}, pair {key.pair_id} in experiment {key.experiment_id}")
        return _note(row) if row else self.get_note(key)  # type: ignore[return-value]

    def get_grade(self, key: GradeKey) -> GradeResult | None:
        row = self.db.fetch_one(
            "SELECT * FROM grading_score WHERE result_id = %(result_id)s AND rubric_id = %(rubric_id)s "
            "AND replication = %(replication)s", key.model_dump())
        return _grade(row) if row else None

    def record_grade(self, key: GradeKey, grades: Sequence[CriterionGrade], overall: float,
                     attempt: int) -> GradeResult:
        """Stores a grade unless one is stored already; returns the stored grade."""
        return self._record_grade(key, criteria=Jsonb([g.model_dump(mode="json") for g in grades]), overall=overall,
                                  failed=False, errors=Jsonb([]), attempt=attempt,
                                  update="criteria = EXCLUDED.criteria, overall = EXCLUDED.overall, failed = false")

    def record_grade_failure(self, key: GradeKey, error: ErrorRecord) -> GradeResult:
        return self._record_grade(key, criteria=Jsonb([]), overall=None, failed=True,
                                  errors=Jsonb(_error_json(error)), attempt=error.attempt,
                                  update="errors = grading_score.errors || EXCLUDED.errors")

    def _record_grade(self, key: GradeKey, *, update: str, **values: Any) -> GradeResult:
        params = {**key.model_dump(), **values}
        row = self._write(
            "INSERT INTO grading_score (result_id, rubric_id, replication, experiment_id, criteria, overall, failed, "
            "errors, attempts) SELECT %(result_id)s, %(rubric_id)s, %(replication)s, r.experiment_id, %(criteria)s, "
            "%(overall)s, %(failed)s, %(errors)s, %(attempt)s FROM grading_result r WHERE r.id = %(result_id)s "
            "ON CONFLICT (result_id, rubric_id, replication) DO UPDATE SET " + update +
            ", attempts = GREATEST(grading_score.attempts, EXCLUDED.attempts), updated = now() "
            "WHERE grading_score.failed RETURNING *", params,
            what=f"grade of note {key.result_id} against rubric {key.rubric_id}")
        if row is None:
            stored = self.get_grade(key)
            if stored is None:
                raise NotFoundError(f"unknown note (result id {key.result_id})")
            return stored
        return _grade(row)

    def _write(self, query: str, params: dict[str, Any], *, what: str) -> dict[str, Any] | None:
        try:
            return self.db.fetch_one(query, params)
        except psycopg.errors.ForeignKeyViolation as exc:
            detail = (exc.diag.message_detail or "").replace("\"", "")
            raise NotFoundError(f"{what}: unknown reference ({detail})") from None

    # ---- progress and analysis -------------------------------------------------------------------------
    def progress(self, experiment_id: int) -> dict[str, Any]:
        """Notes and grades: total / successful / failed (the original's monitoring query), and expected."""
        experiment = self.get_experiment(experiment_id)
        notes = self.db.fetch_one(
            "SELECT count(*) AS total, count(*) FILTER (WHERE NOT failed) AS successful, "
            "count(*) FILTER (WHERE failed) AS failed, max(updated) AS last_update "
            "FROM grading_result WHERE experiment_id = %s", (experiment_id,))
        grades = self.db.fetch_one(
            "SELECT count(*) AS total, count(*) FILTER (WHERE NOT failed) AS successful, "
            "count(*) FILTER (WHERE failed) AS failed, max(updated) AS last_update "
            "FROM grading_score WHERE experiment_id = %s", (experiment_id,))
        plan = self.case_rubrics(experiment_id)
        pairs = len(self.pairs(experiment_id))
        eligible = [c for c in plan if not c.skip_reason]
        expected_notes = len(eligible) * pairs * experiment.note_replications
        expected_grades = sum(len(c.rubrics) for c in eligible) * pairs * experiment.note_replications \
            * experiment.grade_replications
        return {"notes": notes, "grades": grades, "expected_notes": expected_notes,
                "expected_grades": expected_grades, "cases": len(plan), "skipped_cases": len(plan) - len(eligible)}

    def recent(self, experiment_id: int, limit: int = 10) -> list[dict[str, Any]]:
        """The latest notes and grades written, newest first (the original's recent-activity query)."""
        return self.db.fetch_all(
            "(SELECT 'note' AS what, r.id, r.case_id, r.pair_id, r.replication, NULL::bigint AS rubric_id, "
            "r.failed, r.updated FROM grading_result r WHERE r.experiment_id = %(e)s "
            "ORDER BY r.updated DESC LIMIT %(n)s) "
            "UNION ALL (SELECT 'grade', s.id, r.case_id, r.pair_id, s.replication, s.rubric_id, s.failed, s.updated "
            "FROM grading_score s JOIN grading_result r ON r.id = s.result_id WHERE s.experiment_id = %(e)s "
            "ORDER BY s.updated DESC LIMIT %(n)s) ORDER BY updated DESC LIMIT %(n)s", {"e": experiment_id, "n": limit})

    def notes(self, experiment_id: int, *, after_id: int = 0, limit: int = 10_000) -> list[NoteResult]:
        return [_note(r) for r in self.db.fetch_all(
            "SELECT * FROM grading_result WHERE experiment_id = %s AND id > %s ORDER BY id LIMIT %s",
            (experiment_id, after_id, limit))]

    def grades(self, experiment_id: int, *, after_id: int = 0, limit: int = 10_000) -> list[GradeResult]:
        return [_grade(r) for r in self.db.fetch_all(
            "SELECT * FROM grading_score WHERE experiment_id = %s AND id > %s ORDER BY id LIMIT %s",
            (experiment_id, after_id, limit))]


def _rubric(row: dict[str, Any]) -> StoredRubric:
    return StoredRubric(id=row["id"], case_id=row["case_id"], author=row["author"],
                        validation=Validation(row["validation"]), validated_at=row["validated_at"],
                        criteria=row["criteria"], created=row["created"])


def _model(row: dict[str, Any]) -> Model:
    return Model(**{k: row[k] for k in Model.model_fields})


def _experiment(row: dict[str, Any]) -> Experiment:
    return Experiment(**{k: row[k] for k in Experiment.model_fields})


def _note(row: dict[str, Any]) -> NoteResult:
    return NoteResult(**{k: row[k] for k in NoteResult.model_fields})


def _grade(row: dict[str, Any]) -> GradeResult:
    return GradeResult(**{("grades" if k == "criteria" else k): v for k, v in row.items()
                          if (k if k != "criteria" else "grades") in GradeResult.model_fields})
