"""gRPC servicer of the result-store."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
from prometheus_client import Counter

from ehrlab.core.db import Database
from ehrlab.core.errors import SpecError
from ehrlab.core.wire import from_struct, from_timestamp, to_timestamp
from ehrlab.results import store
from ehrlab.v1 import common_pb2, result_store_pb2, result_store_pb2_grpc

ROWS = Counter("ehrlab_result_rows_total", "Result rows stored", ["kind"])
POINTS = Counter("ehrlab_metric_points_total", "Metric points stored")
STATUSES = Counter("ehrlab_status_reports_total", "Task status reports received")
_TABLES = {result_store_pb2.QUERY_TABLE_UNSPECIFIED: store.RESULTS, result_store_pb2.QUERY_TABLE_RESULTS: store.RESULTS,
           result_store_pb2.QUERY_TABLE_METRICS: store.METRICS}
_STATE_FIELDS = {4: "succeeded", 5: "cached", 6: "failed", 7: "skipped", 8: "cancelled",
                 1: "pending", 2: "ready", 3: "running"}


def _abort_cancelled(context: grpc.ServicerContext) -> None:
    """Ends a client stream the client gave up on, before its transaction commits: it stores nothing."""
    context.abort(grpc.StatusCode.CANCELLED, "the client cancelled the stream; nothing was stored")


def _page_size(page: common_pb2.PageRequest) -> int:
    if page.page_size < 0:
        raise SpecError("must not be negative", path="page.page_size")
    return min(page.page_size or 100, 10_000)


class ResultStoreServicer(result_store_pb2_grpc.ResultStoreServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    def ReportStatus(self, request: result_store_pb2.ReportStatusRequest,
                     context: grpc.ServicerContext) -> result_store_pb2.ReportStatusResponse:
        now = store.now()
        statuses = []
        for i, s in enumerate(request.statuses):
            for field in ("task_id", "experiment_id"):
                if not getattr(s, field):
                    raise SpecError("is required", path=f"statuses[{i}].{field}")
            if s.state not in _STATE_FIELDS:
                raise SpecError(f"unknown task state {s.state}", path=f"statuses[{i}].state")
            if not 0.0 <= s.progress <= 1.0:
                raise SpecError(f"must be between 0 and 1, not {s.progress}", path=f"statuses[{i}].progress")
            statuses.append(store.Status(s.task_id, s.experiment_id, s.task_name, s.kind, s.state, s.attempt,
                                         s.message, s.progress, s.cache_hit, s.sequence, from_timestamp(s.time, now)))
        STATUSES.inc(len(statuses))
        return result_store_pb2.ReportStatusResponse(accepted=store.upsert_statuses(self.db, statuses))

    def ReportMetrics(self, request_iterator: Iterator[result_store_pb2.MetricBatch],
                      context: grpc.ServicerContext) -> result_store_pb2.ReportMetricsResponse:
        now = store.now()

        def rows() -> Iterator[store.MetricRow]:
            # consecutive points mostly share their labels (the task's) and their time (one step's
            # metrics): each distinct value is converted once (the hot loop of ingest)
            labels: dict[str, str] = {}
            labels_json = "{}"
            stamp, when = (0, 0), now
            try:
                for number, batch in enumerate(request_iterator, 1):
                    if not batch.task_id:
                        raise SpecError(f"batch {number} of the stream has no task id", path="task_id")
                    task = (batch.experiment_id, batch.task_id, batch.kind, batch.attempt)
                    for i, m in enumerate(batch.metrics):
                        if not m.name:
                            raise SpecError(f"batch {number} of the stream: a metric needs a name",
                                            path=f"metrics[{i}].name")
                        if (point_labels := dict(m.labels)) != labels:
                            labels, labels_json = point_labels, json.dumps(point_labels)
                        sent = m.time
                        if (sent.seconds, sent.nanos) != stamp:
                            stamp, when = (sent.seconds, sent.nanos), from_timestamp(sent, now)
                        yield (*task, m.name, m.step, m.value, when, labels_json)
            except grpc.RpcError:  # the request iterator raises it when the client cancels
                _abort_cancelled(context)

        def unless_cancelled() -> None:
            # A cancel may first look like the end of the stream (gRPC learns of it a moment later):
            # asked again once the COPY has ended, just before the commit.
            if not context.is_active():
                _abort_cancelled(context)

        accepted = store.insert_metrics(self.db, rows(), before_commit=unless_cancelled)
        POINTS.inc(accepted)
        return result_store_pb2.ReportMetricsResponse(accepted=accepted)

    def PutResults(self, request: result_store_pb2.PutResultsRequest,
                   context: grpc.ServicerContext) -> result_store_pb2.PutResultsResponse:
        tasks = []
        for i, t in enumerate(request.tasks):
            for field in ("experiment_id", "task_id", "kind"):
                if not getattr(t, field):
                    raise SpecError("is required", path=f"tasks[{i}].{field}")
            tasks.append(store.TaskRows(t.experiment_id, t.task_id, t.task_name, t.kind, dict(t.labels),
                                        [from_struct(r.values) for r in t.rows], t.cache_hit))
        accepted = store.put_results(self.db, tasks)
        for t in tasks:
            ROWS.labels(t.kind).inc(len(t.rows))
        return result_store_pb2.PutResultsResponse(accepted=accepted)

    def Query(self, request: result_store_pb2.QueryRequest,
              context: grpc.ServicerContext) -> result_store_pb2.QueryResponse:
        if request.table not in _TABLES:
            raise SpecError(f"unknown table {request.table}", path="table")
        table = _TABLES[request.table]
        rows, token = store.query(self.db, table=table, experiment_id=request.experiment_id, kind=request.kind,
                                  task_id=request.task_id, labels=dict(request.labels),
                                  metric_name=request.metric_name, page_size=_page_size(request.page),
                                  page_token=request.page.page_token)
        response = result_store_pb2.QueryResponse(next_page_token=token)
        for row in rows:  # built in place: a page of 1,000 rows costs a few milliseconds
            out = response.rows.add(experiment_id=row["experiment_id"], task_id=row["task_id"],
                                    task_name=row["task_name"], kind=row["kind"], labels=row["labels"])
            out.values.update(row["values"] if table == store.RESULTS
                              else {"name": row["name"], "step": row["step"], "value": row["value"]})
            out.time.FromDatetime(row["time"])
        return response

    def Progress(self, request: result_store_pb2.ProgressRequest,
                 context: grpc.ServicerContext) -> result_store_pb2.ProgressResponse:
        if not request.experiment_id:
            raise SpecError("is required", path="experiment_id")
        counts, last, recent = store.progress(self.db, request.experiment_id)
        by_name = {_STATE_FIELDS[state]: n for state, n in counts.items() if state in _STATE_FIELDS}
        total = sum(by_name.values())
        finished = sum(n for state, n in counts.items() if state in store.FINISHED_STATES)
        return result_store_pb2.ProgressResponse(
            counts=common_pb2.TaskCounts(total=total, **by_name), ratio=finished / total if total else 0.0,
            last_update=to_timestamp(last),
            recent=[result_store_pb2.TaskStatus(
                experiment_id=r["experiment_id"], task_id=r["task_id"], task_name=r["task_name"], kind=r["kind"],
                state=r["state"], attempt=r["attempt"], message=r["message"], progress=r["progress"],
                sequence=r["sequence"], time=to_timestamp(r["updated_at"]), cache_hit=r["cache_hit"]) for r in recent])

    def RegisterArtifacts(self, request: result_store_pb2.RegisterArtifactsRequest,
                          context: grpc.ServicerContext) -> result_store_pb2.RegisterArtifactsResponse:
        entries = []
        for i, record in enumerate(request.artifacts):
            a = record.artifact
            for field in ("dataset", "kind", "key", "digest"):
                if not getattr(a, field):
                    raise SpecError("is required", path=f"artifacts[{i}].artifact.{field}")
            entries.append(store.ArtifactEntry(
                a.dataset, a.kind, a.key, a.uri, a.digest, a.size_bytes, record.task_id,
                [{"path": f.path, "size": f.size_bytes, "sha256": f.sha256} for f in record.files]))
        return result_store_pb2.RegisterArtifactsResponse(accepted=store.register_artifacts(self.db, entries))

    def LookupArtifact(self, request: result_store_pb2.LookupArtifactRequest,
                       context: grpc.ServicerContext) -> result_store_pb2.LookupArtifactResponse:
        rows, token = store.lookup_artifacts(self.db, key=request.key, dataset=request.dataset, kind=request.kind,
                                             page_size=_page_size(request.page), page_token=request.page.page_token)
        return result_store_pb2.LookupArtifactResponse(
            artifacts=[common_pb2.ArtifactRef(uri=r["uri"], digest=r["digest"], dataset=r["dataset"], kind=r["kind"],
                                              key=r["key"], size_bytes=r["size_bytes"]) for r in rows],
            next_page_token=token)
