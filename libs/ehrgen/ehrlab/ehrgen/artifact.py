"""A trained generator on disk: the model, the tokenizer it was trained with, and what it was trained on.

    model/config.json        GeneratorConfig (sizes, attention, the tokenizer's fingerprint)
    model/tokenizer.json     the tokenizer
    model/weights.safetensors
    model/training.json      data summary, code counts of the training split, final metrics

Loading checks that the tokenizer is the one the weights were trained with: a model and a tokenizer
that do not belong together are an error, never a silent mismatch of token ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehrlab.core.errors import SpecError
from ehrlab.ehrgen.tokenizer import CodeTokenizer, load_tokenizer

if TYPE_CHECKING:  # torch is needed to load or save weights, not to find a model or read its description
    import torch

    from ehrlab.ehrgen.model import GeneratorConfig, PromptBart

MODEL_DIR = "model"
CONFIG, TOKENIZER, WEIGHTS, TRAINING = "config.json", "tokenizer.json", "weights.safetensors", "training.json"


@dataclass
class GeneratorBundle:
    model: PromptBart
    tokenizer: CodeTokenizer
    training: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def code_counts(self) -> dict[str, int]:
        return self.training.get("code_counts", {})

    @property
    def visit_counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """Training records by sex, age band and number of visits (empty for models saved without it)."""
        return self.training.get("visit_counts", {})


def age_band(age: float) -> int:
    """Ten-year age bands, 90 and over together: the strata of the visit-count distribution."""
    return min(int(age // 10), 9)


def model_dir(path: str | Path) -> Path:
    """The model directory inside a train_generator artifact (or the directory itself)."""
    path = Path(path)
    return path / MODEL_DIR if (path / MODEL_DIR / CONFIG).exists() else path


def save_bundle(directory: Path, model: PromptBart, tokenizer: CodeTokenizer, training: dict[str, Any]) -> Path:
    from safetensors.torch import save_model

    directory.mkdir(parents=True, exist_ok=True)
    model.config.save(directory / CONFIG)
    tokenizer.save(directory / TOKENIZER)
    save_model(_unwrap(model), str(directory / WEIGHTS))
    (directory / TRAINING).write_text(json.dumps(training, indent=1))
    return directory


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "_orig_mod", model)


def check_match(config: GeneratorConfig, tokenizer: CodeTokenizer, *, source: str = "") -> None:
    if config.vocab_size != tokenizer.vocab_size or (
            config.tokenizer_fingerprint and config.tokenizer_fingerprint != tokenizer.fingerprint):
        raise SpecError(
            f"model/tokenizer mismatch: the model was trained with tokenizer {config.tokenizer_fingerprint} "
            f"({config.vocab_size} tokens), got tokenizer {tokenizer.fingerprint} ({tokenizer.vocab_size} tokens)",
            path="tokenizer", source=source)


def load_bundle(path: str | Path, *, device: str | torch.device = "cpu",
                tokenizer: CodeTokenizer | str | Path | None = None) -> GeneratorBundle:
    """Loads a saved generator; `tokenizer` (object or file) replaces the saved one and must match the weights."""
    from safetensors.torch import load_model

    from ehrlab.ehrgen.model import GeneratorConfig, PromptBart

    directory = model_dir(path)
    if not (directory / CONFIG).exists():
        raise SpecError("not a generator model (no model/config.json)", source=str(path))
    try:
        config = GeneratorConfig.from_dict(json.loads((directory / CONFIG).read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise SpecError(f"unreadable model config: {exc}", source=str(directory / CONFIG)) from None
    if tokenizer is None:
        tokenizer = directory / TOKENIZER
    if not isinstance(tokenizer, CodeTokenizer):
        tokenizer = load_tokenizer(tokenizer)
    check_match(config, tokenizer, source=str(path))
    model = PromptBart(config)
    try:
        load_model(model, str(directory / WEIGHTS), device=str(device))
    except (RuntimeError, FileNotFoundError) as exc:
        raise SpecError(f"model weights do not fit the config: {str(exc).splitlines()[0]}",
                        source=str(directory / WEIGHTS)) from None
    model.to(device).eval()
    training = json.loads((directory / TRAINING).read_text()) if (directory / TRAINING).exists() else {}
    return GeneratorBundle(model, tokenizer, training, directory)
