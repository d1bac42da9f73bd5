"""Result-store ingest through the ReportMetrics stream into PostgreSQL, and Query latency over 1,000,000 rows.

    .venv/bin/python -m benchmarks.core_result_ingest [--rows 1000000] [--streams 2] [--queries 200]

A private embedded stack runs PostgreSQL (durable, as `ehrlab up` starts it) and the result-store
service. The points (4 metrics x steps of 40 tasks in each of 5 experiments, one experiment after
the other, two labels each, 1,000 per batch) are serialised before the clock starts, so the figures
are the service's and the database's.
- bulk: `--streams` concurrent ReportMetrics streams share `--rows` points (each stream one COPY);
- reporter: one ReportMetrics call per batch of 1,000 points from 4 threads, as running tasks send them.
Then Query (the gRPC call a client makes) is repeated `--queries` times per filter over the first
`--rows` points: p50/p99 latency. Targets: >= 50,000 rows/s ingest; a filtered Query < 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from google.protobuf import timestamp_pb2

from benchmarks.harness import (
    CpuMeter,
    Stopwatch,
    embedded_stack,
    hot_functions,
    machine,
    percentile,
    py_spy,
    stack_groups,
    table,
)
from ehrlab.core.channels import open_channel
from ehrlab.v1 import common_pb2, result_store_pb2, result_store_pb2_grpc

NAMES = ("loss", "accuracy", "lr", "grad_norm")
EXPERIMENTS, TASKS_PER_EXPERIMENT, BATCH = 5, 40, 1000
KINDS = ("train_catboost", "finetune_bert")
REPORT = "/ehrlab.v1.ResultStore/ReportMetrics"


def task_id(experiment: int, task: int) -> str:
    return f"x{experiment}-t{task}"


def serialized_batches(rows: int, offset: int = 0) -> list[bytes]:
    """`rows` points as serialised MetricBatch messages of BATCH points (a task's steps, all four names).

    Experiments come one after another, as they run; the tasks of one experiment report interleaved.
    With the defaults, 1,000,000 points are 5 experiments x 40 tasks x 4 metrics x 1,250 steps.
    """
    steps_per_batch = BATCH // len(NAMES)
    batches_per_experiment = max(TASKS_PER_EXPERIMENT, rows // BATCH // EXPERIMENTS)
    start = datetime(2026, 11, 23, tzinfo=UTC)
    batches = []
    for number in range(offset, offset + rows // BATCH):
        experiment, within = divmod(number, batches_per_experiment)
        round_, index = divmod(within, TASKS_PER_EXPERIMENT)
        labels = {"fold": str(index % 5), "arm": KINDS[index % 2].split("_")[1]}
        metrics = []
        for step in range(round_ * steps_per_batch, (round_ + 1) * steps_per_batch):
            stamp = timestamp_pb2.Timestamp()
            stamp.FromDatetime(start + timedelta(seconds=step))
            metrics += [result_store_pb2.Metric(name=name, value=1.0 / (step + 1) + i, step=step, time=stamp,
                                                labels=labels) for i, name in enumerate(NAMES)]
        batches.append(result_store_pb2.MetricBatch(
            experiment_id=f"x{experiment}", task_id=task_id(experiment, index), kind=KINDS[index % 2], attempt=1,
            metrics=metrics).SerializeToString())
    return batches


def ingest(channel: grpc.Channel, batches: list[bytes], streams: int, calls: str) -> int:
    """Sends the batches on `streams` concurrent streams ('bulk') or one call per batch ('reporter')."""
    report = channel.stream_unary(REPORT, request_serializer=None,
                                  response_deserializer=result_store_pb2.ReportMetricsResponse.FromString)
    if calls == "bulk":
        shares = [batches[i::streams] for i in range(streams)]
        with ThreadPoolExecutor(streams) as pool:
            return sum(pool.map(lambda share: report(iter(share), timeout=3600).accepted, shares))
    with ThreadPoolExecutor(streams) as pool:
        return sum(pool.map(lambda one: report(iter([one]), timeout=600).accepted, batches))


def query_latencies(stub: result_store_pb2_grpc.ResultStoreStub, request: result_store_pb2.QueryRequest,
                    repeats: int) -> tuple[list[float], int]:
    for _ in range(5):  # warm the caches and the plan
        stub.Query(request, timeout=60)
    seconds = []
    rows = 0
    for _ in range(repeats):
        start = time.perf_counter()
        rows = len(stub.Query(request, timeout=60).rows)
        seconds.append(time.perf_counter() - start)
    return seconds, rows


def query_cases(stub: result_store_pb2_grpc.ResultStoreStub) -> Iterator[tuple[str, result_store_pb2.QueryRequest]]:
    metrics = result_store_pb2.QUERY_TABLE_METRICS

    def page(size: int = 100, token: str = "") -> common_pb2.PageRequest:
        return common_pb2.PageRequest(page_size=size, page_token=token)

    latest = f"x{EXPERIMENTS - 1}"  # its rows come last: the case an id-ordered scan gets wrong
    yield "experiment + metric name (a loss curve)", result_store_pb2.QueryRequest(
        table=metrics, experiment_id=latest, metric_name="loss", page=page())
    yield "one task + metric name, 1,000 rows", result_store_pb2.QueryRequest(
        table=metrics, task_id=task_id(EXPERIMENTS - 1, 7), metric_name="loss", page=page(1000))
    yield "experiment (every metric)", result_store_pb2.QueryRequest(table=metrics, experiment_id=latest, page=page())
    yield "experiment + label", result_store_pb2.QueryRequest(
        table=metrics, experiment_id=latest, labels={"fold": "2"}, page=page())
    yield "experiment + metric name + label", result_store_pb2.QueryRequest(
        table=metrics, experiment_id=latest, metric_name="loss", labels={"fold": "2"}, page=page())
    yield "kind", result_store_pb2.QueryRequest(table=metrics, kind="finetune_bert", page=page())
    token = ""
    for _ in range(50):
        token = stub.Query(result_store_pb2.QueryRequest(table=metrics, experiment_id=latest, metric_name="loss",
                                                         page=page(100, token))).next_page_token
    yield "experiment + metric name, page 51", result_store_pb2.QueryRequest(
        table=metrics, experiment_id=latest, metric_name="loss", page=page(100, token))
    yield "experiment + label matching no row", result_store_pb2.QueryRequest(
        table=metrics, experiment_id=latest, labels={"fold": "9"}, page=page())
    yield "label matching no row", result_store_pb2.QueryRequest(table=metrics, labels={"fold": "9"}, page=page())
    yield "label matching a fifth of the rows", result_store_pb2.QueryRequest(
        table=metrics, labels={"fold": "2"}, page=page())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--reporter-rows", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--profile", type=Path, help="sample the result-store with py-spy; print its hottest functions")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    bulk = serialized_batches(args.rows)
    reporter = serialized_batches(args.reporter_rows, offset=len(bulk))
    ingest_rows, query_rows = [], []
    with embedded_stack(("result-store",)) as stack:
        channel = open_channel(stack.processes["result-store"].address)
        meter = CpuMeter(stack_groups(stack))
        service = stack.processes["result-store"].pid
        for calls, batches, streams in (("bulk", bulk, args.streams), ("reporter", reporter, 4)):
            clock = Stopwatch()
            meter.start()
            with clock.measure(), profiled(service, args.profile, f"ingest-{calls}"):
                accepted = ingest(channel, batches, streams, calls)
            used = meter.stop()
            ingest_rows.append({
                "calls": f"{calls}: {streams} {'streams' if calls == 'bulk' else 'threads'}", "rows": accepted,
                "seconds": clock.seconds, "rows/s": accepted / clock.seconds,
                "cpu s result-store": used["result-store"], "cpu s postgres": used["postgres"],
                "load 1m": clock.load})
            if calls == "bulk":  # queries run over exactly --rows points
                stub = result_store_pb2_grpc.ResultStoreStub(channel)
                _analyze(stack.database_url)
                for number, (name, request) in enumerate(query_cases(stub)):
                    clock = Stopwatch()
                    with clock.measure(), profiled(service, args.profile, f"query-{number}"):
                        seconds, rows = query_latencies(stub, request, args.queries)
                    query_rows.append({"filter": name, "rows back": rows,
                                       "p50 ms": 1000 * percentile(seconds, 50),
                                       "p99 ms": 1000 * percentile(seconds, 99), "max ms": 1000 * max(seconds),
                                       "load 1m": clock.load})
        channel.close()
    print(table(ingest_rows, title="\nReportMetrics ingest into PostgreSQL (target >= 50,000 rows/s)"))
    print(table(query_rows, title=f"\nQuery over {args.rows:,} metric rows, {args.queries} calls each "
                                  "(target < 50 ms)"))
    if args.profile:
        for raw in sorted(args.profile.glob("*.txt")):
            print(table(hot_functions(raw), title=f"\npy-spy, result-store, {raw.stem}: hottest functions"))


def profiled(pid: int, folder: Path | None, name: str) -> contextlib.AbstractContextManager[None]:
    return py_spy(pid, folder / f"{name}.txt") if folder else contextlib.nullcontext()


def _analyze(database_url: str) -> None:
    """Fresh planner statistics, as autovacuum would gather them shortly after a bulk load."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE results.metrics")


if __name__ == "__main__":
    main()
