from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ehrlab.core.errors import SpecError
from ehrlab.ehrgen.data import (
    Corruption,
    EncodedPatient,
    bucketed_batches,
    collate,
    corrupt,
    encode_patients,
    epoch_batches,
    load_patients,
    make_examples,
    split_patients,
    write_meds,
)
from ehrlab.ehrgen.records import Patient, read_jsonl
from ehrlab.ehrgen.tokenizer import EOS, IGNORE, MASK_INDEX, PAD, CodeTokenizer, HierarchicalTokenizer

RECORD = EncodedPatient(40.0, 0, ((0, 1, 2, 3, 4, 5), (6, 7, 8, 9, 10, 11), (1, 2)))


def draws(corruption: Corruption, n: int = 4000, seed: int = 0) -> list[list[list[int]]]:
    rng = np.random.default_rng(seed)
    return [corrupt(RECORD, 100, rng, corruption) for _ in range(n)]


def test_next_visit_prediction_keeps_a_prefix_of_whole_visits() -> None:
    outs = draws(Corruption(probability=0.0), n=600)
    assert {len(o) for o in outs} == {0, 1, 2}                  # t uniform in 0..n-1
    assert all(o == [list(v) for v in RECORD.visits[: len(o)]] for o in outs)


def test_span_masking_replaces_poisson_spans_with_one_mask() -> None:
    masked = [o for o in draws(Corruption(probability=1.0)) if any(MASK_INDEX in v for v in o)]
    assert len(masked) == pytest.approx(4000 / 3, rel=0.1)       # one of the three corruptions
    first_visit = [v for o in masked for v in o[:1]]
    assert all(v.count(MASK_INDEX) == 1 for v in first_visit)
    removed = np.array([6 - (len(v) - 1) for v in first_visit])
    # Poisson(3) clipped at the visit's 6 codes: mean a little under 3
    assert 2.6 < removed.mean() < 3.0


def test_deletion_and_replacement_rates() -> None:
    outs = [o for o in draws(Corruption(probability=1.0)) if not any(MASK_INDEX in v for v in o)]
    # a deletion draw keeps its codes in order; a replacement draw keeps the length (about 15% changed)
    deleted = [o for o in outs if sum(map(len, o)) < 14]
    assert all(set(v) <= set(w) for o in deleted for v, w in zip(o, RECORD.visits, strict=True))
    assert 0.13 < 1 - sum(len(v) for o in deleted for v in o) / (14 * len(deleted)) < 0.2
    replaced = [o for o in outs if sum(map(len, o)) == 14]
    changed = sum(a != b for o in replaced for v, w in zip(o, RECORD.visits, strict=True)
                  for a, b in zip(v, w, strict=True))
    assert 0.10 < changed / (14 * len(replaced)) < 0.17


def test_examples_target_the_whole_record_and_labels_ignore_padding(cohort: list[Patient]) -> None:
    tokenizer = CodeTokenizer.from_patients(cohort)
    encoded = encode_patients(cohort[:10], tokenizer, 64)
    examples = make_examples(encoded, tokenizer, np.random.default_rng(1), Corruption())
    assert all(e.target == tokenizer.tokens(p.visits) for e, p in zip(examples, encoded, strict=True))
    batch = collate(examples)
    lengths = [len(e.target) for e in examples]
    for row, length in enumerate(lengths):
        assert (batch["labels"][row, : length - 1] != IGNORE).all()
        assert (batch["labels"][row, length - 1:] == IGNORE).all()     # padding never becomes a label
        assert batch["labels"][row, length - 2] == EOS
        assert (batch["decoder_input_ids"][row, length - 1:] == PAD).all()
    assert (batch["attention_mask"] == (batch["input_ids"] != PAD)).all()


def test_records_too_long_lose_whole_visits() -> None:
    patient = Patient(50.0, "F", (("a", "b", "c"), ("d", "e"), ("f",)))
    tokenizer = CodeTokenizer(["a", "b", "c", "d", "e", "f"])
    (encoded,) = encode_patients([patient], tokenizer, 11)     # <s> <v> a b c </v> <v> d e </v> </s>
    assert encoded.visits == ((0, 1, 2), (3, 4))
    hierarchical = HierarchicalTokenizer(["a", "b", "c", "d", "e", "f"], ["x", "x", "y", "y", "y", "z"])
    (encoded,) = encode_patients([patient], hierarchical, 11)
    assert encoded.visits == ((0, 1, 2),)


def test_bucketing_cuts_padding_and_keeps_every_record_once() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 200, 5000)
    batches = bucketed_batches(lengths, 32, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(5000))
    padded = sum(len(b) * lengths[b].max() for b in batches)
    random_padded = sum(len(b) * lengths[b].max() for b in np.array_split(rng.permutation(5000), len(batches)))
    assert padded < 0.65 * random_padded


def test_epochs_are_reproducible_and_differ_between_epochs(cohort: list[Patient]) -> None:
    tokenizer = CodeTokenizer.from_patients(cohort)
    encoded = encode_patients(cohort, tokenizer, 64)

    def first(epoch: int) -> np.ndarray:
        return next(epoch_batches(encoded, tokenizer, batch_size=16, seed=3, epoch=epoch,
                                  corruption=Corruption()))["input_ids"]

    assert np.array_equal(first(0), first(0))
    assert not np.array_equal(first(0), first(1))


def test_split_is_a_seeded_partition(cohort: list[Patient]) -> None:
    train, val, test = split_patients(cohort, (0.8, 0.1, 0.1), seed=5)
    assert (len(train), len(val), len(test)) == (480, 60, 60)
    ids = [p.subject_id for part in (train, val, test) for p in part]
    assert sorted(ids) == sorted(p.subject_id for p in cohort)
    assert [p.subject_id for p in split_patients(cohort, (0.8, 0.1, 0.1), seed=5)[2]] == [p.subject_id for p in test]


def test_meds_round_trip_through_the_cohort_reader(cohort: list[Patient], tmp_path: Path) -> None:
    summary = write_meds(cohort[:50], tmp_path / "meds", first_subject_id=1000)
    assert summary["subjects"] == 50
    loaded = load_patients(tmp_path / "meds")
    assert [p.visits for p in loaded] == [p.visits for p in cohort[:50]]
    assert [p.sex for p in loaded] == [p.sex for p in cohort[:50]]
    assert np.allclose([p.age for p in loaded], [p.age for p in cohort[:50]], atol=1e-6)
    assert loaded[0].subject_id == 1000


def test_jsonl_and_missing_inputs(cohort_file: Path, tmp_path: Path) -> None:
    assert len(load_patients(cohort_file)) == 600
    with pytest.raises(SpecError, match="cohort not found"):
        load_patients(tmp_path / "nothing")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"age": 40, "sex": "F", "visits": [["a"]]}\n{"age": -1, "sex": "F", "visits": []}\n')
    with pytest.raises(SpecError, match="age must not be negative") as error:
        read_jsonl(bad)
    assert error.value.path == "line 2.age" and error.value.source == str(bad)


def test_mimic3_csvs_become_records(tmp_path: Path) -> None:
    """A MIMIC-III directory is converted through ehrlab.cohort.mimic3: one visit per admission."""
    root = tmp_path / "mimic"
    root.mkdir()
    (root / "PATIENTS.csv").write_text('SUBJECT_ID,GENDER,DOB,DOD\n1,F,2100-01-01 00:00:00,\n'
                                       '2,M,2080-06-01 00:00:00,\n')
    (root / "ADMISSIONS.csv").write_text(
        "SUBJECT_ID,HADM_ID,ADMITTIME,DISCHTIME,DEATHTIME\n"
        "1,10,2150-01-01 00:00:00,2150-01-05 00:00:00,\n1,11,2152-03-01 00:00:00,2152-03-04 00:00:00,\n"
        "2,20,2150-02-01 00:00:00,2150-02-03 00:00:00,\n")
    (root / "DIAGNOSES_ICD.csv").write_text(
        "SUBJECT_ID,HADM_ID,SEQ_NUM,ICD9_CODE\n1,10,1,4019\n1,10,2,4280\n1,11,1,25000\n2,20,1,486\n")
    patients = sorted(load_patients(root), key=lambda p: p.subject_id)
    assert [p.sex for p in patients] == ["F", "M"]
    assert patients[0].visits == (("ICD9CM/401.9", "ICD9CM/428.0"), ("ICD9CM/250.00",))
    assert patients[0].age == pytest.approx(50.0, abs=0.1) and patients[1].age == pytest.approx(69.7, abs=0.1)
