"""Model backends: write a note from a visit, grade a note against rubric criteria.

One interface, four vendors: `openai` and `anthropic` through their official SDKs, any
`openai-compatible` server by base URL (vLLM, llama.cpp server, Ollama), and `offline`, a baseline
that needs no network and no key (see offline.py). Every failure is one of two kinds:

- `TransientBackendError` (rate limits, timeouts, lost connections, server errors, malformed or
  incomplete structured output): worth another attempt; the task fails and the engine retries it
  with backoff, up to the experiment's `max_attempts`.
- `PermanentBackendError` (bad credentials, a missing secret, an unknown model, a request the
  vendor rejects): another attempt cannot help; recorded and not retried.

Each carries a short `type` ("rate_limit", "timeout", "malformed_output", …) recorded with the
failure, so an experiment report can count failure reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ehrlab.core.errors import FailedPreconditionError, UnavailableError
from ehrlab.grading.model import Criterion, CriterionGrade, ModelSpec, Vendor

DEFAULT_TIMEOUT_S = 120.0
# What a model row with an empty `model` means, per vendor (chat, reasoning).
DEFAULT_MODELS: dict[Vendor, tuple[str, str]] = {
    Vendor.OPENAI: ("gpt-4.1", "o3"),
    Vendor.ANTHROPIC: ("claude-sonnet-4-5", "claude-sonnet-4-5"),
    Vendor.OPENAI_COMPATIBLE: ("default", "default"),
    Vendor.OFFLINE: ("template", "template"),
}


class BackendError(Exception):
    type = "backend_error"

    def __init__(self, message: str, *, type: str | None = None) -> None:
        super().__init__(message)
        if type:
            self.type = type


class TransientBackendError(BackendError, UnavailableError):
    """Worth retrying: the same request may well succeed later."""


class PermanentBackendError(BackendError, FailedPreconditionError):
    """Retrying the same request cannot succeed."""


class MalformedOutputError(TransientBackendError):
    type = "malformed_output"


class Backend(Protocol):
    def generate_note(self, transcript: str, facts: dict[str, Any], seed: int) -> dict[str, Any]:
        """A note (section name -> text) for the visit."""
        ...

    def grade_note(self, note: dict[str, Any], criteria: Sequence[Criterion], transcript: str,
                   seed: int) -> list[CriterionGrade]:
        """One grade per criterion (ids 0..n-1, satisfaction 0..100), validated; scores not yet filled."""
        ...


def model_name(spec: ModelSpec, *, reasoning: bool = False) -> str:
    """The model a call will name: the row's model (or reasoning model), else the vendor default."""
    chat, thinker = DEFAULT_MODELS[spec.vendor]
    if reasoning:
        return spec.reasoning_model or spec.model or thinker
    return spec.model or chat


def backend_for(spec: ModelSpec, *, reasoning: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S) -> Backend:
    """The backend for a model; `reasoning` selects the reasoning variant (graders only)."""
    if spec.vendor in (Vendor.OPENAI, Vendor.OPENAI_COMPATIBLE):
        from ehrlab.grading.backends.openai_api import OpenAIBackend

        return OpenAIBackend(spec, reasoning=reasoning, timeout_s=timeout_s)
    if spec.vendor is Vendor.ANTHROPIC:
        from ehrlab.grading.backends.anthropic_api import AnthropicBackend

        return AnthropicBackend(spec, reasoning=reasoning, timeout_s=timeout_s)
    from ehrlab.grading.backends.offline import OfflineBackend

    return OfflineBackend(spec)
