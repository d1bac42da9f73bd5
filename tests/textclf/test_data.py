"""CSV reading, splits and metrics of the text classifier (no model involved)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrlab.core.errors import SpecError
from ehrlab.textclf.data import _token_span, exact_match, load_dataset, macro_f1, token_f1
from ehrlab.textclf.kinds import TextClassifierParams
from tests.textclf.conftest import write_csv


def params(**overrides: object) -> TextClassifierParams:
    return TextClassifierParams.model_validate({"encoder": "/models/x", **overrides})


def test_random_split_is_fixed_by_split_seed(sentences_csv: Path) -> None:
    first = load_dataset(sentences_csv, params(split_seed=3, seed=1))
    again = load_dataset(sentences_csv, params(split_seed=3, seed=2))
    other = load_dataset(sentences_csv, params(split_seed=4))
    assert {k: len(v) for k, v in first.splits.items()} == {"test": 8, "val": 8, "train": 64}
    assert [e.text for e in first.splits["val"]] == [e.text for e in again.splits["val"]]
    assert [e.text for e in first.splits["val"]] != [e.text for e in other.splits["val"]]
    assert first.labels == ["absent", "present"]


def test_a_split_column_is_used_as_given(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": "ab"[i % 2], "split": ["train", "val", "test"][i % 3]} for i in range(9)]
    data = load_dataset(write_csv(tmp_path / "d.csv", rows), params())
    assert [e.text for e in data.splits["test"]] == ["t2", "t5", "t8"]
    rows[4]["split"] = "holdout"
    with pytest.raises(SpecError, match="line 6: split 'holdout'") as caught:
        load_dataset(write_csv(tmp_path / "bad.csv", rows), params())
    assert caught.value.path == "params.split_column"


def test_bad_csvs_name_the_column_or_line(tmp_path: Path) -> None:
    no_label = write_csv(tmp_path / "a.csv", [{"text": "x", "status": "y"}])
    with pytest.raises(SpecError, match="no column 'label'") as caught:
        load_dataset(no_label, params())
    assert caught.value.path == "params.label_column"
    one_label = write_csv(tmp_path / "b.csv", [{"text": "x", "label": "y"}, {"text": "z", "label": "y"}])
    with pytest.raises(SpecError, match="two distinct labels"):
        load_dataset(one_label, params())
    missing_span = write_csv(tmp_path / "c.csv", [{"context": "a b c", "span": "b"}, {"context": "a b", "span": "q"}])
    with pytest.raises(SpecError, match="line 3: the span does not occur"):
        load_dataset(missing_span, params(task="span"))


def test_span_offsets_map_to_tokens_and_truncation_is_detected() -> None:
    offsets = [[0, 0], [0, 3], [4, 8], [9, 12], [12, 13], [0, 0]]  # [CLS] "the cats sat ." [SEP]
    assert _token_span(offsets, 4, 12) == (2, 3)
    assert _token_span(offsets, 0, 13) == (1, 4)
    assert _token_span(offsets, 9, 20) == (-1, -1)  # ends past the last kept token


def test_metrics() -> None:
    assert macro_f1([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx((2 / 3 + 0.8) / 2)
    assert macro_f1([0, 0], [0, 0]) == 1.0
    assert exact_match("The low mood.", "low mood") == 1.0 and exact_match("mood", "low mood") == 0.0
    assert token_f1("low mood today", "low mood") == pytest.approx(0.8)
