"""The cohort simulator: a seeded generative model of patients, visits and ICD-9-CM diagnoses, as MEDS.

Per patient, in this order (docs/cohort.md describes the model; `clinical` holds its numbers):
1. Demographics: sex, age at the end of the window from a population pyramid, hence the birth date;
   the span the patient is observed (from the window start or birth; some join late or leave early).
2. Latent factor scores z (cardiometabolic, respiratory, mental, musculoskeletal, frailty), N(0, 1).
3. Pregnancy episodes for women 15-49 (age-specific fertility): prenatal visits, delivery or
   miscarriage, postpartum visit, pregnancy complications (gestational diabetes raises later type 2
   diabetes risk).
4. Chronic conditions in dependency order: onset ages drawn exactly from age-dependent hazards scaled
   by sex, the latent factor and, after a parent condition starts, the parents' hazard ratios
   (hypertension -> heart failure, diabetes -> kidney disease, eczema -> asthma, …). Each patient keeps
   one code variant per condition for life.
5. Death: Gompertz hazard scaled by frailty and the patient's conditions; it ends the record.
6. Visits: routine visits (Poisson, rate by age, sex, utilisation and conditions), a diagnosis visit
   at each condition onset inside the observed span, well-child visits, the birth stay, pregnancy visits.
7. Codes: a condition's onset codes at its diagnosis visit and its codes at later visits (probability
   `coding`); acute problems (common syndromes with companion codes, plus a long tail over all of
   ICD-9-CM, by age band and sex), sometimes recorded again at the next visit; episode codes.
   Every code is checked against `icd9.RULES` at the visit's age and the patient's sex: an impossible
   code is never written (the count dropped is reported; the model is built so that it stays tiny).

Randomness comes from numpy's PCG64 seeded by (seed, shard index), so a dataset is byte-identical for
the same seed and shard size however many worker processes write it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ehrlab.cohort import clinical, icd9
from ehrlab.cohort.meds import BIRTH, DEATH, SEX_CODES, MedsWriter, ShardStats, write_shard_file

DAYS_PER_YEAR = 365.25
US_PER_DAY = 86_400 * 1_000_000
EPOCH_1900 = -25_567                     # 1900-01-01 in days since 1970-01-01
INDEX_DATE = "2020-01-01"                # the causal studies' index date: the default window covers it
# Age at the end of the window: (lowest, highest, share of patients).
AGE_PYRAMID = ((0, 5, 0.06), (5, 18, 0.16), (18, 30, 0.16), (30, 45, 0.19), (45, 65, 0.26), (65, 80, 0.12),
               (80, 100, 0.05))
FEMALE_SHARE = 0.51

# Visit kinds and event priorities (the order of codes within a visit).
ROUTINE, ONSET, WELL_CHILD, BIRTH_STAY, PRENATAL, DELIVERY, POSTPARTUM, MISCARRIAGE = range(8)
ACUTE_RATE = {ROUTINE: clinical.ACUTE_PER_VISIT, ONSET: 0.3, WELL_CHILD: 0.25, PRENATAL: 0.1, DELIVERY: 0.05,
              POSTPARTUM: 0.1, BIRTH_STAY: 0.0, MISCARRIAGE: 0.0}
P_DEMOGRAPHIC, P_EPISODE, P_CHRONIC, P_ACUTE, P_DEATH = range(5)
_AGES = np.arange(0.0, 120.25, 0.25)     # the grid on which cumulative hazards are tabulated
_SEX = {"F": icd9.FEMALE, "M": icd9.MALE}


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. The window runs from 1 January of start_year to 1 January of end_year + 1."""

    n_patients: int
    seed: int = 0
    start_year: int = 2010
    end_year: int = 2023
    shard_size: int = 50_000
    first_subject_id: int = 1
    late_entry: float = 0.3      # share of patients who join the record at a random time in the window
    early_exit: float = 0.1      # share who leave it at a random time (moving away, changing provider)

    def __post_init__(self) -> None:
        if self.n_patients < 1:
            raise ValueError("n_patients must be at least 1")
        if self.shard_size < 1 or self.shard_size >= 1 << 27:
            raise ValueError("shard_size must be between 1 and 2**27 - 1")
        if not 1900 < self.start_year <= self.end_year < 2200:
            raise ValueError("need 1900 < start_year <= end_year < 2200")
        if not (0 <= self.late_entry <= 1 and 0 <= self.early_exit <= 1):
            raise ValueError("late_entry and early_exit are shares between 0 and 1")

    @property
    def shards(self) -> int:
        return -(-self.n_patients // self.shard_size)


# -- the compiled model: vocabulary, hazards, problem distributions (built once per process) ---------------

@dataclass(frozen=True)
class _CodeSets:
    """Weighted code sets in CSR form: set i has codes[start[i]:start[i + 1]]."""

    start: np.ndarray
    codes: np.ndarray
    cumulative: np.ndarray   # per owner: cumulative weights over its sets (for sampling one)
    first: np.ndarray        # per owner: index of its first set


@dataclass(frozen=True)
class _Model:
    vocabulary: pa.Array     # code index -> MEDS code
    index: dict[str, int]    # dotted ICD-9 code or MEDS special code -> code index
    min_age: np.ndarray
    max_age: np.ndarray
    sex_only: np.ndarray
    hazard: np.ndarray       # (conditions, ages) cumulative hazard at _AGES
    variants: _CodeSets
    onsets: _CodeSets
    problem_start: np.ndarray
    problem_codes: np.ndarray
    problem_companion: np.ndarray
    group_cdf: np.ndarray    # (groups * items) cumulative distribution, + group number (see _acute)
    n_items: int


def _code_sets(owners: list[tuple[tuple[str, float], ...]], index: dict[str, int]) -> _CodeSets:
    start, codes, cumulative, first = [0], [], [], []
    for sets in owners:
        first.append(len(start) - 1)
        weights = np.array([w for _, w in sets], dtype=np.float64)
        cumulative.append(np.cumsum(weights) / weights.sum())
        for text, _ in sets:
            codes.extend(index[icd9.dotted(icd9.normalize(c) or c)] for c in text.split("+"))
            start.append(len(codes))
    first.append(len(start) - 1)
    return _CodeSets(np.array(start), np.array(codes, dtype=np.int32),
                     np.concatenate(cumulative) if cumulative else np.zeros(0), np.array(first))


def _band(age: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(clinical.AGE_BANDS[1:-1]), age, side="right")


@cache
def _model() -> _Model:
    table = icd9.code_table()
    specials = [BIRTH, DEATH, SEX_CODES["F"], SEX_CODES["M"]]
    vocabulary = pa.array([icd9.MEDS_PREFIX + c for c in table.code.tolist()] + specials, pa.string())
    index = {code: i for i, code in enumerate(table.code.tolist())}
    index.update({code: len(table) + i for i, code in enumerate(specials)})
    pad = np.zeros(len(specials))
    min_age = np.concatenate([table.min_age, pad])
    max_age = np.concatenate([table.max_age, pad + np.inf])
    sex_only = np.concatenate([table.sex, pad.astype(np.int8)])

    conditions = clinical.CONDITIONS
    hazard = np.zeros((len(conditions), len(_AGES)))
    for i, c in enumerate(conditions):
        rate = c.rate * np.exp(c.slope * (_AGES - c.ref_age))
        rate[(c.min_age > _AGES) | (c.max_age <= _AGES)] = 0.0
        hazard[i, 1:] = np.cumsum(np.minimum(rate, 2.0)[:-1] * (_AGES[1] - _AGES[0]))
    variants = _code_sets([c.variants for c in conditions], index)
    onsets = _code_sets([c.onset or c.variants for c in conditions], index)

    # Acute items: the listed problems, then every tail code as a single-code item.
    problems = clinical.PROBLEMS
    problem_codes = [[index[c] for c in p.codes] for p in problems]
    used = {i for codes in problem_codes for i in codes}
    used |= {int(i) for i in variants.codes} | {int(i) for i in onsets.codes}
    tail = np.array([i for i in range(len(table)) if i not in used and clinical.TAIL_CHAPTERS[table.chapter[i]] > 0])
    order = np.random.default_rng(clinical.TAIL_ORDER_SEED).permutation(len(tail))
    tail_weight = np.empty(len(tail))
    chapters = table.chapter[tail]
    for chapter, share in clinical.TAIL_CHAPTERS.items():
        members = np.flatnonzero(chapters == chapter)
        if len(members) == 0 or share == 0:
            continue
        rank = np.argsort(np.argsort(order[members]))
        zipf = 1.0 / (rank + 1.0) ** clinical.TAIL_ZIPF
        unspecified = np.char.find(np.char.lower(table.description[tail[members]].astype(str)), "unspecified") >= 0
        zipf *= np.where(unspecified, 3.0, 1.0)
        tail_weight[members] = share * zipf / zipf.sum()
    tail_weight /= tail_weight.sum()

    bands = clinical.AGE_BANDS
    groups = []
    for b in range(len(bands) - 1):
        low, high = bands[b], bands[b + 1]
        for sex in (icd9.FEMALE, icd9.MALE):
            # an item is possible in a group only if every code is valid over the whole age band
            def valid(codes: np.ndarray, low: float = low, high: float = high, sex: int = sex) -> np.ndarray:
                return (min_age[codes] <= low) & (max_age[codes] >= min(high, 120.0)) & (
                    (sex_only[codes] == 0) | (sex_only[codes] == sex))

            width = min(high, 100.0) - low
            fitting = np.array([
                max(0.0, min(p.max_age, high, 100.0) - max(p.min_age, low)) / width
                * (p.sex is None or _SEX[p.sex] == sex) * bool(valid(np.array(codes)).all())
                for p, codes in zip(problems, problem_codes, strict=True)])
            weights = np.array([p.weight for p in problems]) * fitting
            profile = np.array([clinical.TAIL_AGE_PROFILE.get(ch, (1.0,) * 6)[b] for ch in chapters])
            tails = tail_weight * profile * valid(tail)
            mix = np.concatenate([(1 - clinical.TAIL_SHARE) * weights / weights.sum(),
                                  clinical.TAIL_SHARE * tails / tails.sum()])
            groups.append(np.cumsum(mix) / mix.sum())
    n_items = len(problems) + len(tail)
    group_cdf = np.concatenate([cdf + g for g, cdf in enumerate(groups)])
    group_cdf[len(groups[0]) - 1::len(groups[0])] = np.arange(1, len(groups) + 1)  # exact ends: no rounding gap

    starts = np.cumsum([0] + [len(c) for c in problem_codes] + [1] * len(tail))
    codes_flat = np.concatenate([np.concatenate([np.array(c) for c in problem_codes]), tail]).astype(np.int32)
    companion = np.concatenate([[p.companion for p in problems], np.ones(len(tail))])
    return _Model(vocabulary, index, min_age, max_age, sex_only, hazard, variants, onsets, starts, codes_flat,
                  companion, group_cdf, n_items)


# -- simulation of one shard --------------------------------------------------------------------------------

def _choose(rng: np.random.Generator, sets: _CodeSets, owner: np.ndarray) -> np.ndarray:
    """One code set per row for the given owners (conditions), by the owners' weights."""
    first, last = sets.first[owner], sets.first[owner + 1]
    u = rng.random(len(owner))
    picked = np.empty(len(owner), dtype=np.int64)
    for o in np.unique(owner):
        rows = owner == o
        cumulative = sets.cumulative[first[rows][0]:last[rows][0]]
        picked[rows] = first[rows][0] + np.minimum(np.searchsorted(cumulative, u[rows], side="right"),
                                                   len(cumulative) - 1)
    return picked


def _expand(sets_start: np.ndarray, sets_codes: np.ndarray, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row of `chosen`, code) for every code of every chosen set."""
    counts = sets_start[chosen + 1] - sets_start[chosen]
    rows = np.repeat(np.arange(len(chosen)), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, sets_codes[sets_start[chosen][rows] + within]


def _invert(hazard: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Age at which the cumulative hazard reaches `target` (inf if never)."""
    reached = target < hazard[-1]
    return np.where(reached, np.interp(np.where(reached, target, 0.0), hazard, _AGES), np.inf)


@dataclass
class _Visits:
    patient: np.ndarray
    age: np.ndarray
    kind: np.ndarray
    ref: np.ndarray          # condition row (ONSET), episode (pregnancy kinds), else -1
    number: np.ndarray       # prenatal visit number within its episode, else 0

    @staticmethod
    def concat(parts: list[_Visits]) -> _Visits:
        return _Visits(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                         ("patient", "age", "kind", "ref", "number")))

    @staticmethod
    def of(patient: np.ndarray, age: np.ndarray, kind: int, ref: np.ndarray | None = None,
           number: np.ndarray | None = None) -> _Visits:
        n = len(patient)
        return _Visits(patient.astype(np.int64), age.astype(np.float64), np.full(n, kind, np.int8),
                       np.full(n, -1, np.int64) if ref is None else ref.astype(np.int64),
                       np.zeros(n, np.int64) if number is None else number.astype(np.int64))


class _Shard:
    """Simulates one shard; every draw comes from this shard's own generator, in a fixed order."""

    def __init__(self, config: SimulationConfig, shard: int) -> None:
        self.config = config
        self.model = _model()
        self.rng = np.random.default_rng(np.random.SeedSequence([config.seed, shard]))
        self.offset = shard * config.shard_size
        self.n = min(config.shard_size, config.n_patients - self.offset)
        self.window_start = _days_1900(config.start_year)
        self.window_end = _days_1900(config.end_year + 1)
        self.events: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []  # (patient, day, code, priority)

    # 1-2: who, when observed, latent scores
    def demographics(self) -> None:
        n, rng = self.n, self.rng
        self.female = rng.random(n) < FEMALE_SHARE
        bands = np.array(AGE_PYRAMID, dtype=np.float64)
        band = np.searchsorted(np.cumsum(bands[:, 2]) / bands[:, 2].sum(), rng.random(n), side="right")
        age_end = bands[band, 0] + rng.random(n) * (bands[band, 1] - bands[band, 0])
        self.birth_day = self.window_end - np.floor(age_end * DAYS_PER_YEAR).astype(np.int64) - 1
        self.end_age = (self.window_end - self.birth_day) / DAYS_PER_YEAR
        entry = np.maximum((self.window_start - self.birth_day) / DAYS_PER_YEAR, 0.0)
        late = rng.random(n) < self.config.late_entry
        self.entry = np.where(late, entry + rng.random(n) * (self.end_age - entry) * 0.9, entry)
        leave = rng.random(n) < self.config.early_exit
        self.exit = np.where(leave, self.entry + rng.random(n) * (self.end_age - self.entry), self.end_age)
        self.z = rng.standard_normal((n, clinical.FACTORS))
        self.utilisation = rng.gamma(clinical.UTILISATION_SHAPE, 1 / clinical.UTILISATION_SHAPE, n)

    # 3: pregnancies
    def pregnancies(self) -> None:
        rng = self.rng
        women = np.flatnonzero(self.female)
        patient, conception = [], []
        for b, rate in enumerate(clinical.FERTILITY):
            low = np.maximum(self.entry[women], max(15.3, 15.0 + 5 * b))
            high = np.minimum(self.exit[women], min(49.0, 20.0 + 5 * b))
            span = np.maximum(high - low, 0.0)
            count = rng.poisson(rate * span)
            who = np.repeat(np.arange(len(women)), count)
            patient.append(women[who])
            conception.append(low[who] + rng.random(len(who)) * span[who])
        patient_all, conception_all = np.concatenate(patient), np.concatenate(conception)
        order = np.lexsort((conception_all, patient_all))
        patient_all, conception_all = patient_all[order], conception_all[order]
        too_soon = np.zeros(len(patient_all), dtype=bool)  # (np.r_[False, …] would be 1 long for no episodes)
        too_soon[1:] = (patient_all[1:] == patient_all[:-1]) & (np.diff(conception_all) < 1.3)
        self.ep_patient, self.ep_conception = patient_all[~too_soon], conception_all[~too_soon]
        k = len(self.ep_patient)
        first = np.ones(k, dtype=bool)
        first[1:] = self.ep_patient[1:] != self.ep_patient[:-1]
        self.ep_first = first
        self.ep_miscarriage = rng.random(k) < clinical.MISCARRIAGE
        self.ep_cesarean = rng.random(k) < clinical.CESAREAN
        self.ep_twins = rng.random(k) < clinical.TWINS
        self.ep_complication = rng.random((k, len(clinical.PREGNANCY_COMPLICATIONS))) < np.array(
            [p for _, p, *_ in clinical.PREGNANCY_COMPLICATIONS])
        self.ep_complication[self.ep_miscarriage] = False
        self.ep_delivery = self.ep_conception + (39 + rng.normal(0, 1.2, k)) * 7 / DAYS_PER_YEAR
        gdm = self.ep_complication[:, 0]
        self.gdm_age = np.full(self.n, np.inf)
        np.minimum.at(self.gdm_age, self.ep_patient[gdm], self.ep_conception[gdm] + 24 * 7 / DAYS_PER_YEAR)

    # 4: chronic conditions
    def conditions(self) -> None:
        rng, n = self.rng, self.n
        names = [c.name for c in clinical.CONDITIONS]
        onset = np.full((n, len(names)), np.inf)
        extra = {"gestational_diabetes": self.gdm_age}
        for i, c in enumerate(clinical.CONDITIONS):
            loading = c.loading
            multiplier = np.exp(loading * self.z[:, c.factor] - loading * loading / 2)
            multiplier *= np.where(self.female, c.female_rr, 1.0)
            if c.sex is not None:
                multiplier *= self.female == (c.sex == "F")
            parent_onset = np.full(n, np.inf)
            ratio = np.ones(n)
            for parent, hr in c.parents:
                age = extra[parent] if parent in extra else onset[:, names.index(parent)]
                parent_onset = np.minimum(parent_onset, age)
                ratio *= np.where(np.isfinite(age), hr, 1.0)
            ratio = np.minimum(ratio, clinical.MAX_PARENT_RR)
            before = 1.0
            if c.requires is not None:
                parent_onset = onset[:, names.index(c.requires)]
                before = 0.0
            with np.errstate(divide="ignore"):
                target = rng.exponential(size=n) / multiplier
            hazard = self.model.hazard[i]
            at_parent = np.interp(np.minimum(parent_onset, _AGES[-1]), _AGES, hazard)
            early = before * at_parent >= target
            late_target = at_parent + (target - before * at_parent) / ratio
            onset[:, i] = np.where(early, _invert(hazard, target / max(before, 1e-300)), _invert(hazard, late_target))
        self.onset = onset

    # 5: death
    def death(self) -> None:
        present = self.onset < self.exit[:, None]
        mortality = np.array([c.mortality_rr for c in clinical.CONDITIONS])
        multiplier = np.exp(0.5 * self.z[:, clinical.FRAILTY] - 0.125) * np.prod(
            np.where(present, mortality, 1.0), axis=1)
        a, b = clinical.GOMPERTZ_A, clinical.GOMPERTZ_B
        death_age = np.log(np.exp(b * self.entry) + self.rng.exponential(size=self.n) * b / (a * multiplier)) / b
        self.dies = death_age < self.exit
        self.exit = np.where(self.dies, death_age, self.exit)
        self.death_day = self.birth_day + np.floor(death_age * DAYS_PER_YEAR).astype(np.int64)

    # 6: visits
    def visits(self) -> _Visits:
        rng, n = self.rng, self.n
        span = self.exit - self.entry
        middle = self.entry + span / 2
        rate = np.asarray(clinical.VISIT_RATES)[_band(middle)] * self.utilisation
        rate *= np.where(self.female & (middle >= 18) & (middle < 45), clinical.FEMALE_ADULT_VISITS, 1.0)
        active = self.onset < middle[:, None]
        burden = np.prod(np.where(active, np.array([c.visits_rr for c in clinical.CONDITIONS]), 1.0), axis=1)
        rate *= np.minimum(burden, clinical.MAX_VISITS_RR)
        count = rng.poisson(rate * span)
        who = np.repeat(np.arange(n), count)
        parts = [_Visits.of(who, self.entry[who] + rng.random(len(who)) * span[who], ROUTINE)]

        self.c_patient, self.c_condition = np.nonzero(self.onset < self.exit[:, None])
        self.c_onset = self.onset[self.c_patient, self.c_condition]
        self.c_variant = _choose(rng, self.model.variants, self.c_condition)
        self.c_onset_set = _choose(rng, self.model.onsets, self.c_condition)
        row_of = np.flatnonzero(self.c_onset >= self.entry[self.c_patient])
        parts.append(_Visits.of(self.c_patient[row_of], self.c_onset[row_of], ONSET, ref=row_of))

        schedule = np.asarray(clinical.WELL_CHILD_AGES)
        due = (schedule >= self.entry[:, None]) & (schedule < self.exit[:, None])
        due &= rng.random(due.shape) < 0.85
        who, slot = np.nonzero(due)
        parts.append(_Visits.of(who, schedule[slot], WELL_CHILD))
        born = np.flatnonzero((self.birth_day >= self.window_start) & (self.entry == 0.0))
        parts.append(_Visits.of(born, np.zeros(len(born)), BIRTH_STAY))
        self.born_cesarean = rng.random(n) < clinical.CESAREAN

        weeks = np.asarray(clinical.PRENATAL_WEEKS, dtype=np.float64)
        k = len(self.ep_patient)
        attended = rng.random((k, len(weeks))) < 0.9
        attended[self.ep_miscarriage, 1:] = False
        episode, number = np.nonzero(attended)
        parts.append(_Visits.of(self.ep_patient[episode], self.ep_conception[episode] + weeks[number] * 7 / 365.25,
                                PRENATAL, ref=episode, number=number))
        lost = np.flatnonzero(self.ep_miscarriage)
        parts.append(_Visits.of(self.ep_patient[lost], self.ep_conception[lost] + 10 * 7 / DAYS_PER_YEAR,
                                MISCARRIAGE, ref=lost))
        born_ep = np.flatnonzero(~self.ep_miscarriage)
        parts.append(_Visits.of(self.ep_patient[born_ep], self.ep_delivery[born_ep], DELIVERY, ref=born_ep))
        parts.append(_Visits.of(self.ep_patient[born_ep], self.ep_delivery[born_ep] + 6 * 7 / DAYS_PER_YEAR,
                                POSTPARTUM, ref=born_ep))
        visits = _Visits.concat(parts)
        inside = (visits.age >= self.entry[visits.patient]) & (visits.age < self.exit[visits.patient])
        visits = _Visits(*(getattr(visits, f)[inside] for f in ("patient", "age", "kind", "ref", "number")))
        day = self.birth_day[visits.patient] + np.floor(visits.age * DAYS_PER_YEAR).astype(np.int64)
        order = np.lexsort((visits.kind, day, visits.patient))
        self.v_day = day[order]
        return _Visits(*(getattr(visits, f)[order] for f in ("patient", "age", "kind", "ref", "number")))

    def emit(self, visit: np.ndarray, code: np.ndarray, priority: int, visits: _Visits) -> None:
        self.events.append((visits.patient[visit], self.v_day[visit], code.astype(np.int32), priority))

    # 7: codes
    def codes(self, visits: _Visits) -> None:
        rng, model = self.rng, self.model
        n_visits = len(visits.patient)
        starts = np.searchsorted(visits.patient, np.arange(self.n + 1))
        per_patient = np.diff(starts)

        # onset codes at the diagnosis visit
        onset_visits = np.flatnonzero(visits.kind == ONSET)
        rows, codes = _expand(model.onsets.start, model.onsets.codes, self.c_onset_set[visits.ref[onset_visits]])
        self.emit(onset_visits[rows], codes, P_EPISODE, visits)

        # chronic codes at later visits
        reps = per_patient[self.c_patient]
        pair_row = np.repeat(np.arange(len(self.c_patient)), reps)
        pair_visit = starts[self.c_patient][pair_row] + (
            np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
        onset_day = self.birth_day[self.c_patient] + np.floor(self.c_onset * DAYS_PER_YEAR).astype(np.int64)
        coding = np.array([c.coding for c in clinical.CONDITIONS])[self.c_condition]
        keep = (self.v_day[pair_visit] > onset_day[pair_row]) & (rng.random(len(pair_row)) < coding[pair_row])
        pair_row, pair_visit = pair_row[keep], pair_visit[keep]
        rows, codes = _expand(model.variants.start, model.variants.codes, self.c_variant[pair_row])
        self.emit(pair_visit[rows], codes, P_CHRONIC, visits)
        coded = np.zeros(n_visits, dtype=bool)
        coded[pair_visit] = True

        self.episode_codes(visits)
        self.acute(visits, coded)

    def episode_codes(self, visits: _Visits) -> None:
        rng, index = self.rng, self.model.index
        kind = visits.kind
        well = np.flatnonzero(kind == WELL_CHILD)
        days_old = self.v_day[well] - self.birth_day[visits.patient[well]]
        code = np.where(days_old < 8, index["V20.31"], np.where(days_old < 29, index["V20.32"], index["V20.2"]))
        self.emit(well, code, P_EPISODE, visits)

        stay = np.flatnonzero(kind == BIRTH_STAY)
        cesarean = self.born_cesarean[visits.patient[stay]]
        self.emit(stay, np.where(cesarean, index["V30.01"], index["V30.00"]), P_EPISODE, visits)
        for code_text, share in (("774.6", clinical.NEWBORN_JAUNDICE), ("765.19", clinical.PRETERM)):
            hit = stay[rng.random(len(stay)) < share]
            self.emit(hit, np.full(len(hit), index[code_text]), P_EPISODE, visits)

        prenatal = np.flatnonzero(kind == PRENATAL)
        episode = visits.ref[prenatal]
        self.emit(prenatal, np.where(self.ep_first[episode], index["V22.0"], index["V22.1"]), P_EPISODE, visits)
        delivery = np.flatnonzero(kind == DELIVERY)
        d_episode = visits.ref[delivery]
        for j, (_, _, antepartum, delivered, from_visit) in enumerate(clinical.PREGNANCY_COMPLICATIONS):
            hit = prenatal[self.ep_complication[episode, j] & (visits.number[prenatal] >= from_visit)]
            self.emit(hit, np.full(len(hit), index[antepartum]), P_EPISODE, visits)
            if delivered is not None:
                hit = delivery[self.ep_complication[d_episode, j]]
                self.emit(hit, np.full(len(hit), index[delivered]), P_EPISODE, visits)
        complicated = self.ep_complication[d_episode].any(axis=1)
        cesarean = self.ep_cesarean[d_episode]
        main = np.where(cesarean, index["669.71"], index["650"])
        plain = cesarean | ~complicated  # "normal delivery" (650) excludes any complication
        self.emit(delivery[plain], main[plain], P_EPISODE, visits)
        outcome = np.where(self.ep_twins[d_episode], index["V27.2"], index["V27.0"])
        self.emit(delivery, outcome, P_EPISODE, visits)
        post = np.flatnonzero(kind == POSTPARTUM)
        self.emit(post, np.full(len(post), index["V24.2"]), P_EPISODE, visits)
        lost = np.flatnonzero(kind == MISCARRIAGE)
        self.emit(lost, np.full(len(lost), index["634.92"]), P_EPISODE, visits)

    def acute(self, visits: _Visits, coded: np.ndarray) -> None:
        rng, model = self.rng, self.model
        rate = np.zeros(len(visits.kind))
        for kind, value in ACUTE_RATE.items():
            rate[visits.kind == kind] = value
        count = rng.poisson(rate)
        count[(visits.kind == ROUTINE) & ~coded & (count == 0)] = 1   # every routine visit records something
        visit = np.repeat(np.arange(len(count)), count)
        age = (self.v_day[visit] - self.birth_day[visits.patient[visit]]) / DAYS_PER_YEAR
        group = _band(age) * 2 + (~self.female[visits.patient[visit]]).astype(np.int64)
        position = np.searchsorted(model.group_cdf, group + rng.random(len(visit)), side="right")
        item = np.minimum(position - group * model.n_items, model.n_items - 1)
        rows, codes = _expand(model.problem_start, model.problem_codes, item)
        first = np.r_[True, rows[1:] != rows[:-1]]
        keep = first | (rng.random(len(rows)) < model.problem_companion[item[rows]])
        acute_visit, acute_code = visit[rows][keep], codes[keep]
        self.emit(acute_visit, acute_code, P_ACUTE, visits)
        # the same problem seen again at the patient's next visit within 60 days
        following = acute_visit + 1
        has_next = following < len(visits.patient)
        following = np.where(has_next, following, acute_visit)
        again = has_next & (visits.patient[following] == visits.patient[acute_visit])
        gap = self.v_day[following] - self.v_day[acute_visit]
        again &= (gap > 0) & (gap <= 60) & (rng.random(len(acute_visit)) < clinical.ACUTE_FOLLOW_UP)
        self.emit(following[again], acute_code[again], P_ACUTE, visits)

    def table(self) -> tuple[pa.Table, int]:
        """The shard's MEDS events and the number of impossible codes withheld."""
        model, index = self.model, self.model.index
        patient = np.concatenate([e[0] for e in self.events])
        day = np.concatenate([e[1] for e in self.events])
        code = np.concatenate([e[2] for e in self.events])
        priority = np.concatenate([np.full(len(e[0]), e[3], np.int64) for e in self.events])
        age = (day - self.birth_day[patient]) / DAYS_PER_YEAR
        sex = np.where(self.female[patient], icd9.FEMALE, icd9.MALE)
        allowed = (model.min_age[code] <= age) & (age < model.max_age[code]) & (
            (model.sex_only[code] == icd9.ANY_SEX) | (model.sex_only[code] == sex))
        withheld = int((~allowed).sum())
        patient, day, code, priority = patient[allowed], day[allowed], code[allowed], priority[allowed]

        everyone = np.arange(self.n)
        dead = np.flatnonzero(self.dies)
        patient = np.concatenate([patient, everyone, everyone, dead])
        day = np.concatenate([day + 1, np.zeros(self.n, np.int64), self.birth_day + 1, self.death_day[dead] + 1])
        sex_code = np.where(self.female, index[SEX_CODES["F"]], index[SEX_CODES["M"]])
        code = np.concatenate([code, sex_code, np.full(self.n, index[BIRTH]), np.full(len(dead), index[DEATH])])
        priority = np.concatenate([priority, np.full(2 * self.n, P_DEMOGRAPHIC), np.full(len(dead), P_DEATH)])
        # one int64 key per event, patient | day (0: no time) | code | priority: sorted, one event per
        # (patient, day, code) kept (the lowest priority), then re-keyed to order by priority within a day
        key = np.sort((patient << 36) | (day << 18) | (code.astype(np.int64) << 3) | priority)
        key = key[np.r_[True, (key[1:] >> 3) != (key[:-1] >> 3)]]
        code, priority = (key >> 3) & ((1 << 15) - 1), key & 7
        key = np.sort((key >> 18 << 18) | (priority << 15) | code)
        patient, day = key >> 36, (key >> 18) & ((1 << 18) - 1)
        priority, code = (key >> 15) & 7, key & ((1 << 15) - 1)
        stamp = (day - 1 + EPOCH_1900) * US_PER_DAY + np.where(priority == P_DEATH, US_PER_DAY // 2, 0)
        table = pa.table({
            "subject_id": pa.array(patient + self.offset + self.config.first_subject_id, pa.int64()),
            "time": _timestamps(stamp, day != 0),
            "code": model.vocabulary.take(pa.array(code)),
            "numeric_value": pa.nulls(len(code), pa.float32()),
        })
        return table, withheld

    def run(self) -> tuple[pa.Table, int]:
        self.demographics()
        self.pregnancies()
        self.conditions()
        self.death()
        visits = self.visits()
        self.codes(visits)
        return self.table()


def _timestamps(microseconds: np.ndarray, valid: np.ndarray) -> pa.Array:
    """A timestamp[us] array with nulls where not `valid` (pa.array(..., mask=) is ten times slower)."""
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.timestamp("us"), len(valid), [bitmap, pa.py_buffer(microseconds)],
                                 null_count=int(len(valid) - np.count_nonzero(valid)))


def _days_1900(year: int) -> int:
    return int((np.datetime64(f"{year}-01-01") - np.datetime64("1900-01-01")).astype(np.int64))


def simulate_shard(config: SimulationConfig, shard: int) -> tuple[pa.Table, int]:
    """The MEDS events of one shard (patients shard*shard_size …) and the count of impossible codes withheld."""
    if not 0 <= shard < config.shards:
        raise ValueError(f"shard {shard} is outside 0..{config.shards - 1}")
    return _Shard(config, shard).run()


def _write_one(job: tuple[SimulationConfig, int, str, str]) -> tuple[ShardStats, int]:
    config, shard, path, compression = job
    table, withheld = simulate_shard(config, shard)
    return write_shard_file(table, Path(path), compression=compression), withheld


def _jobs(config: SimulationConfig, writer: MedsWriter) -> Iterator[tuple[SimulationConfig, int, str, str]]:
    for shard in range(config.shards):
        yield config, shard, str(writer.shard_path(shard)), writer.compression


def simulate(config: SimulationConfig, root: str | Path, *, workers: int = 1,
             dataset_name: str = "simulated", progress: Any = None) -> dict[str, Any]:
    """Simulates the cohort into a MEDS dataset at `root`; returns its summary.

    workers > 1 simulates shards in that many processes (the output is the same). Memory stays
    bounded by about one shard per worker. `progress(done_shards, total_shards)` is called after each shard.
    """
    with MedsWriter(root, dataset_name=dataset_name, etl_name="ehrlab.cohort.simulator",
                    extra={"simulation": asdict(config)}) as writer:
        withheld = 0
        jobs = _jobs(config, writer)
        if workers > 1 and config.shards > 1:
            with multiprocessing.get_context("spawn").Pool(min(workers, config.shards)) as pool:
                for stats, dropped in pool.imap(_write_one, jobs):
                    writer.add(stats)
                    withheld += dropped
                    if progress:
                        progress(writer.shards, config.shards)
        else:
            for job in jobs:
                stats, dropped = _write_one(job)
                writer.add(stats)
                withheld += dropped
                if progress:
                    progress(writer.shards, config.shards)
        summary = writer.close()
    return {**summary, "withheld_invalid_codes": withheld}
