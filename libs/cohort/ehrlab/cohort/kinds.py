"""Task kinds of the cohort library (service data-prep). Only light imports here: the controller imports
this module to plan and hash; numpy/pyarrow load inside the run functions.

Every kind writes a MEDS dataset at the root of its artifact (data/, metadata/), so a downstream task
reads `ctx.inputs[name]` with `ehrlab.cohort.meds.read_patients`. Result rows carry the dataset summary.
"""

from __future__ import annotations

import os
from typing import Self

from pydantic import Field, model_validator

from ehrlab.core.config import SpecModel
from ehrlab.core.context import TaskContext
from ehrlab.core.errors import SpecError
from ehrlab.core.kinds import Resources, TaskKind

_MEDS_CODE = ("ehrlab.cohort.meds", "ehrlab.cohort.icd9")


class SimulateCohortParams(SpecModel):
    """See ehrlab.cohort.simulator.SimulationConfig; the window is 1 Jan start_year to 1 Jan end_year + 1."""

    n_patients: int = Field(ge=1, le=100_000_000)
    seed: int = Field(0, ge=0)
    start_year: int = Field(2010, gt=1900, lt=2200)
    end_year: int = Field(2023, gt=1900, lt=2200)
    shard_size: int = Field(50_000, ge=1, lt=1 << 27)
    first_subject_id: int = Field(1, ge=0)
    late_entry: float = Field(0.3, ge=0, le=1)
    early_exit: float = Field(0.1, ge=0, le=1)
    dataset_name: str = "simulated"

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.end_year < self.start_year:
            raise ValueError(f"end_year {self.end_year} is before start_year {self.start_year}")
        return self


def _workers() -> int:
    """Processes for simulation: up to 2, never more than the cores this process may use, and 1 inside a
    daemonic multiprocessing worker (which may not start processes of its own)."""
    import multiprocessing

    if multiprocessing.current_process().daemon:
        return 1
    return max(1, min(2, len(os.sched_getaffinity(0))))


def simulate_cohort(ctx: TaskContext) -> None:
    from ehrlab.cohort.simulator import SimulationConfig, simulate

    p: SimulateCohortParams = ctx.params  # type: ignore[assignment]
    config = SimulationConfig(**p.model_dump(exclude={"dataset_name"}))
    summary = simulate(config, ctx.output_dir, workers=_workers(), dataset_name=p.dataset_name,
                       progress=lambda done, total: ctx.progress(done, total, f"{done}/{total} shards"))
    ctx.add_results([{"kind": "simulate_cohort", **summary}])


class ImportMedsParams(SpecModel):
    dataset_name: str = Field("", description="name recorded in metadata (default: the source's)")


def import_meds(ctx: TaskContext) -> None:
    from ehrlab.cohort.meds import import_dataset

    p: ImportMedsParams = ctx.params  # type: ignore[assignment]
    summary = import_dataset(ctx.inputs["source"], ctx.output_dir, dataset_name=p.dataset_name or None)
    ctx.add_results([{"kind": "import_meds", **summary}])


class ImportMimic3Params(SpecModel):
    shard_size: int = Field(50_000, ge=1)
    dataset_name: str = "mimic3"


def import_mimic3(ctx: TaskContext) -> None:
    from ehrlab.cohort.mimic3 import convert

    p: ImportMimic3Params = ctx.params  # type: ignore[assignment]
    summary = convert(ctx.inputs["source"], ctx.output_dir, shard_size=p.shard_size, dataset_name=p.dataset_name)
    ctx.add_results([{"kind": "import_mimic3", **summary}])


def check_fraction_or_size(fraction: float | None, size: int | None) -> None:
    """SpecError (a ValueError, so pydantic reports it too) unless exactly one of fraction and size is given."""
    if (fraction is None) == (size is None):
        got = "both" if fraction is not None else "neither"
        raise SpecError(f"give exactly one of 'fraction' and 'size' (got {got})")


class SampleCohortParams(SpecModel):
    """Exactly one of fraction and size. The causal planner sets seed = base_seed + outer run."""

    fraction: float | None = Field(None, gt=0, le=1)
    size: int | None = Field(None, ge=1)
    seed: int = Field(ge=0)
    dataset_name: str = "sample"

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        check_fraction_or_size(self.fraction, self.size)
        return self


def sample_cohort(ctx: TaskContext) -> None:
    from ehrlab.cohort.sampling import sample_dataset

    p: SampleCohortParams = ctx.params  # type: ignore[assignment]
    summary = sample_dataset(ctx.inputs["cohort"], ctx.output_dir, fraction=p.fraction, size=p.size, seed=p.seed,
                             dataset_name=p.dataset_name)
    ctx.add_results([{"kind": "sample_cohort", "seed": p.seed, "fraction": p.fraction, "size": p.size, **summary}])


KINDS = (
    TaskKind(name="simulate_cohort", service="data-prep", params=SimulateCohortParams,
             run="ehrlab.cohort.kinds:simulate_cohort",
             code=("ehrlab.cohort.kinds", "ehrlab.cohort.simulator", "ehrlab.cohort.clinical", *_MEDS_CODE),
             resources=Resources(cpu=2, memory="3Gi"), timeout_s=3600,
             description="Simulates a synthetic EHR cohort (ICD-9-CM diagnoses) as a MEDS dataset."),
    TaskKind(name="import_meds", service="data-prep", params=ImportMedsParams, run="ehrlab.cohort.kinds:import_meds",
             inputs=("source",), code=("ehrlab.cohort.kinds", *_MEDS_CODE), resources=Resources(cpu=1, memory="2Gi"),
             description="Validates any MEDS dataset and stores it in the platform's MEDS form."),
    TaskKind(name="import_mimic3", service="data-prep", params=ImportMimic3Params,
             run="ehrlab.cohort.kinds:import_mimic3", inputs=("source",),
             code=("ehrlab.cohort.kinds", "ehrlab.cohort.mimic3", *_MEDS_CODE),
             resources=Resources(cpu=1, memory="4Gi"),
             description="Converts MIMIC-III PATIENTS/ADMISSIONS/DIAGNOSES_ICD CSVs to MEDS."),
    TaskKind(name="sample_cohort", service="data-prep", params=SampleCohortParams,
             run="ehrlab.cohort.kinds:sample_cohort", inputs=("cohort",),
             code=("ehrlab.cohort.kinds", "ehrlab.cohort.sampling", *_MEDS_CODE),
             resources=Resources(cpu=1, memory="2Gi"),
             description="Samples subjects without replacement (fraction XOR size, seeded) and writes their MEDS."),
)
