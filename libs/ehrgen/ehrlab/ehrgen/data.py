"""Training data: records from MEDS, MIMIC-III or JSON lines, denoising corruption, and batches.

Corruption follows PromptEHR. Each epoch, every training record becomes one example whose decoder
target is the whole record; what the encoder sees depends on a draw:

- with probability `probability` (0.5) a *denoising* example: one of three corruptions, chosen
  uniformly, is applied to the codes of every visit —
  * span masking: a span of Poisson(λ=3) codes (at a uniform start; length 0 inserts) becomes one <mask>,
  * deletion: each code is dropped with probability 0.15,
  * replacement: each code is replaced with probability 0.15 by a code drawn uniformly from the vocabulary;
- otherwise a *next-visit prediction* example: the encoder sees the first t visits (t uniform in
  0..n-1; t = 0 is generation from demographics alone) and the decoder writes the record on from there.

Labels are the decoder target shifted by one; padding is labelled IGNORE (-100) so the loss skips it.
Batches group records of similar length (sorted within buckets of many batches, then shuffled), which
keeps padding small without giving up random batch order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ehrlab.core.errors import SpecError
from ehrlab.ehrgen.records import MAX_AGE, Patient, read_jsonl
from ehrlab.ehrgen.tokenizer import IGNORE, MASK_INDEX, PAD, CodeTokenizer

SEX_INDEX = {"F": 0, "M": 1}
SEX_NAMES = ("F", "M")


def load_patients(path: str | Path, *, limit: int | None = None) -> list[Patient]:
    """Records from a MEDS dataset directory, MIMIC-III CSVs (PATIENTS, ADMISSIONS, DIAGNOSES_ICD) or JSON lines.

    From MEDS (through ehrlab.cohort's patient view): age is the age at the first visit; a visit keeps its
    ICD-9-CM diagnosis codes in data order, each once; visits left without diagnoses are dropped, and so
    are subjects without a birth date, a sex or any diagnosis.
    """
    path = Path(path)
    if path.is_file() and path.suffix in (".jsonl", ".json"):
        return read_jsonl(path)[:limit]
    if not path.exists():
        raise SpecError("cohort not found", source=str(path))
    from ehrlab.cohort import icd9, meds

    if any(path.glob("[Aa][Dd][Mm][Ii][Ss][Ss][Ii][Oo][Nn][Ss].csv*")):
        from ehrlab.cohort import mimic3

        path = mimic3.to_meds(path)
    patients = []
    for view in meds.read_patients(path):
        visits = []
        for visit in view.visits:
            codes = tuple(dict.fromkeys(code for code in visit.codes if icd9.normalize(code) is not None))
            if codes:
                visits.append((visit.age, codes))
        if view.sex is None or not visits or math.isnan(visits[0][0]):
            continue
        patients.append(Patient(age=min(max(visits[0][0], 0.0), MAX_AGE), sex=view.sex,
                                visits=tuple(codes for _, codes in visits), subject_id=view.subject_id))
        if limit is not None and len(patients) >= limit:
            break
    return patients


def split_patients(patients: Sequence[Patient], fractions: Sequence[float], seed: int) -> list[list[Patient]]:
    """A seeded random partition by the given fractions (the last part takes the remainder)."""
    order = np.random.default_rng(seed).permutation(len(patients))
    parts, start = [], 0
    for fraction in fractions[:-1]:
        end = start + round(fraction * len(patients))
        parts.append([patients[i] for i in order[start:end]])
        start = end
    parts.append([patients[i] for i in order[start:]])
    return parts


@dataclass(frozen=True)
class Corruption:
    probability: float = 0.5     # P(denoising example); else next-visit prediction
    span_lambda: float = 3.0
    delete_prob: float = 0.15
    replace_prob: float = 0.15


@dataclass(frozen=True)
class EncodedPatient:
    """A record as code indices (into the tokenizer's code list; -1 unknown) per visit."""

    age: float
    sex: int
    visits: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Example:
    encoder: list[int]
    target: list[int]
    age: float
    sex: int


def encode_patients(patients: Sequence[Patient], tokenizer: CodeTokenizer, max_len: int) -> list[EncodedPatient]:
    """Records as code indices, each truncated at whole visits so its token sequence fits in max_len."""
    encoded = []
    for patient in patients:
        visits = tuple(tuple(tokenizer.index(code) for code in visit) for visit in patient.visits)
        while visits and len(tokenizer.tokens(visits)) > max_len:
            visits = visits[:-1]
        encoded.append(EncodedPatient(patient.age, SEX_INDEX[patient.sex], visits))
    return encoded


def corrupt(patient: EncodedPatient, n_codes: int, rng: np.random.Generator, corruption: Corruption) -> list[list[int]]:
    """The visits the encoder sees for one example (code indices, MASK_INDEX for <mask>)."""
    visits = [list(v) for v in patient.visits]
    if rng.random() >= corruption.probability:
        return visits[: int(rng.integers(0, len(visits)))] if visits else []
    method = int(rng.integers(0, 3))
    out = []
    for visit in visits:
        if method == 0:
            length = min(int(rng.poisson(corruption.span_lambda)), len(visit))
            start = int(rng.integers(0, len(visit) - length + 1))
            visit = [*visit[:start], MASK_INDEX, *visit[start + length:]]
        elif method == 1:
            drop = rng.random(len(visit)) < corruption.delete_prob
            visit = [c for c, dropped in zip(visit, drop, strict=True) if not dropped]
        else:
            swap = rng.random(len(visit)) < corruption.replace_prob
            visit = [int(rng.integers(0, n_codes)) if s else c for c, s in zip(visit, swap, strict=True)]
        out.append(visit)
    return out


def make_examples(patients: Sequence[EncodedPatient], tokenizer: CodeTokenizer, rng: np.random.Generator,
                  corruption: Corruption) -> list[Example]:
    n_codes = len(tokenizer.codes)
    return [Example(tokenizer.tokens(corrupt(p, n_codes, rng, corruption)), tokenizer.tokens(p.visits), p.age, p.sex)
            for p in patients]


def bucketed_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator,
                     bucket_batches: int = 50) -> list[np.ndarray]:
    """Indices per batch: shuffled, sorted by length within buckets of `bucket_batches` batches, shuffled again."""
    order = rng.permutation(len(lengths))
    lengths = np.asarray(lengths)
    batches = []
    span = batch_size * bucket_batches
    for start in range(0, len(order), span):
        bucket = order[start:start + span]
        bucket = bucket[np.argsort(lengths[bucket], kind="stable")]
        batches.extend(bucket[i:i + batch_size] for i in range(0, len(bucket), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def _pad(rows: Sequence[Sequence[int]], value: int) -> np.ndarray:
    out = np.full((len(rows), max(len(r) for r in rows)), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def collate(examples: Sequence[Example]) -> dict[str, np.ndarray]:
    """Padded arrays: encoder ids and mask, decoder inputs (target[:-1]) and labels (target[1:], pad IGNORE)."""
    input_ids = _pad([e.encoder for e in examples], PAD)
    targets = [e.target for e in examples]
    return {
        "input_ids": input_ids,
        "attention_mask": (input_ids != PAD).astype(np.int64),
        "decoder_input_ids": _pad([t[:-1] for t in targets], PAD),
        "labels": _pad([t[1:] for t in targets], IGNORE),
        "age": np.array([e.age for e in examples], dtype=np.float32),
        "sex": np.array([e.sex for e in examples], dtype=np.int64),
    }


def epoch_batches(patients: Sequence[EncodedPatient], tokenizer: CodeTokenizer, *, batch_size: int, seed: int,
                  epoch: int, corruption: Corruption) -> Iterator[dict[str, np.ndarray]]:
    """The batches of one epoch; the same (seed, epoch) gives the same batches (resuming relies on it)."""
    rng = np.random.default_rng([seed, epoch])
    examples = make_examples(patients, tokenizer, rng, corruption)
    lengths = [len(e.encoder) + len(e.target) for e in examples]
    for batch in bucketed_batches(lengths, batch_size, rng):
        yield collate([examples[i] for i in batch])


FIRST_VISIT = np.datetime64("2020-01-01T00:00:00", "us")
VISIT_GAP = np.timedelta64(1, "h")
_US_PER_YEAR = 365.25 * 86_400 * 1_000_000


def write_meds(patients: Sequence[Patient], root: str | Path, *, dataset_name: str = "ehrgen-synthetic",
               first_subject_id: int = 0, shard_size: int = 50_000) -> dict[str, object]:
    """Writes records as a MEDS dataset (nothing is left behind on failure); returns its summary.

    The generator does not model time: the first visit is at 2020-01-01, each later one an hour after
    the previous (so visit ages equal the record's age to within hours), and birth is `age` years
    before the first visit. Sex is the static event GENDER//F or GENDER//M.
    """
    import pyarrow as pa

    from ehrlab.cohort import meds

    def shard(start: int) -> pa.Table:
        ids: list[int] = []
        times: list[np.datetime64 | None] = []
        codes: list[str] = []
        for offset, patient in enumerate(patients[start:start + shard_size]):
            subject = first_subject_id + start + offset
            birth = FIRST_VISIT - np.timedelta64(round(patient.age * _US_PER_YEAR), "us")
            events = [(None, meds.SEX_CODES[patient.sex]), (birth, meds.BIRTH)]
            events += [(FIRST_VISIT + k * VISIT_GAP, code) for k, visit in enumerate(patient.visits) for code in visit]
            ids.extend([subject] * len(events))
            times.extend(t for t, _ in events)
            codes.extend(c for _, c in events)
        return pa.table({"subject_id": pa.array(ids, pa.int64()), "time": pa.array(times, pa.timestamp("us")),
                         "code": pa.array(codes, pa.string())})

    if not patients:
        raise SpecError("no records to write", path="patients")
    return meds.write_dataset(root, (shard(start) for start in range(0, len(patients), shard_size)),
                              dataset_name=dataset_name)
