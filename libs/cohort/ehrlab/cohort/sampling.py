"""Sampling a cohort: a seeded subset of a MEDS dataset's subjects, without replacement, written as MEDS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import meds
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ehrlab.cohort.kinds import check_fraction_or_size
from ehrlab.cohort.meds import iter_shards, subject_ids, write_dataset
from ehrlab.core.errors import SpecError

SAMPLED_IDS = "subject_ids.parquet"


def sample_ids(population: np.ndarray, *, fraction: float | None = None, size: int | None = None,
               seed: int) -> np.ndarray:
    """Sorted subject ids drawn without replacement: round(fraction * N) of them, or `size`.

    The same population, seed and fraction/size give the same sample; a different seed reshuffles.
    """
    check_fraction_or_size(fraction, size)
    population = np.unique(np.asarray(population, dtype=np.int64))
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise SpecError(f"fraction must be in (0, 1], got {fraction}", path="fraction")
        count = round(fraction * len(population))
    else:
        assert size is not None
        if size < 1:
            raise SpecError(f"size must be at least 1, got {size}", path="size")
        if size > len(population):
            raise SpecError(f"size {size} exceeds the {len(population)} subjects of the cohort (sampling is "
                            "without replacement)", path="size")
        count = size
    if count == 0:
        raise SpecError(f"the sampled cohort is empty: fraction {fraction} of {len(population)} subjects "
                        "rounds to 0", path="fraction")
    chosen = np.random.default_rng(seed).choice(len(population), size=count, replace=False)
    return np.sort(population[chosen])


def sample_dataset(source: str | Path, root: str | Path, *, fraction: float | None = None,
                   size: int | None = None, seed: int, dataset_name: str = "sample") -> dict[str, Any]:
    """Writes the sampled subjects' events (a MEDS dataset, splits kept) and SAMPLED_IDS under `root`."""
    population = subject_ids(source)
    if len(population) == 0:
        raise SpecError("the cohort has no subjects", source=str(source))
    chosen = sample_ids(population, fraction=fraction, size=size, seed=seed)
    splits_path = Path(source) / meds.subject_splits_filepath
    splits = None
    if splits_path.is_file():
        table = pq.read_table(splits_path)
        splits = dict(zip(table.column("subject_id").to_pylist(), table.column("split").to_pylist(), strict=True))
    tables = (t for t in iter_shards(source, subject_ids=chosen) if t.num_rows)
    summary = write_dataset(root, tables, dataset_name=dataset_name, etl_name="ehrlab.cohort.sampling",
                            splits=splits)
    pq.write_table(pa.table({"subject_id": pa.array(chosen, pa.int64())}), Path(root) / SAMPLED_IDS)
    return {**summary, "population": len(population), "sampled": len(chosen)}
