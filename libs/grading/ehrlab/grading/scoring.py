"""Scores from a grader's per-criterion satisfaction (0–100).

A positive criterion earns `weight · satisfaction / 100`. A negative criterion (something the note
must NOT do) costs `−weight · (1 − satisfaction / 100)`: satisfaction is always "how fully the note
complies", so a note that fully avoids the forbidden thing loses nothing and one that does it loses
the whole weight. The overall score is the sum. (The system this replaces dropped the negative case
and scored every criterion as positive.)
"""

from __future__ import annotations

from collections.abc import Sequence

from ehrlab.grading.model import Criterion, CriterionGrade, Sense


def criterion_score(criterion: Criterion, satisfaction: float) -> float:
    if not 0 <= satisfaction <= 100:
        raise ValueError(f"satisfaction must be within 0..100 (got {satisfaction})")
    if criterion.sense is Sense.NEGATIVE:
        return -criterion.weight * (1 - satisfaction / 100)
    return criterion.weight * satisfaction / 100


def score_grades(criteria: Sequence[Criterion], grades: Sequence[CriterionGrade]) -> tuple[list[CriterionGrade], float]:
    """Per-criterion grades with their scores filled in, and the overall score.

    `grades` must hold exactly one grade per criterion, with ids 0..n-1 (any order).
    """
    by_id = {grade.id: grade for grade in grades}
    if len(grades) != len(criteria) or sorted(by_id) != list(range(len(criteria))):
        raise ValueError(f"expected one grade per criterion, ids 0..{len(criteria) - 1} "
                         f"(got ids {sorted(g.id for g in grades)})")
    scored = [by_id[i].model_copy(update={"score": criterion_score(c, by_id[i].satisfaction)})
              for i, c in enumerate(criteria)]
    return scored, sum(grade.score for grade in scored)
