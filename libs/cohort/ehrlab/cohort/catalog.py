"""The dataset catalog behind the data-prep service: which cohorts exist, what they hold, a look inside.

Two sources, both listed by `Catalog.datasets()`:
- artifacts: the MEDS outputs of the cohort task kinds (COHORT_KINDS) in the artifact store, at
  `artifacts/{dataset}/{kind}/{key}/`; id "{dataset}/{kind}/{key}". Only complete artifacts (manifest and
  every file present) are listed.
- registered: datasets a user has on disk, named in `{home}/datasets.yaml`::

      datasets:
        my_meds: /data/meds                                # a MEDS dataset
        mimic: {path: /data/mimic-iii, format: mimic3}     # MIMIC-III CSVs, converted on first use

  id: the name (names may not contain '/', so they never collide with artifact ids).

Reading a dataset from a remote store downloads what is needed (its summary, or the shards a preview
reads) into `{home}/cache/data-prep/`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import Field, field_validator

from ehrlab.cohort import meds, mimic3
from ehrlab.core.artifacts import ArtifactStore, open_store
from ehrlab.core.artifacts.manifest import MANIFEST, Manifest, load_complete
from ehrlab.core.config import SpecModel, validate
from ehrlab.core.errors import NotFoundError, SpecError

COHORT_KINDS = ("simulate_cohort", "import_meds", "import_mimic3", "sample_cohort")
REGISTRY_FILE = "datasets.yaml"
MAX_PREVIEW = 1000
DEFAULT_PREVIEW = 10


class RegisteredDataset(SpecModel):
    path: str
    format: Literal["meds", "mimic3"] = "meds"


class Registry(SpecModel):
    datasets: dict[str, RegisteredDataset] = Field(default_factory=dict)

    @field_validator("datasets", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: {"path": entry} if isinstance(entry, str) else entry for name, entry in value.items()}
        return value

    @field_validator("datasets")
    @classmethod
    def _names(cls, value: dict[str, RegisteredDataset]) -> dict[str, RegisteredDataset]:
        for name in value:
            if not name or "/" in name:
                raise ValueError(f"dataset name {name!r} must be non-empty and without '/'")
        return value


@dataclass(frozen=True)
class Dataset:
    """One catalog entry. `prefix` is set for artifacts, `path` for registered datasets."""

    id: str
    uri: str
    format: str
    kind: str
    prefix: str = ""
    path: str = ""


@dataclass(frozen=True)
class Description:
    dataset: Dataset
    name: str
    summary: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Preview:
    subject_id: int
    events: pa.Table                      # the subject's rows in meds.DATA_SCHEMA
    summary: dict[str, Any]


class Catalog:
    def __init__(self, store: ArtifactStore | str, home: str | Path) -> None:
        self.store = open_store(store) if isinstance(store, str) else store
        self.home = Path(home)
        self.cache = self.home / "cache" / "data-prep"

    # -- listing ------------------------------------------------------------------------------------------
    def registered(self) -> dict[str, RegisteredDataset]:
        path = self.home / REGISTRY_FILE
        if not path.is_file():
            return {}
        try:
            content = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SpecError(f"malformed YAML: {exc}", source=str(path)) from None
        return validate(Registry, content, source=str(path)).datasets

    def _artifact_prefixes(self) -> list[str]:
        local = self.store.local_path("artifacts")
        if local is not None:
            found = [p.parent.relative_to(local.parent).as_posix()
                     for kind in COHORT_KINDS for p in local.glob(f"*/{kind}/*/{MANIFEST}")]
        else:
            found = [key.rsplit("/", 1)[0] for key, _ in self.store.list("artifacts/")
                     if key.endswith(f"/{MANIFEST}") and key.count("/") == 4 and key.split("/")[2] in COHORT_KINDS]
        return sorted(found)

    def datasets(self) -> list[Dataset]:
        entries = []
        for prefix in self._artifact_prefixes():
            if load_complete(self.store, prefix) is None:
                continue
            _, dataset, kind, key = prefix.split("/")
            entries.append(Dataset(id=f"{dataset}/{kind}/{key}", uri=self.store.uri_for(prefix), format="meds",
                                   kind=kind, prefix=prefix))
        for name, entry in sorted(self.registered().items()):
            entries.append(Dataset(id=name, uri=Path(entry.path).absolute().as_uri(), format=entry.format,
                                   kind="registered", path=entry.path))
        return entries

    def get(self, dataset_id: str) -> Dataset:
        if not dataset_id:
            raise SpecError("a dataset id is required", path="id")
        if "/" in dataset_id:
            parts = dataset_id.split("/")
            if len(parts) != 3 or parts[1] not in COHORT_KINDS or not all(parts):
                raise NotFoundError(f"no dataset {dataset_id!r} (artifact ids are dataset/kind/key with kind one "
                                    f"of {', '.join(COHORT_KINDS)})")
            prefix = f"artifacts/{dataset_id}"
            if load_complete(self.store, prefix) is None:
                raise NotFoundError(f"no complete dataset artifact {dataset_id!r} in {self.store.uri}")
            return Dataset(id=dataset_id, uri=self.store.uri_for(prefix), format="meds", kind=parts[1], prefix=prefix)
        entry = self.registered().get(dataset_id)
        if entry is None:
            raise NotFoundError(f"no dataset {dataset_id!r} (not in {self.home / REGISTRY_FILE})")
        return Dataset(id=dataset_id, uri=Path(entry.path).absolute().as_uri(), format=entry.format,
                       kind="registered", path=entry.path)

    # -- reading ------------------------------------------------------------------------------------------
    def _manifest(self, dataset: Dataset) -> Manifest:
        manifest = load_complete(self.store, dataset.prefix)
        if manifest is None:
            raise NotFoundError(f"dataset artifact {dataset.id!r} disappeared or is incomplete")
        return manifest

    def _root(self, dataset: Dataset, files: Sequence[str] | None = None) -> Path:
        """A local MEDS root for the dataset; for a remote artifact, `files` (default all) are downloaded."""
        if dataset.path:
            path = Path(dataset.path)
            if not path.exists():
                raise NotFoundError(f"dataset {dataset.id!r}: {path} does not exist")
            return mimic3.to_meds(path, self.cache / "mimic3") if dataset.format == "mimic3" else path
        in_place = self.store.local_path(dataset.prefix)
        if in_place is not None:
            return in_place
        manifest = self._manifest(dataset)
        dest = self.cache / dataset.prefix
        wanted = set(files) if files is not None else {entry.path for entry in manifest.files}
        for entry in manifest.files:
            target = dest / entry.path
            if entry.path in wanted and not (target.is_file() and target.stat().st_size == entry.size):
                self.store.get_file(f"{dataset.prefix}/{entry.path}", target)
        return dest

    def _remote_files(self, dataset: Dataset, *, shards: int | None) -> list[str]:
        """Metadata files plus the first `shards` data shards (all when None) of a remote artifact."""
        paths = sorted(entry.path for entry in self._manifest(dataset).files)
        data = [p for p in paths if p.startswith("data/") and p.endswith(".parquet")]
        return [p for p in paths if p.startswith("metadata/")] + (data if shards is None else data[:shards])

    def _local(self, dataset: Dataset) -> bool:
        return bool(dataset.path) or self.store.local_path(dataset.prefix) is not None

    def describe(self, dataset_id: str) -> Description:
        dataset = self.get(dataset_id)
        if self._local(dataset):
            root = self._root(dataset)
        else:
            root = self._root(dataset, self._remote_files(dataset, shards=0))
            if not (root / meds.SUMMARY_FILE).is_file():
                root = self._root(dataset, self._remote_files(dataset, shards=None))
        summary = meds.describe(root)
        metadata_path = root / "metadata" / "dataset.json"
        metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
        return Description(dataset, str(metadata.get("dataset_name") or dataset.id), summary, metadata)

    def preview(self, dataset_id: str, *, limit: int = 0, subject_ids: Sequence[int] = ()) -> list[Preview]:
        """The first `limit` patients (default 10, at most 1000), or those of `subject_ids`, with their events."""
        if limit < 0 or limit > MAX_PREVIEW:
            raise SpecError(f"limit must be between 0 and {MAX_PREVIEW}, got {limit}", path="limit")
        limit = limit or DEFAULT_PREVIEW
        dataset = self.get(dataset_id)
        shards = None if subject_ids or self._local(dataset) else 1
        root = self._root(dataset, None if self._local(dataset) else self._remote_files(dataset, shards=shards))
        wanted = list(dict.fromkeys(int(s) for s in subject_ids)) or None
        previews: list[Preview] = []
        for table in meds.iter_shards(root, subject_ids=wanted):
            subjects = table.column("subject_id").to_numpy()
            for subject in list(dict.fromkeys(subjects.tolist()))[: limit - len(previews)]:
                rows = table.filter(pc.equal(table.column("subject_id"), subject))
                stamps = rows.column("time").cast(pa.int64()).fill_null(-(1 << 62)).to_numpy()
                rows = rows.take(pa.array(np.argsort(stamps, kind="stable")))
                (patient,) = meds.patients_of(rows)
                previews.append(Preview(subject, rows, _summary(patient)))
            if len(previews) >= limit:
                break
        return previews


def _summary(patient: meds.Patient) -> dict[str, Any]:
    return {
        "birth": patient.birth.isoformat() if patient.birth else None,
        "sex": patient.sex,
        "death": patient.death.isoformat() if patient.death else None,
        "visits": len(patient.visits),
        "distinct_codes": len(set(patient.codes)),
        "age_at_last_visit": round(patient.visits[-1].age, 2) if patient.visits and patient.birth else None,
    }
