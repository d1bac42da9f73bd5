"""Synthetic cases from EHR patients: a visit transcript, the facts its note must hold, and rubrics.

For each patient, the visit is about one of their diagnoses (ICD-9-CM): the patient describes the
complaint and its duration, denies a symptom the doctor asks about, confirms a medication for a
chronic condition; the doctor examines, names the assessment and the plan; there is small talk a
note should leave out. The facts are those statements by SOAP section. Two human-like authors
write rubrics from the facts (different phrasing, weights and emphasis), each with a negative
criterion (stating the denied symptom; naming a medication never discussed), and both accept them.
A chosen fraction of cases gets only one accepted human rubric (with a refused or machine-written
one beside it), so eligibility has something to reject. Everything is drawn from one seed.

Patients come from a MEDS dataset (`patients_from_meds`, through `ehrlab.cohort.meds`) or, without
one, from a small cohort simulated for the purpose (`simulated_patients`, ehrlab.cohort.simulator).
The visit is about the patient's latest diagnosis that CONDITIONS describes (condition-specific
content), else their latest diagnosis of any kind (a follow-up visit described with its official
ICD-9-CM title).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ehrlab.grading.model import Case, Criterion, Rubric, Sense, Validation


@dataclass(frozen=True)
class Patient:
    """The little a visit needs from an EHR patient."""

    subject_id: int
    sex: str | None               # "F" | "M" | None (unknown)
    age: int
    diagnoses: tuple[str, ...]    # ICD-9-CM codes without the dot, most recent first


@dataclass(frozen=True)
class Condition:
    name: str
    complaint: str                # the patient's words
    symptom: str                  # the fact, as a note would state it
    finding: str                  # objective finding; {v} is drawn from `values`
    values: tuple[str, ...]
    plan: tuple[str, ...]
    medication: str
    denied: str                   # a symptom the patient denies


CONDITIONS: dict[str, Condition] = {
    "401": Condition("hypertension", "my blood pressure readings at home have been high", "high home blood "
                     "pressure readings", "blood pressure {v} mmHg", ("152/96", "160/98", "148/94"),
                     ("increase lisinopril to 20 mg daily", "recheck blood pressure in two weeks"), "lisinopril",
                     "headaches"),
    "250": Condition("type 2 diabetes", "my sugars have been running high", "elevated home glucose readings",
                     "HbA1c {v} percent", ("8.4", "9.1", "7.9"), ("start metformin 500 mg twice daily",
                     "refer to diabetes education"), "metformin", "blurred vision"),
    "428": Condition("congestive heart failure", "I get short of breath and my ankles are swollen",
                     "shortness of breath and ankle swelling", "bilateral pitting edema, weight up {v} kg",
                     ("2", "3", "4"), ("increase furosemide to 40 mg daily", "daily weights"), "furosemide",
                     "chest pain"),
    "486": Condition("community-acquired pneumonia", "I've had a cough with fever", "productive cough and fever",
                     "temperature {v} C with crackles at the right base", ("38.4", "38.9", "39.1"),
                     ("amoxicillin for seven days", "chest X-ray"), "amoxicillin", "blood in the sputum"),
    "599": Condition("urinary tract infection", "it burns when I pass urine", "dysuria and urinary frequency",
                     "urine dipstick positive for {v}", ("nitrites", "leukocytes and nitrites"),
                     ("nitrofurantoin for five days", "urine culture"), "nitrofurantoin", "flank pain"),
    "493": Condition("asthma exacerbation", "my wheezing is worse at night", "nocturnal wheezing",
                     "peak flow {v} percent of predicted", ("60", "65", "70"),
                     ("start inhaled budesonide twice daily", "asthma action plan"), "albuterol", "fever"),
    "427": Condition("atrial fibrillation", "my heart keeps racing", "palpitations", "irregularly irregular "
                     "pulse at {v} beats per minute", ("112", "124", "98"), ("start apixaban 5 mg twice daily",
                     "echocardiogram"), "metoprolol", "fainting"),
    "272": Condition("hyperlipidemia", "I came to go over my cholesterol results", "follow-up of cholesterol "
                     "results", "LDL cholesterol {v} mg/dL", ("172", "188", "165"),
                     ("start atorvastatin 20 mg daily", "repeat lipid panel in three months"), "atorvastatin",
                     "muscle aches"),
    "311": Condition("depression", "I've been feeling down and not sleeping", "low mood and poor sleep",
                     "PHQ-9 score {v}", ("14", "16", "12"), ("start sertraline 50 mg daily",
                     "refer to counseling"), "sertraline", "thoughts of self-harm"),
    "724": Condition("low back pain", "my lower back has been hurting", "low back pain", "paraspinal tenderness, "
                     "straight leg raise {v}", ("negative", "negative bilaterally"), ("ibuprofen 400 mg as needed",
                     "physical therapy referral"), "ibuprofen", "leg numbness"),
    "346": Condition("migraine", "I keep getting bad headaches with light sensitivity", "recurrent headaches "
                     "with photophobia", "normal neurological exam, {v} headache days a month", ("6", "8", "10"),
                     ("sumatriptan 50 mg at onset", "headache diary"), "sumatriptan", "weakness"),
    "530": Condition("gastroesophageal reflux", "I get heartburn after meals", "postprandial heartburn",
                     "epigastric tenderness {v}", ("mild", "on deep palpation"), ("omeprazole 20 mg daily",
                     "avoid late meals"), "omeprazole", "trouble swallowing"),
}
CHRONIC = ("401", "250", "272", "428", "493", "427")
DURATIONS = ("three days", "a week", "two weeks", "a month")
SMALL_TALK = ("The traffic was terrible on the way in.", "My grandson just started school.",
              "We finally got some rain this week.")
OTHER_MEDICATIONS = ("warfarin", "prednisone", "digoxin", "insulin glargine", "hydrochlorothiazide")
AUTHORS = ("dr_rivera", "dr_chen", "dr_okafor", "dr_novak")


def icd9_title(code: str) -> str:
    """The official ICD-9-CM title of a code, or the code itself."""
    from ehrlab.cohort import icd9

    return icd9.describe(code) or f"ICD-9-CM {code}"


def condition_for(code: str) -> Condition:
    known = CONDITIONS.get(code[:3])
    if known:
        return known
    title = icd9_title(code).rstrip(".")
    return Condition(title.lower(), f"I'm here for my follow-up about {title.lower()}", f"follow-up of {title.lower()}",
                     "vital signs {v}", ("stable", "within normal limits"), (f"continue current management of "
                     f"{title.lower()}", "follow up in three months"), "their usual medication", "new symptoms")


def simulated_patients(count: int, seed: int) -> list[Patient]:
    """`count` patients with diagnoses from the cohort simulator (ehrlab.cohort.simulator), seeded."""
    from ehrlab.cohort.simulator import SimulationConfig, simulate

    with tempfile.TemporaryDirectory(prefix="grading-cohort-") as folder:
        # a few simulated people have no diagnosis in their window: simulate a margin (and at least
        # 200 people: the simulator fails on a cohort too small to hold one pregnancy)
        simulate(SimulationConfig(n_patients=max(count + count // 4 + 5, 200), seed=seed), folder)
        return patients_from_meds(folder, limit=count)


def patients_from_meds(root: str | Path, *, limit: int | None = None) -> list[Patient]:
    """The patients of a MEDS dataset with at least one ICD-9-CM diagnosis (age at their last visit)."""
    from ehrlab.cohort import icd9, meds

    patients = []
    for person in meds.read_patients(root):
        diagnoses: dict[str, None] = {}
        for visit in reversed(person.visits):
            for code in visit.codes:
                key = icd9.normalize(code)
                if key:
                    diagnoses.setdefault(key)
        if diagnoses:
            age = person.visits[-1].age
            patients.append(Patient(subject_id=person.subject_id, sex=person.sex, diagnoses=tuple(diagnoses),
                                    age=int(age) if age == age else 50))  # NaN age: birth unknown
        if limit is not None and len(patients) >= limit:
            break
    return patients


def case_from_patient(patient: Patient, rng: random.Random, *, eligible: bool = True, name: str = "") -> Case:
    known = [c for c in patient.diagnoses if c[:3] in CONDITIONS]
    main = known[0] if known else patient.diagnoses[0]
    problem = condition_for(main)
    chronic_codes = [c for c in patient.diagnoses if c[:3] in CHRONIC and c[:3] != main[:3]]
    chronic = CONDITIONS[chronic_codes[0][:3]] if chronic_codes else None
    duration = rng.choice(DURATIONS)
    finding = problem.finding.format(v=rng.choice(problem.values))
    who = {"F": "woman", "M": "man"}.get(patient.sex or "", "patient")

    lines = [("DOCTOR", "Good morning. What brings you in today?"),
             ("PATIENT", f"Well, {problem.complaint}."),
             ("DOCTOR", "How long has this been going on?"),
             ("PATIENT", f"About {duration}."),
             ("PATIENT", rng.choice(SMALL_TALK)),
             ("DOCTOR", f"Have you had any {problem.denied}?"),
             ("PATIENT", f"No, no {problem.denied}.")]
    if chronic:
        lines += [("DOCTOR", f"Are you still taking your {chronic.medication} for your {chronic.name}?"),
                  ("PATIENT", "Yes, every day.")]
    lines += [("DOCTOR", f"Let me examine you. I find {finding}."),
              ("DOCTOR", f"I think this is {problem.name}. We will {problem.plan[0]}, and {problem.plan[1]}."),
              ("PATIENT", "Okay, thank you, doctor.")]
    transcript = "\n".join(f"{speaker}: {text}" for speaker, text in lines)

    subjective = [f"{patient.age}-year-old {who} with {problem.symptom} for {duration}",
                  f"Denies {problem.denied}"]
    assessment = [problem.name.capitalize()]
    if chronic:
        subjective.append(f"Takes {chronic.medication} for {chronic.name}")
        assessment.append(f"History of {chronic.name}")
    facts = {"subjective": subjective, "objective": [finding.capitalize()], "assessment": assessment,
             "plan": [p.capitalize() for p in problem.plan]}

    authors = rng.sample(AUTHORS, 2)
    when = datetime(2026, 1, 5, 9, tzinfo=UTC) + timedelta(days=rng.randint(0, 200), minutes=rng.randint(0, 600))
    unused_medication = rng.choice([m for m in OTHER_MEDICATIONS if m not in transcript])
    rubrics = [
        _rubric(authors[0], facts, rng, verb="Documents", when=when,
                negative=f"States that the patient reports {problem.denied}"),
        _rubric(authors[1], facts, rng, verb="The note includes", when=when + timedelta(hours=rng.randint(1, 48)),
                negative=f"Lists {unused_medication} as a current medication",
                validation=Validation.ACCEPTED if eligible else rng.choice([Validation.REFUSED,
                                                                           Validation.NOT_EVALUATED])),
        # an earlier version by the first author, superseded by the one above; and a machine-written one
        _rubric(authors[0], facts, rng, verb="Mentions", when=when - timedelta(days=30),
                negative=f"States that the patient reports {problem.denied}"),
        _rubric("llm", facts, rng, verb="Captures", when=when, negative="Invents a diagnosis not discussed"),
    ]
    return Case(name=name or f"synthetic-{patient.subject_id}", transcript=transcript, facts=facts, rubrics=rubrics,
                source=f"synthetic patient {patient.subject_id}; diagnoses {', '.join(patient.diagnoses)}")


def _rubric(author: str, facts: dict[str, list[str]], rng: random.Random, *, verb: str, when: datetime,
            negative: str, validation: Validation = Validation.ACCEPTED) -> Rubric:
    weights = {"subjective": 2, "objective": 2, "assessment": 3, "plan": 3}
    criteria = []
    for section, statements in facts.items():
        for statement in statements:
            if rng.random() < 0.85:  # each author leaves a few facts out
                weight = max(1, weights[section] + rng.choice((-1, 0, 0, 1)))
                criteria.append(Criterion(criterion=f"{verb} {statement[0].lower()}{statement[1:]}", weight=weight,
                                          sense=Sense.POSITIVE))
    criteria.append(Criterion(criterion=negative, weight=rng.choice((2, 3)), sense=Sense.NEGATIVE))
    stamp = None if validation is Validation.NOT_EVALUATED else when
    return Rubric(author=author, validation=validation, validated_at=stamp, criteria=criteria)


def synthetic_cases(patients: Iterable[Patient], seed: int, *, ineligible_fraction: float = 0.0,
                    prefix: str = "synthetic") -> list[Case]:
    """One case per patient (patients without diagnoses are left out)."""
    if not 0 <= ineligible_fraction <= 1:
        raise ValueError("ineligible_fraction must be within 0..1")
    rng = random.Random(seed)
    return [case_from_patient(p, rng, eligible=rng.random() >= ineligible_fraction, name=f"{prefix}-{p.subject_id}")
            for p in patients if p.diagnoses]


def generated_cases(count: int, seed: int, *, ineligible_fraction: float = 0.0,
                    patients: Sequence[Patient] | None = None, prefix: str = "synthetic") -> list[Case]:
    """`count` cases from the given patients, or from simulated ones when none are given."""
    pool = list(patients) if patients is not None else simulated_patients(count, seed)
    return synthetic_cases(pool[:count], seed, ineligible_fraction=ineligible_fraction, prefix=prefix)
