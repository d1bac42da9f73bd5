"""OpenAI and every OpenAI-compatible server (vLLM, llama.cpp server, Ollama) through the `openai` SDK.

Structured output is asked for with a strict JSON schema (`response_format: json_schema`), which
OpenAI and the compatible servers above all honour; the answer is still parsed and validated, since
smaller models and older servers do not always keep to it. The reasoning variant names the row's
reasoning model and asks for `reasoning_effort: medium`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import openai

from ehrlab.grading.backends import MalformedOutputError, model_name
from ehrlab.grading.backends.sdk import api_key, translate
from ehrlab.grading.backends.structured import (
    GRADE_SYSTEM,
    GRADES_SCHEMA,
    NOTE_SCHEMA,
    NOTE_SYSTEM,
    grade_prompt,
    note_prompt,
    parse_grades,
    parse_note,
)
from ehrlab.grading.model import Criterion, CriterionGrade, ModelSpec


@lru_cache(maxsize=32)
def _client(base_url: str, key: str, timeout_s: float) -> openai.OpenAI:
    # one client (and its connection pool) per endpoint and key; a rotated key makes a new one
    return openai.OpenAI(api_key=key, base_url=base_url or None, timeout=timeout_s, max_retries=0)


class OpenAIBackend:
    def __init__(self, spec: ModelSpec, *, reasoning: bool = False, timeout_s: float = 120.0) -> None:
        self.spec = spec
        self.reasoning = reasoning
        self.timeout_s = timeout_s

    def _complete(self, system: str, prompt: str, schema_name: str, schema: dict[str, Any], seed: int,
                  reasoning: bool) -> str | None:
        key = api_key(self.spec)
        request: dict[str, Any] = {
            "model": model_name(self.spec, reasoning=reasoning),
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": schema_name, "schema": schema, "strict": True}},
            "seed": seed,
        }
        if reasoning:
            request["reasoning_effort"] = "medium"
        try:
            completion = _client(self.spec.base_url, key, self.timeout_s).chat.completions.create(**request)
        except openai.OpenAIError as exc:
            raise translate(exc, openai, key) from None
        if not completion.choices:
            raise MalformedOutputError("the response has no choices")
        choice = completion.choices[0]
        if choice.finish_reason == "length":
            raise MalformedOutputError("the answer was cut off at the token limit")
        if getattr(choice.message, "refusal", None):
            raise MalformedOutputError(f"the model refused: {choice.message.refusal[:200]}")
        return choice.message.content

    def generate_note(self, transcript: str, facts: dict[str, Any], seed: int) -> dict[str, Any]:
        return parse_note(self._complete(NOTE_SYSTEM, note_prompt(transcript), "soap_note", NOTE_SCHEMA, seed,
                                         reasoning=False))

    def grade_note(self, note: dict[str, Any], criteria: Sequence[Criterion], transcript: str,
                   seed: int) -> list[CriterionGrade]:
        answer = self._complete(GRADE_SYSTEM, grade_prompt(note, criteria, transcript), "rubric_grades",
                                GRADES_SCHEMA, seed, reasoning=self.reasoning)
        return parse_grades(answer, len(criteria))
