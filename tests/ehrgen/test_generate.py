from __future__ import annotations

import copy

import pytest
import torch

from ehrlab.cohort import icd9
from ehrlab.core.errors import SpecError
from ehrlab.ehrgen.generate import Generator, Request, requests_for
from ehrlab.ehrgen.kinds import SamplingParams
from ehrlab.ehrgen.records import Patient


def problems(patients: list[Patient]) -> list[str]:
    found = []
    for p in patients:
        if not p.visits or any(not v for v in p.visits):
            found.append(f"malformed {p}")
        for visit in p.visits:
            if len(set(visit)) != len(visit):
                found.append(f"duplicate in {visit}")
            found += [m for code in visit for m in icd9.violations(code, p.age, p.sex)]
    return found


def adversarial(bundle):
    """The trained model with its output bias pushed towards codes that are impossible for women and
    children (prostate, newborn checks), and towards repeating itself."""
    bad = copy.deepcopy(bundle)
    with torch.no_grad():
        for i, code in enumerate(bad.tokenizer.codes):
            if code.startswith(("ICD9CM/60", "ICD9CM/V20", "ICD9CM/650")):
                bad.model.logits_bias[bad.tokenizer.code_offset + i] += 50.0
    return bad


DEMOGRAPHICS = [(4.0, "F"), (30.0, "F"), (30.0, "M"), (80.0, "F"), (80.0, "M")]


@pytest.mark.parametrize("sampling", [SamplingParams(), SamplingParams(greedy=True),
                                      SamplingParams(temperature=2.0, top_k=5), SamplingParams(top_p=0.5),
                                      SamplingParams(max_visits=2, max_codes_per_visit=2, max_len=12)])
def test_every_record_is_valid_whatever_the_weights_prefer(bundle, sampling: SamplingParams) -> None:
    generator = Generator(adversarial(bundle))
    patients = list(generator.generate(requests_for(DEMOGRAPHICS, 40), seed=1, sampling=sampling))
    assert len(patients) == 200
    assert problems(patients) == []
    assert [(p.age, p.sex) for p in patients] == [d for d in DEMOGRAPHICS for _ in range(40)]
    assert max(len(p.visits) for p in patients) <= sampling.max_visits
    assert max(len(v) for p in patients for v in p.visits) <= sampling.max_codes_per_visit
    if sampling.max_len:
        assert max(len(generator.tokenizer.encode(p.visits)) for p in patients) <= sampling.max_len
    biased = {c for p in patients for v in p.visits for c in v if c.startswith("ICD9CM/60")}
    assert biased   # the bias is real: men get prostate codes, nobody else does


def test_the_same_seed_gives_the_same_records_and_greedy_is_deterministic(bundle) -> None:
    generator = Generator(bundle)
    requests = requests_for(DEMOGRAPHICS, 10)
    first = list(generator.generate(requests, seed=3))
    assert first == list(generator.generate(requests, seed=3))
    assert first != list(generator.generate(requests, seed=4))
    greedy = SamplingParams(greedy=True)
    a = list(generator.generate(requests_for([(50.0, "M")], 3), seed=1, sampling=greedy))
    assert a[0] == a[1] == a[2]


def test_batches_do_not_change_validity_or_count(bundle) -> None:
    generator = Generator(bundle)
    patients = list(generator.generate(requests_for(DEMOGRAPHICS, 7), seed=2, sampling=SamplingParams(batch_size=4)))
    assert len(patients) == 35 and problems(patients) == []


def test_completion_keeps_the_history_and_continues_it(bundle) -> None:
    generator = Generator(bundle)
    history = [["ICD9CM/401.9", "ICD9CM/428.0"], ["ICD9CM/427.31"]]
    requests = [*requests_for([(70.0, "M")], 20, history), Request(40.0, "F")]
    patients = list(generator.generate(requests, seed=5, sampling=SamplingParams(max_visits=6)))
    assert all(p.visits[:2] == (tuple(history[0]), tuple(history[1])) for p in patients[:20])
    assert any(len(p.visits) > 2 for p in patients[:20])
    assert problems(patients) == []


def test_fully_synthetic_records_have_as_many_visits_as_the_training_data_says(bundle) -> None:
    training = bundle.training["visit_counts"]
    assert sum(n for bands in training.values() for hist in bands.values() for n in hist.values()) \
        == bundle.training["records"]["train"]
    pinned = copy.copy(bundle)   # every woman in her thirties had exactly 5 visits; no man in his thirties
    pinned.training = {**bundle.training, "visit_counts": {"F": {"3": {"5": 7}}}}
    generator = Generator(pinned)
    women, men = requests_for([(34.0, "F")], 30), requests_for([(34.0, "M")], 30)
    from_training = SamplingParams(visits="training")
    patients = list(generator.generate([*women, *men], seed=2, sampling=from_training))
    assert {len(p.visits) for p in patients[:30]} == {5} and problems(patients) == []
    assert {len(p.visits) for p in patients[30:]} != {5}      # no data for them: the model ends the record
    left_to_the_model = list(generator.generate(women, seed=2))  # the default
    assert {len(p.visits) for p in left_to_the_model} != {5}
    capped = list(generator.generate(women, seed=2, sampling=SamplingParams(visits="training", max_visits=3)))
    assert {len(p.visits) for p in capped} == {3}             # the limits still hold
    history = [["ICD9CM/401.9"]]                               # a completion ends where the model ends it
    completed = list(generator.generate(requests_for([(34.0, "F")], 30, history), seed=2, sampling=from_training))
    assert {len(p.visits) for p in completed} != {5}


def test_the_learned_and_frequency_hierarchies_are_valid(cohort) -> None:
    from ehrlab.ehrgen.kinds import TrainGeneratorParams
    from ehrlab.ehrgen.train import train_generator
    from tests.ehrgen.conftest import TINY

    bundle, _ = train_generator(cohort[:200], [], TrainGeneratorParams(**{**TINY, "epochs": 1,
                                                                          "tokenizer": "hierarchical"}))
    generator = Generator(adversarial(bundle))
    for mode in ("learned", "frequency"):
        patients = list(generator.generate(requests_for(DEMOGRAPHICS, 20), seed=1,
                                           sampling=SamplingParams(hierarchical=mode)))
        assert problems(patients) == []
        assert all(c in bundle.tokenizer.codes for p in patients for v in p.visits for c in v)


@pytest.mark.parametrize(("demographics", "count", "history", "sampling", "path", "message"), [
    ([(-1.0, "F")], 1, (), {}, "demographics[0].age", "must not be negative"),
    ([(200.0, "F")], 1, (), {}, "demographics[0].age", "not a human age"),
    ([(float("nan"), "F")], 1, (), {}, "demographics[0].age", "number of years"),
    ([(40.0, "X")], 1, (), {}, "demographics[0].sex", "unknown sex 'X'"),
    ([(40.0, "F")], 0, (), {}, "count", "positive"),
    ([(40.0, "F")], 2_000_000, (), {}, "count", "at most 1,000,000"),
    ([], 1, (), {}, "demographics", "at least one"),
    ([(40.0, "F")], 1, [["ICD9CM/401.9", "ICD9CM/NOPE"]], {}, "history[0][1]", "unknown code"),
    ([(40.0, "F")], 1, [["ICD9CM/600.00"]], {}, "history[0][0]", "impossible for this patient"),
    ([(40.0, "F")], 1, [[]], {}, "history[0]", "non-empty"),
    ([(40.0, "F")], 1, [["ICD9CM/401.9", "ICD9CM/401.9"]], {}, "history[0]", "twice"),
    ([(40.0, "F")], 1, [["ICD9CM/401.9"]] * 3, {"max_visits": 3}, "history", "max_visits"),
    ([(40.0, "F")], 1, (), {"max_len": 4}, "sampling.max_len", "too short"),
    ([(40.0, "F")], 1, (), {"hierarchical": "frequency"}, "sampling.hierarchical", "hierarchical tokenizer"),
])
def test_bad_requests_fail_before_any_record(bundle, demographics, count, history, sampling, path,
                                             message) -> None:
    generator = Generator(bundle)
    stream = None
    with pytest.raises(SpecError, match=message) as error:
        requests = requests_for(demographics, count, history)
        stream = generator.generate([*requests_for([(50.0, "M")], 3), *requests], seed=0,
                                    sampling=SamplingParams(batch_size=1, **sampling))
        next(stream)
    assert error.value.path == path or error.value.path.endswith(path)
