"""Anthropic through the `anthropic` SDK: structured output by tool use.

The model is given one tool whose input schema is the note (or the grades) and told to call it;
the tool call's input is the answer. The reasoning variant turns extended thinking on, which the
API allows only with `tool_choice: auto`, so the answer then may also come back as JSON text.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import anthropic

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

MAX_TOKENS = 4096
THINKING_BUDGET = 4096


@lru_cache(maxsize=32)
def _client(base_url: str, key: str, timeout_s: float) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=base_url or None, timeout=timeout_s, max_retries=0)


class AnthropicBackend:
    def __init__(self, spec: ModelSpec, *, reasoning: bool = False, timeout_s: float = 120.0) -> None:
        self.spec = spec
        self.reasoning = reasoning
        self.timeout_s = timeout_s

    def _call(self, system: str, prompt: str, tool: str, schema: dict[str, Any], reasoning: bool) -> Any:
        key = api_key(self.spec)
        request: dict[str, Any] = {
            "model": model_name(self.spec, reasoning=reasoning),
            "max_tokens": MAX_TOKENS,
            "system": system,
            "messages": [{"role": "user", "content": prompt}],
            "tools": [{"name": tool, "description": "Record the answer.", "input_schema": schema}],
            "tool_choice": {"type": "tool", "name": tool},
        }
        if reasoning:
            request["thinking"] = {"type": "enabled", "budget_tokens": THINKING_BUDGET}
            request["max_tokens"] = MAX_TOKENS + THINKING_BUDGET
            request["tool_choice"] = {"type": "auto"}
        try:
            message = _client(self.spec.base_url, key, self.timeout_s).messages.create(**request)
        except anthropic.AnthropicError as exc:
            raise translate(exc, anthropic, key) from None
        if message.stop_reason == "max_tokens":
            raise MalformedOutputError("the answer was cut off at the token limit")
        for block in message.content:
            if block.type == "tool_use" and block.name == tool:
                return block.input
        return "".join(block.text for block in message.content if block.type == "text")

    def generate_note(self, transcript: str, facts: dict[str, Any], seed: int) -> dict[str, Any]:
        return parse_note(self._call(NOTE_SYSTEM, note_prompt(transcript), "record_note", NOTE_SCHEMA, False))

    def grade_note(self, note: dict[str, Any], criteria: Sequence[Criterion], transcript: str,
                   seed: int) -> list[CriterionGrade]:
        answer = self._call(GRADE_SYSTEM, grade_prompt(note, criteria, transcript), "record_grades", GRADES_SCHEMA,
                            self.reasoning)
        return parse_grades(answer, len(criteria))
