"""Reading the CSV, splitting it, and turning rows into model inputs.

Classification rows are (text, label); labels are any strings, numbered in sorted order over the
whole file so every split agrees. Span rows are (context, span): the span's character start is the
`span_start` column where present, else the first occurrence of the span in the context.

Without a split column, rows are shuffled with `split_seed` and cut into test, val and train by the
given fractions (the same seed always gives the same split, whatever the training seed).
"""

from __future__ import annotations

import csv
import random
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ehrlab.core.errors import SpecError
from ehrlab.textclf.kinds import TextClassifierParams

SPLITS = ("train", "val", "test")


@dataclass
class Example:
    text: str                      # the sentence (classification) or the context (span)
    label: int = 0                 # classification
    span: str = ""                 # span: the evidence text
    span_start: int = -1           # span: its character offset in the context


@dataclass
class Dataset:
    splits: dict[str, list[Example]]
    labels: list[str] = field(default_factory=list)   # classification: label names by index


def _csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if path.is_dir():
        found = sorted(path.glob("*.csv"))
        if len(found) != 1:
            raise SpecError(f"{path}: expected one .csv file in the input directory, found {len(found)}",
                            path="inputs.data")
        path = found[0]
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def load_dataset(path: Path, p: TextClassifierParams) -> Dataset:
    columns, rows = _csv_rows(path)
    needed = [p.text_column, p.label_column] if p.task == "classification" else [p.context_column, p.span_column]
    for name in needed:
        if name not in columns:
            key = {p.text_column: "text_column", p.label_column: "label_column",
                   p.context_column: "context_column", p.span_column: "span_column"}[name]
            raise SpecError(f"the CSV has no column {name!r} (columns: {', '.join(columns)})", path=f"params.{key}")
    if not rows:
        raise SpecError("the CSV has no rows", path="inputs.data")
    labels: list[str] = []
    if p.task == "classification":
        labels = sorted({row[p.label_column] for row in rows})
        if len(labels) < 2:
            raise SpecError(f"column {p.label_column!r} needs at least two distinct labels", path="params.label_column")
        index = {label: i for i, label in enumerate(labels)}
        examples = [Example(text=row[p.text_column], label=index[row[p.label_column]]) for row in rows]
    else:
        examples = [_span_example(row, number, p) for number, row in enumerate(rows, start=2)]
    if p.split_column in columns:
        splits = _given_splits(rows, examples, p.split_column)
    else:
        splits = _random_splits(examples, p.val_fraction, p.test_fraction, p.split_seed)
    if not splits["train"]:
        raise SpecError("no training rows", path="params.val_fraction")
    if p.max_train_rows:
        splits["train"] = splits["train"][:p.max_train_rows]
    return Dataset(splits, labels)


def _span_example(row: dict[str, str], line: int, p: TextClassifierParams) -> Example:
    context, span = row[p.context_column], row[p.span_column]
    if not span.strip():
        raise SpecError(f"CSV line {line}: the span is empty", path=f"inputs.data[{line}]")
    start = int(row["span_start"]) if row.get("span_start", "").strip() else context.find(span)
    if start < 0 or context[start:start + len(span)] != span:
        raise SpecError(f"CSV line {line}: the span does not occur in its context", path=f"inputs.data[{line}]")
    return Example(text=context, span=span, span_start=start)


def _given_splits(rows: list[dict[str, str]], examples: list[Example], column: str) -> dict[str, list[Example]]:
    splits: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for line, (row, example) in enumerate(zip(rows, examples, strict=True), start=2):
        name = row[column].strip().lower()
        if name not in splits:
            raise SpecError(f"CSV line {line}: split {row[column]!r} is not one of {', '.join(SPLITS)}",
                            path="params.split_column")
        splits[name].append(example)
    return splits


def _random_splits(examples: list[Example], val: float, test: float, seed: int) -> dict[str, list[Example]]:
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_test, n_val = round(len(order) * test), round(len(order) * val)
    picked = [examples[i] for i in order]
    return {"test": picked[:n_test], "val": picked[n_test:n_test + n_val], "train": picked[n_test + n_val:]}


# -- model inputs -----------------------------------------------------------------------------------
def encode(tokenizer: Any, examples: list[Example], p: TextClassifierParams) -> dict[str, torch.Tensor]:
    """Token ids and targets for a list of examples (span targets: token start and end, -1 if truncated)."""
    if p.task == "classification":
        batch = tokenizer([e.text for e in examples], truncation=True, max_length=p.max_length, padding=True,
                          return_tensors="pt")
        batch["labels"] = torch.tensor([e.label for e in examples])
        return dict(batch)
    batch = tokenizer([e.text for e in examples], truncation=True, max_length=p.max_length, padding=True,
                      return_offsets_mapping=True, return_tensors="pt")
    starts, ends = [], []
    for row, example in enumerate(examples):
        start_token, end_token = _token_span(batch["offset_mapping"][row].tolist(), example.span_start,
                                             example.span_start + len(example.span))
        starts.append(start_token)
        ends.append(end_token)
    batch["start_positions"] = torch.tensor(starts)
    batch["end_positions"] = torch.tensor(ends)
    return dict(batch)


def _token_span(offsets: list[list[int]], char_start: int, char_end: int) -> tuple[int, int]:
    start = end = -1
    for index, (begin, finish) in enumerate(offsets):
        if finish <= begin:   # special tokens and padding
            continue
        if start < 0 and finish > char_start:
            start = index
        if begin < char_end:
            end = index
    if start < 0 or end < start or offsets[end][1] < char_end:
        return -1, -1     # the span was cut off by max_length
    return start, end


def span_text(context: str, offsets: list[list[int]], start: int, end: int) -> str:
    return context[offsets[start][0]:offsets[end][1]]


def _normalize(text: str) -> list[str]:
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return text.split()


def exact_match(predicted: str, truth: str) -> float:
    return float(_normalize(predicted) == _normalize(truth))


def token_f1(predicted: str, truth: str) -> float:
    """SQuAD's token-overlap F1 between a predicted and a true span."""
    pred, gold = _normalize(predicted), _normalize(truth)
    common = sum((Counter(pred) & Counter(gold)).values())
    if not pred or not gold or not common:
        return float(pred == gold)
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def macro_f1(predicted: list[int], truth: list[int]) -> float:
    """Unweighted mean of per-label F1 over the labels that occur in the truth or the predictions."""
    scores = []
    for label in sorted(set(truth) | set(predicted)):
        tp = sum(1 for p, t in zip(predicted, truth, strict=True) if p == label and t == label)
        fp = sum(1 for p, t in zip(predicted, truth, strict=True) if p == label and t != label)
        fn = sum(1 for p, t in zip(predicted, truth, strict=True) if p != label and t == label)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores) if scores else 0.0
