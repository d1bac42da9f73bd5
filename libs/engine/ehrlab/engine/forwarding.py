"""Carries what the engine learns to the result-store (and to local result files), off the engine thread.

Task status changes are coalesced per task (only the newest matters) and sent in batches with
ReportStatus. A finished task's result rows (results.jsonl in its artifact) are sent with PutResults
and appended to the experiment's local JSONL/CSV files, then the engine is told, so an experiment
only counts as finished once its results can be queried. If the result-store is unreachable,
everything waits and is retried with backoff: nothing is dropped, and a restarted controller sends
it again (PutResults and ReportStatus are idempotent).
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from ehrlab.core.artifacts import ArtifactStore
from ehrlab.core.artifacts.manifest import Manifest, load_complete, read_results
from ehrlab.core.wire import to_struct
from ehrlab.engine import convert
from ehrlab.engine.model import CACHED, ExperimentRecord, TaskRecord
from ehrlab.v1 import common_pb2, result_store_pb2, result_store_pb2_grpc

log = logging.getLogger("ehrlab.forwarding")
_BATCH = 2000


@dataclass
class _ResultJob:
    experiment_id: str
    experiment: str
    task_id: str
    task_name: str
    kind: str
    dataset: str
    prefix: str
    labels: dict[str, str]
    cached: bool
    files: dict[str, str]            # the spec's `results:` (jsonl/csv paths)
    manifest: Manifest | None        # known when the engine just verified it; else read again


class Forwarder:
    def __init__(self, engine: Any, artifacts: ArtifactStore, channel: grpc.Channel | None, workspace: Path) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.stub = result_store_pb2_grpc.ResultStoreStub(channel) if channel is not None else None
        self.workspace = workspace
        self._statuses: OrderedDict[str, result_store_pb2.TaskStatus] = OrderedDict()
        self._jobs: list[_ResultJob] = []
        self._lock = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="forwarder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        self._thread.join(timeout)

    # --- called on the engine thread ---------------------------------------------------------------

    def status(self, exp: ExperimentRecord, task: TaskRecord) -> None:
        if self.stub is None:
            return
        message = result_store_pb2.TaskStatus(
            experiment_id=exp.id, task_id=task.id, task_name=task.name, kind=task.kind, state=task.state,
            attempt=task.launches, message=task.error[:2000], sequence=time.time_ns(),
            time=convert.timestamp(task.finished_at or task.started_at or task.created_at),
            cache_hit=task.state == CACHED)
        with self._lock:
            self._statuses[task.id] = message
            self._statuses.move_to_end(task.id)
            self._lock.notify()

    def resync(self, exp: ExperimentRecord) -> None:
        """Sends every task's current status again (level-triggered: the result-store converges)."""
        for task in exp.tasks.values():
            self.status(exp, task)

    def results(self, exp: ExperimentRecord, task: TaskRecord, manifest: Manifest | None = None) -> None:
        files = exp.spec.get("results") or {}
        job = _ResultJob(exp.id, exp.name, task.id, task.name, task.kind, task.dataset, task.prefix,
                         dict(task.labels), task.state == CACHED,
                         {k: v for k, v in files.items() if k in ("jsonl", "csv") and v}, manifest)
        with self._lock:
            self._jobs.append(job)
            self._lock.notify()

    # --- the forwarding thread ---------------------------------------------------------------------

    def _loop(self) -> None:
        delay = 0.1
        while True:
            with self._lock:
                while not (self._statuses or self._jobs or self._stop):
                    self._lock.wait()
                if self._stop and not (self._statuses or self._jobs):
                    return
                statuses = list(self._statuses.values())[:_BATCH]
                jobs = self._jobs[:1000]
            try:
                if statuses:
                    self._send_statuses(statuses)
                if jobs:
                    self._send_results(jobs)
                delay = 0.1
            except grpc.RpcError as exc:
                log.warning("result-store call failed (%s: %s); retrying in %.1fs", exc.code().name, exc.details(),
                            delay)
                if self._stop:
                    return
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _send_statuses(self, statuses: list[result_store_pb2.TaskStatus]) -> None:
        assert self.stub is not None
        self.stub.ReportStatus(result_store_pb2.ReportStatusRequest(statuses=statuses), timeout=30)
        with self._lock:
            for status in statuses:  # drop what was sent unless a newer status replaced it meanwhile
                if self._statuses.get(status.task_id) is status:
                    del self._statuses[status.task_id]

    def _send_results(self, jobs: list[_ResultJob]) -> None:
        """One RegisterArtifacts and one PutResults call for a batch of finished tasks."""
        artifacts, results, local = [], [], []
        for job in jobs:
            manifest = job.manifest or load_complete(self.artifacts, job.prefix)
            if manifest is None:
                continue  # deleted since: nothing to forward, the task's state says what happened
            if not job.cached:  # a cached artifact was registered by the experiment that produced it
                artifacts.append(result_store_pb2.ArtifactRecord(
                    artifact=common_pb2.ArtifactRef(
                        uri=self.artifacts.uri_for(job.prefix), digest=manifest.digest, dataset=job.dataset,
                        kind=job.kind, key=job.prefix.rsplit("/", 1)[1], size_bytes=manifest.size),
                    task_id=job.task_id,
                    files=[common_pb2.ArtifactFile(path=f.path, size_bytes=f.size, sha256=f.sha256)
                           for f in manifest.files]))
            rows = read_results(self.artifacts, job.prefix, manifest)
            if rows:
                results.append(result_store_pb2.TaskResults(
                    experiment_id=job.experiment_id, task_id=job.task_id, task_name=job.task_name, kind=job.kind,
                    labels=job.labels, cache_hit=job.cached,
                    rows=[common_pb2.ResultRow(values=to_struct(r)) for r in rows]))
                if job.files:
                    local.append((job, rows))
        if self.stub is not None:
            if artifacts:
                self.stub.RegisterArtifacts(result_store_pb2.RegisterArtifactsRequest(artifacts=artifacts), timeout=60)
            if results:
                self.stub.PutResults(result_store_pb2.PutResultsRequest(tasks=results), timeout=120)
        for job, rows in local:
            self._append_local(job, rows)
        with self._lock:
            self._jobs = self._jobs[len(jobs):]  # jobs were taken from the front; new ones are appended
        ids = [j.task_id for j in jobs]
        self.engine.post(lambda: self.engine.results_forwarded(ids))

    def _append_local(self, job: _ResultJob, rows: list[dict[str, Any]]) -> None:
        base = {"run_id": job.experiment_id, "experiment": job.experiment, "dataset_id": job.dataset,
                "task": job.task_name, "kind": job.kind}
        # the platform's columns come first; a row's own value under the same name is kept as result.<name>
        records = [{**base, **{f"result.{k}" if k in base else k: v for k, v in row.items()}} for row in rows]
        for fmt, name in job.files.items():
            path = Path(name) if Path(name).is_absolute() else self.workspace / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a+", newline="") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                if fmt == "jsonl":
                    for record in records:
                        handle.write(json.dumps(record, default=str) + "\n")
                else:
                    _append_csv(handle, records)


def _append_csv(handle: io.TextIOWrapper, records: list[dict[str, Any]]) -> None:
    """Appends rows; when they bring new columns the file is rewritten with the widened header."""
    handle.seek(0)
    existing = list(csv.DictReader(handle))
    header = list(existing[0].keys()) if existing else []
    if not header:
        handle.seek(0)
        first = handle.readline()
        header = next(csv.reader([first])) if first.strip() else []
    new_columns = [k for r in records for k in r if k not in header]
    columns = header + list(dict.fromkeys(new_columns))
    cells = [{k: _cell(v) for k, v in r.items()} for r in records]
    if new_columns or not header:
        handle.seek(0)
        handle.truncate()
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(existing)
    else:
        handle.seek(0, io.SEEK_END)
        writer = csv.DictWriter(handle, fieldnames=columns)
    writer.writerows(cells)


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else value
