from __future__ import annotations

import json

import pytest

from ehrlab.core.errors import SpecError
from ehrlab.ehrgen.records import Patient
from ehrlab.ehrgen.tokenizer import (
    SPECIAL_TOKENS,
    CodeTokenizer,
    HierarchicalTokenizer,
    load_tokenizer,
    tokenizer_from_dict,
)

PATIENTS = [Patient(50.0, "F", (("ICD9CM/401.9", "ICD9CM/428.0"), ("ICD9CM/428.0",))),
            Patient(60.0, "M", (("ICD9CM/428.1", "ICD9CM/250.00"),))]


def test_special_tokens_and_sequence_format_are_the_reference_ones() -> None:
    tokenizer = CodeTokenizer.from_patients(PATIENTS)
    assert SPECIAL_TOKENS == ("<s>", "<pad>", "</s>", "<unk>", "<v>", "</v>", "<mask>")
    assert tokenizer.codes[0] == "ICD9CM/428.0"            # most frequent first, one token per code
    ids = tokenizer.encode(PATIENTS[0].visits)
    assert [tokenizer.token(i) for i in ids] == ["<s>", "<v>", "ICD9CM/401.9", "ICD9CM/428.0", "</v>",
                                                 "<v>", "ICD9CM/428.0", "</v>", "</s>"]
    assert tokenizer.decode(ids) == [["ICD9CM/401.9", "ICD9CM/428.0"], ["ICD9CM/428.0"]]
    assert tokenizer.vocab_size == 7 + 4


def test_hierarchical_writes_each_code_after_its_category() -> None:
    tokenizer = HierarchicalTokenizer.from_patients(PATIENTS)
    assert tokenizer.categories == ("250", "401", "428")
    assert tokenizer.code_offset == 7 + 3
    ids = tokenizer.encode([["ICD9CM/428.1", "ICD9CM/250.00"]])
    assert [tokenizer.token(i) for i in ids] == ["<s>", "<v>", "428", "ICD9CM/428.1", "250", "ICD9CM/250.00",
                                                 "</v>", "</s>"]
    assert tokenizer.decode(ids) == [["ICD9CM/428.1", "ICD9CM/250.00"]]


def test_unknown_codes_become_unk_in_data_and_errors_in_prompts() -> None:
    tokenizer = CodeTokenizer.from_patients(PATIENTS)
    assert tokenizer.encode([["ICD9CM/999.9"]])[2] == SPECIAL_TOKENS.index("<unk>")
    with pytest.raises(SpecError, match=r"unknown code 'ICD9CM/999\.9'") as error:
        tokenizer.check_known((("ICD9CM/401.9",), ("ICD9CM/428.0", "ICD9CM/999.9")))
    assert error.value.path == "history[1][1]"


@pytest.mark.parametrize("kind", [CodeTokenizer, HierarchicalTokenizer])
def test_save_and_load_round_trip_keeps_the_fingerprint(kind: type[CodeTokenizer], tmp_path) -> None:
    tokenizer = kind.from_patients(PATIENTS)
    tokenizer.save(tmp_path / "tokenizer.json")
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert type(loaded) is kind
    assert loaded.fingerprint == tokenizer.fingerprint
    assert loaded.encode(PATIENTS[1].visits) == tokenizer.encode(PATIENTS[1].visits)
    assert CodeTokenizer(["a", "b"]).fingerprint != CodeTokenizer(["b", "a"]).fingerprint


def test_bad_tokenizer_files_are_clear_errors(tmp_path) -> None:
    body = CodeTokenizer.from_patients(PATIENTS).to_dict()
    with pytest.raises(SpecError, match="special tokens"):
        tokenizer_from_dict({**body, "special_tokens": ["<s>", "<pad>"]})
    with pytest.raises(SpecError, match="unknown tokenizer kind 'bpe'"):
        tokenizer_from_dict({**body, "kind": "bpe"})
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(SpecError, match="not JSON"):
        load_tokenizer(tmp_path / "t.json")
    with pytest.raises(SpecError, match="distinct"):
        CodeTokenizer(["a", "a"])
    (tmp_path / "ok.json").write_text(json.dumps(body))
    assert load_tokenizer(tmp_path / "ok.json").codes == tuple(body["codes"])
