"""ReportMetrics: a client stream of batches, written with COPY, all or nothing; then read back with Query."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from ehrlab.v1 import result_store_pb2
from tests.resultstore.conftest import ResultStore, at, invalid_field, plain

METRICS = result_store_pb2.QUERY_TABLE_METRICS
NAMES = ("loss", "accuracy", "lr", "grad_norm")


def batch(task: str, first_step: int, steps: int, *, experiment_id: str = "x1", kind: str = "train",
          labels: dict[str, str] | None = None) -> result_store_pb2.MetricBatch:
    """`steps` steps of every metric in NAMES; value = step + index of the name / 10."""
    return result_store_pb2.MetricBatch(
        experiment_id=experiment_id, task_id=f"{experiment_id}-{task}", kind=kind, attempt=1,
        metrics=[result_store_pb2.Metric(name=name, value=step + i / 10, step=step, time=at(step),
                                         labels=labels or {})
                 for step in range(first_step, first_step + steps) for i, name in enumerate(NAMES)])


def send(store: ResultStore, batches: Iterator[result_store_pb2.MetricBatch] | list) -> int:
    return store.stub.ReportMetrics(iter(batches), timeout=120).accepted


def test_many_batches_on_one_stream_are_all_stored(result_store: ResultStore) -> None:
    # 24 batches of 1,000 points: more than the servicer buffers between COPY flushes
    batches = [batch(f"t{i % 3}", (i // 3) * 250, 250) for i in range(24)]
    assert send(result_store, batches) == 24_000
    assert result_store.count("metrics") == 24_000

    losses = result_store.query_all(page_size=5000, table=METRICS, experiment_id="x1", metric_name="loss")
    assert len(losses) == 6000
    assert Counter(r.task_id for r in losses) == {"x1-t0": 2000, "x1-t1": 2000, "x1-t2": 2000}
    t1 = [plain(r.values) for r in losses if r.task_id == "x1-t1"]
    assert [v["step"] for v in t1] == list(range(2000))  # oldest first, as sent
    assert t1[7] == {"name": "loss", "step": 7, "value": 7.0}
    assert losses[0].time == at(0) and losses[0].kind == "train"


def test_points_without_a_time_are_stamped_on_arrival(result_store: ResultStore) -> None:
    untimed = result_store_pb2.MetricBatch(experiment_id="x1", task_id="x1-a", kind="train", attempt=1,
                                           metrics=[result_store_pb2.Metric(name="loss", value=0.5, step=3)])
    assert send(result_store, [untimed]) == 1
    [row] = result_store.query_all(table=METRICS, task_id="x1-a")
    assert row.time.seconds > at(0).seconds  # not the epoch: the server's clock


def test_metrics_filter_by_experiment_task_kind_name_and_labels(result_store: ResultStore) -> None:
    send(result_store, [batch("a", 0, 5, labels={"fold": "0", "arm": "bert"}),
                        batch("b", 0, 5, kind="eval", labels={"fold": "1", "arm": "bert"}),
                        batch("a", 0, 5, experiment_id="x2", labels={"fold": "0", "arm": "catboost"})])

    def tasks(**filters: object) -> Counter[str]:
        return Counter(r.task_id for r in result_store.query_all(table=METRICS, **filters))

    assert tasks(experiment_id="x1") == {"x1-a": 20, "x1-b": 20}
    assert tasks(task_id="x2-a") == {"x2-a": 20}
    assert tasks(kind="eval") == {"x1-b": 20}
    assert tasks(metric_name="lr") == {"x1-a": 5, "x1-b": 5, "x2-a": 5}
    assert tasks(labels={"arm": "bert"}) == {"x1-a": 20, "x1-b": 20}           # a subset of the labels matches
    assert tasks(labels={"arm": "bert", "fold": "0"}) == {"x1-a": 20}
    assert tasks(experiment_id="x1", metric_name="accuracy", labels={"fold": "1"}) == {"x1-b": 5}
    assert tasks(experiment_id="x3") == {}
    [row] = result_store.query_all(table=METRICS, task_id="x1-b", metric_name="grad_norm",
                                   labels={"fold": "1"}, page_size=1)[:1]
    assert dict(row.labels) == {"fold": "1", "arm": "bert"}


@pytest.mark.parametrize(("bad", "field"), [
    (result_store_pb2.MetricBatch(experiment_id="x1", kind="train", metrics=[result_store_pb2.Metric(name="loss")]),
     "task_id"),
    (result_store_pb2.MetricBatch(experiment_id="x1", task_id="x1-a", kind="train",
                                  metrics=[result_store_pb2.Metric(name="loss"), result_store_pb2.Metric(value=1)]),
     "metrics[1].name"),
])
def test_a_bad_batch_anywhere_in_the_stream_stores_nothing(result_store: ResultStore,
                                                           bad: result_store_pb2.MetricBatch, field: str) -> None:
    # the bad batch comes after more points than the servicer writes per COPY flush
    batches = [*(batch("a", i * 250, 250) for i in range(24)), bad]
    assert invalid_field(lambda: send(result_store, batches)) == field
    assert result_store.count("metrics") == 0


def test_a_stream_the_client_abandons_stores_nothing(result_store: ResultStore) -> None:
    hang = threading.Event()

    def stream() -> Iterator[result_store_pb2.MetricBatch]:
        for i in range(24):
            yield batch("a", i * 250, 250)
        hang.wait(60)  # the client stalls without ending the stream, then goes away

    def copying() -> int:
        row = result_store.db.fetch_one("SELECT coalesce(sum(tuples_processed), 0) AS n FROM pg_stat_progress_copy")
        return int(row["n"]) if row else 0

    call = result_store.stub.ReportMetrics.future(stream(), timeout=60)
    try:
        deadline = time.monotonic() + 30
        # the server has most points in hand (being copied, or already committed: which must not happen)
        while copying() < 20_000 and result_store.count("metrics") == 0:
            assert time.monotonic() < deadline, "the server never received the points"
            time.sleep(0.05)
        call.cancel()
    finally:
        hang.set()
    deadline = time.monotonic() + 30
    while copying():
        assert time.monotonic() < deadline, "the abandoned COPY never ended"
        time.sleep(0.05)
    assert result_store.count("metrics") == 0  # so the client may send the whole stream again


def test_label_filters_page_through_every_match_once_in_order(result_store: ResultStore) -> None:
    # folds interleaved in arrival order, over two experiments; asked often enough that the driver would
    # prepare the statement (label queries must give the same rows planned either way)
    send(result_store, [batch(f"f{fold}", step, 1, experiment_id=experiment, labels={"fold": str(fold)})
                        for step in range(6) for experiment in ("x1", "x2") for fold in range(3)])

    def points(**filters: object) -> list[tuple[str, int, str]]:
        return [(r.task_id, int(plain(r.values)["step"]), plain(r.values)["name"])
                for r in result_store.query_all(page_size=5, table=METRICS, **filters)]

    for _ in range(3):
        assert points(experiment_id="x1", labels={"fold": "1"}) == \
            [("x1-f1", step, name) for step in range(6) for name in NAMES]
        assert points(experiment_id="x2", metric_name="lr", labels={"fold": "2"}) == \
            [("x2-f2", step, "lr") for step in range(6)]
        assert points(labels={"fold": "0"}) == [(f"{x}-f0", step, name) for step in range(6) for x in ("x1", "x2")
                                                for name in NAMES]
        assert points(labels={"fold": "7"}) == points(experiment_id="x1", labels={"fold": "7"}) == []


def test_filters_match_exact_values_only_across_pages(result_store: ResultStore) -> None:
    # neighbours in sort order of the filtered values, interleaved in arrival order
    neighbours = [(experiment, task, name) for experiment in ("x1", "x1-", "x10", "x0") for task in ("a", "ab")
                  for name in ("loss", "loss_val", "los")]
    send(result_store, [
        result_store_pb2.MetricBatch(experiment_id=experiment, task_id=f"{experiment}-{task}", kind="train",
                                     attempt=1, metrics=[result_store_pb2.Metric(name=name, value=round, step=round)])
        for round in range(7) for experiment, task, name in neighbours])

    def steps(**filters: object) -> list[tuple[str, str, int]]:
        return [(r.task_id, plain(r.values)["name"], int(plain(r.values)["step"]))
                for r in result_store.query_all(page_size=3, table=METRICS, **filters)]

    assert steps(experiment_id="x1", metric_name="loss") == \
        [(t, "loss", s) for s in range(7) for t in ("x1-a", "x1-ab")]
    assert steps(task_id="x1-a", metric_name="los") == [("x1-a", "los", s) for s in range(7)]
    assert steps(experiment_id="x1") == [(f"x1-{t}", n, s) for s in range(7) for t in ("a", "ab")
                                         for n in ("loss", "loss_val", "los")]
    assert steps(task_id="x10-ab") == [("x10-ab", n, s) for s in range(7) for n in ("loss", "loss_val", "los")]
