"""Code tokenizers: one token per diagnosis code, never sub-words.

Token ids 0-6 are the special tokens of the reference, then (hierarchical variant only) one token
per ICD-9 3-digit category, then one token per code. A patient is written

    flat:          <s> <v> c1 c2 </v> <v> c3 </v> </s>
    hierarchical:  <s> <v> cat(c1) c1 cat(c2) c2 </v> <v> cat(c3) c3 </v> </s>

so the hierarchical model chooses a category first and then a code within it. A tokenizer is saved
with the model it was trained with; its fingerprint (a hash of its content) lets a model refuse a
tokenizer it was not trained with.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ehrlab.core.errors import SpecError
from ehrlab.core.hashing import hash_value
from ehrlab.ehrgen.records import Patient, Visits

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<v>", "</v>", "<mask>")
BOS, PAD, EOS, UNK, VISIT, END_VISIT, MASK = range(len(SPECIAL_TOKENS))
UNKNOWN_INDEX, MASK_INDEX = -1, -2   # code indices that stand for <unk> and <mask>
IGNORE = -100                         # the label of positions the loss skips (padding)


class CodeTokenizer:
    """Flat vocabulary: the special tokens, then one token per code (most frequent first)."""

    kind = "flat"

    def __init__(self, codes: Sequence[str], categories: Sequence[str] = ()) -> None:
        if len(set(codes)) != len(codes):
            raise SpecError("tokenizer codes must be distinct", path="codes")
        if set(codes) & set(SPECIAL_TOKENS):
            raise SpecError("a code may not be spelled like a special token", path="codes")
        self.codes = tuple(codes)
        self.categories = tuple(categories)
        self.category_offset = len(SPECIAL_TOKENS)
        self.code_offset = self.category_offset + len(self.categories)
        self._code_ids = {code: self.code_offset + i for i, code in enumerate(self.codes)}

    @property
    def vocab_size(self) -> int:
        return self.code_offset + len(self.codes)

    @property
    def fingerprint(self) -> str:
        return hash_value(self.to_dict())[:16]

    def token(self, token_id: int) -> str:
        if token_id < self.category_offset:
            return SPECIAL_TOKENS[token_id]
        if token_id < self.code_offset:
            return self.categories[token_id - self.category_offset]
        return self.codes[token_id - self.code_offset]

    def index(self, code: str) -> int:
        """The code's position in `codes` (UNKNOWN_INDEX if the tokenizer has never seen it)."""
        token_id = self._code_ids.get(code)
        return UNKNOWN_INDEX if token_id is None else token_id - self.code_offset

    def check_known(self, visits: Visits, *, path: str = "history") -> None:
        """Raises SpecError naming the first code this tokenizer has never seen."""
        for i, visit in enumerate(visits):
            for j, code in enumerate(visit):
                if code not in self._code_ids:
                    raise SpecError(f"unknown code {code!r}: the model was not trained on it", path=f"{path}[{i}][{j}]")

    def unit(self, index: int) -> tuple[int, ...]:
        """The tokens that write one code index (flat: the code; hierarchical: its category, then the code)."""
        if index == MASK_INDEX:
            return (MASK,)
        if index < 0:
            return (UNK,)
        return (self.code_offset + index,)

    def tokens(self, visits: Iterable[Sequence[int]], *, close: bool = True) -> list[int]:
        """<s> <v> … </v> <v> … </v> [</s>] from visits of code indices (MASK_INDEX writes <mask>)."""
        ids = [BOS]
        for visit in visits:
            ids.append(VISIT)
            for index in visit:
                ids.extend(self.unit(index))
            ids.append(END_VISIT)
        if close:
            ids.append(EOS)
        return ids

    def encode(self, visits: Iterable[Sequence[str]], *, close: bool = True) -> list[int]:
        return self.tokens([[self.index(code) for code in visit] for visit in visits], close=close)

    def decode(self, ids: Iterable[int]) -> list[list[str]]:
        """Visits of codes from token ids; category tokens, padding and unknowns are dropped."""
        visits: list[list[str]] = []
        current: list[str] | None = None
        for token_id in ids:
            token_id = int(token_id)
            if token_id == VISIT:
                current = []
            elif token_id == END_VISIT:
                if current is not None:
                    visits.append(current)
                current = None
            elif token_id == EOS:
                break
            elif token_id >= self.code_offset and current is not None:
                current.append(self.codes[token_id - self.code_offset])
        return visits

    def token_kinds(self) -> np.ndarray:
        """Per token id: 0 special, 1 category, 2 code (the decoder's grammar works on these)."""
        kinds = np.zeros(self.vocab_size, dtype=np.int8)
        kinds[self.category_offset:self.code_offset] = 1
        kinds[self.code_offset:] = 2
        return kinds

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "special_tokens": list(SPECIAL_TOKENS), "codes": list(self.codes)}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def from_patients(cls, patients: Iterable[Patient], *, min_count: int = 1,
                      category_of: Callable[[str], str] | None = None) -> CodeTokenizer:
        """A vocabulary of the codes seen at least `min_count` times, most frequent first."""
        counts = Counter(code for patient in patients for visit in patient.visits for code in visit)
        codes = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
        if not codes:
            raise SpecError("no codes to build a vocabulary from (empty training data?)", path="cohort")
        return cls(codes)


class HierarchicalTokenizer(CodeTokenizer):
    """Category tokens (ICD-9 3-digit categories) before the code tokens; each code follows its category."""

    kind = "hierarchical"

    def __init__(self, codes: Sequence[str], code_categories: Sequence[str]) -> None:
        if len(code_categories) != len(codes):
            raise SpecError("one category per code is needed", path="code_categories")
        categories = sorted(set(code_categories))
        super().__init__(codes, categories)
        self.code_categories = tuple(code_categories)
        index = {category: i for i, category in enumerate(categories)}
        self._category_ids = np.array([self.category_offset + index[c] for c in code_categories], dtype=np.int64)

    def unit(self, index: int) -> tuple[int, ...]:
        if index < 0:
            return super().unit(index)
        return (int(self._category_ids[index]), self.code_offset + index)

    def category_of_code_tokens(self) -> np.ndarray:
        """The category token id of every code token, in code order."""
        return self._category_ids.copy()

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "code_categories": list(self.code_categories)}

    @classmethod
    def from_patients(cls, patients: Iterable[Patient], *, min_count: int = 1,
                      category_of: Callable[[str], str] | None = None) -> HierarchicalTokenizer:
        if category_of is None:
            from ehrlab.cohort import icd9

            category_of = icd9.category
        flat = CodeTokenizer.from_patients(patients, min_count=min_count)
        return cls(flat.codes, [category_of(code) for code in flat.codes])


TOKENIZERS: dict[str, type[CodeTokenizer]] = {"flat": CodeTokenizer, "hierarchical": HierarchicalTokenizer}


def tokenizer_from_dict(body: dict[str, Any]) -> CodeTokenizer:
    kind = body.get("kind")
    if kind not in TOKENIZERS:
        raise SpecError(f"unknown tokenizer kind {kind!r} (known: {', '.join(TOKENIZERS)})", path="tokenizer.kind")
    if tuple(body.get("special_tokens", ())) != SPECIAL_TOKENS:
        raise SpecError("tokenizer special tokens differ from <s> <pad> </s> <unk> <v> </v> <mask>",
                        path="tokenizer.special_tokens")
    if kind == "hierarchical":
        return HierarchicalTokenizer(body["codes"], body["code_categories"])
    return CodeTokenizer(body["codes"])


def load_tokenizer(path: str | Path) -> CodeTokenizer:
    try:
        body = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SpecError("tokenizer file not found", source=str(path)) from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"tokenizer is not JSON: {exc.msg}", source=str(path)) from None
    try:
        return tokenizer_from_dict(body)
    except SpecError as exc:
        raise SpecError(exc.message, path=exc.path, source=str(path)) from None
