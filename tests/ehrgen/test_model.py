from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ehrlab.core.errors import SpecError
from ehrlab.ehrgen.artifact import load_bundle, save_bundle
from ehrlab.ehrgen.model import SIZES, GeneratorConfig, PromptBart
from ehrlab.ehrgen.tokenizer import BOS, PAD, CodeTokenizer


def tiny(attention: str = "sdpa", vocab: int = 40) -> PromptBart:
    torch.manual_seed(0)
    return PromptBart(GeneratorConfig.from_size("tiny", vocab, attention=attention, dropout=0.0)).eval()


def batch() -> dict[str, torch.Tensor]:
    ids = torch.tensor([[BOS, 4, 9, 10, 5, 2], [BOS, 4, 11, 5, 2, PAD]])
    return {"input_ids": ids, "attention_mask": (ids != PAD).long(), "decoder_input_ids": ids[:, :-1],
            "labels": torch.where(ids[:, 1:] == PAD, -100, ids[:, 1:]), "age": torch.tensor([30.0, 70.0]),
            "sex": torch.tensor([0, 1])}


def test_sdpa_and_eager_attention_agree() -> None:
    sdpa, eager = tiny("sdpa"), tiny("eager")
    eager.load_state_dict(sdpa.state_dict())
    loss_sdpa, logits_sdpa = sdpa(**batch())
    loss_eager, logits_eager = eager(**batch())
    assert torch.allclose(logits_sdpa, logits_eager, atol=1e-5)
    assert loss_sdpa.item() == pytest.approx(loss_eager.item(), abs=1e-5)


def test_kv_cache_decoding_matches_a_full_pass() -> None:
    model, b = tiny(), batch()
    with torch.no_grad():
        hidden, mask = model.encode(b["input_ids"], b["attention_mask"], b["age"], b["sex"])
        full, _ = model.decode(b["decoder_input_ids"], hidden, mask, b["age"], b["sex"])
        step, cache = model.decode(b["decoder_input_ids"][:, :2], hidden, mask, b["age"], b["sex"], use_cache=True)
        steps = [step]
        for t in range(2, b["decoder_input_ids"].shape[1]):
            step, cache = model.decode(b["decoder_input_ids"][:, t:t + 1], hidden, mask, b["age"], b["sex"], cache)
            steps.append(step)
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)


def test_demographic_prompts_condition_both_stacks() -> None:
    model, b = tiny(), batch()
    with torch.no_grad():
        _, base = model(**b)
        _, other_sex = model(**{**b, "sex": 1 - b["sex"]})
        _, other_age = model(**{**b, "age": b["age"] + 20})
    assert not torch.allclose(base, other_sex) and not torch.allclose(base, other_age)
    names = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert {"encoder_prompt", "decoder_prompt"} <= names


def test_sizes_span_tiny_to_bart_base() -> None:
    assert SIZES["base"] == (768, 6, 12, 3072)
    with pytest.raises(SpecError, match="unknown model size 'huge'"):
        GeneratorConfig.from_size("huge", 10)


def test_a_model_refuses_a_tokenizer_it_was_not_trained_with(tmp_path: Path) -> None:
    tokenizer = CodeTokenizer([f"ICD9CM/{400 + i}" for i in range(33)])
    model = PromptBart(GeneratorConfig.from_size("tiny", tokenizer.vocab_size,
                                                 tokenizer_fingerprint=tokenizer.fingerprint))
    save_bundle(tmp_path / "model", model, tokenizer, {"code_counts": {}})
    loaded = load_bundle(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(), model.state_dict().values(),
                                                 strict=True))
    same_size = CodeTokenizer([f"ICD9CM/{500 + i}" for i in range(33)])
    with pytest.raises(SpecError, match="model/tokenizer mismatch"):
        load_bundle(tmp_path, tokenizer=same_size)
    with pytest.raises(SpecError, match="model/tokenizer mismatch"):
        load_bundle(tmp_path, tokenizer=CodeTokenizer(["ICD9CM/401.9"]))
    with pytest.raises(SpecError, match="not a generator model"):
        load_bundle(tmp_path / "nothing")
