"""A tiny MEDS dataset written by hand, so the causal tests need nothing but files."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CODES = [f"ICD9CM/{code}" for code in (
    "4019", "25000", "2724", "4280", "42731", "41401", "5849", "51881", "5990", "2859", "496", "2449", "53081",
    "311", "30000", "3051", "V5861", "2720", "486", "40390", "585", "2762", "2761", "78650", "7802", "V4581",
    "41071", "4241", "2809", "5859", "71590", "73300", "27800", "32723", "34690", "3659", "36650", "6000",
    "V1582", "4271")]


def write_meds(root: Path, n_patients: int = 400, *, seed: int = 0, shards: int = 2, deaths: float = 0.05,
               columns: tuple[str, ...] = ("subject_id", "time", "code", "numeric_value")) -> Path:
    """Patients born 1930-2005 with visits 2000-2021 whose codes cluster by a per-patient risk profile."""
    rng = np.random.default_rng(seed)
    popularity = rng.dirichlet(np.full(len(CODES), 0.6))
    rows: list[tuple[int, datetime | None, str, float | None]] = []
    for subject in range(1, n_patients + 1):
        birth = datetime(1930, 1, 1) + timedelta(days=int(rng.integers(0, 75 * 365)))
        rows.append((subject, birth, "MEDS_BIRTH", None))
        rows.append((subject, None, "GENDER//" + ("F" if rng.random() < 0.5 else "M"), None))
        profile = rng.dirichlet(popularity * 40)
        for _ in range(int(rng.integers(1, 9))):
            visit = datetime(2000, 1, 1) + timedelta(days=int(rng.integers(0, 22 * 365)))
            if visit <= birth:
                continue
            for code in rng.choice(CODES, size=int(rng.integers(1, 5)), p=profile, replace=False):
                rows.append((subject, visit, str(code), None))
            rows.append((subject, visit, "LAB//glucose", float(rng.normal(100, 20))))
        if rng.random() < deaths:
            rows.append((subject, datetime(2010, 1, 1) + timedelta(days=int(rng.integers(0, 15 * 365))),
                         "MEDS_DEATH", None))
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    subjects = np.array([r[0] for r in rows])
    for shard in range(shards):
        chosen = [r for r, s in zip(rows, subjects, strict=True) if s % shards == shard]
        table = pa.table({
            "subject_id": pa.array([r[0] for r in chosen], pa.int64()),
            "time": pa.array([r[1] for r in chosen], pa.timestamp("us")),
            "code": pa.array([r[2] for r in chosen], pa.string()),
            "numeric_value": pa.array([r[3] for r in chosen], pa.float32()),
        })
        pq.write_table(table.select(list(columns)), data / f"{shard}.parquet")
    return root
