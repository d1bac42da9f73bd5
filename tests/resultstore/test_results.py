"""PutResults (many tasks per call, idempotent) and Query over results: filters and keyset pagination."""

from __future__ import annotations

import base64
from collections import Counter

import pytest

from ehrlab.v1 import common_pb2, result_store_pb2
from tests.resultstore.conftest import ResultStore, invalid_field, plain, task_results

RESULTS = result_store_pb2.QUERY_TABLE_RESULTS


def put(store: ResultStore, *tasks: result_store_pb2.TaskResults) -> int:
    return store.stub.PutResults(result_store_pb2.PutResultsRequest(tasks=tasks), timeout=60).accepted


def test_results_of_many_tasks_in_one_call_keep_their_values(result_store: ResultStore) -> None:
    estimate = {"method": "tmle", "effect": 0.125, "ci": [0.05, 0.2], "n": 1000, "converged": True,
                "note": None, "fit": {"epsilon": -0.01, "iterations": 3}}
    tasks = [task_results("x1-est", [estimate, {"method": "ipw", "effect": 0.1}], labels={"run": "0"}),
             task_results("x1-grade", [{"score": i} for i in range(3)], kind="grade"),
             task_results("x1-empty", [])]
    assert put(result_store, *tasks) == 5
    rows = result_store.query_all(experiment_id="x1")
    assert [(r.task_id, r.task_name, r.kind) for r in rows] == \
        [("x1-est", "est", "estimate")] * 2 + [("x1-grade", "grade", "grade")] * 3
    assert plain(rows[0].values) == estimate  # types survive: numbers, lists, bools, null, nested objects
    assert dict(rows[0].labels) == {"run": "0"} and rows[0].time.seconds > 0
    assert [plain(r.values)["score"] for r in rows[2:]] == [0, 1, 2]


def test_sending_the_same_results_again_adds_nothing(result_store: ResultStore) -> None:
    tasks = [task_results(f"x1-t{i}", [{"i": i, "row": r} for r in range(4)]) for i in range(3)]
    assert put(result_store, *tasks) == 12
    assert put(result_store, *tasks) == 0  # a retry after a lost answer
    assert put(result_store, tasks[1]) == 0
    assert result_store.count("results") == 12
    # a task that now has one more row (the same rows first) adds only that row
    longer = task_results("x1-t1", [{"i": 1, "row": r} for r in range(5)])
    assert put(result_store, longer) == 1
    assert Counter(r.task_id for r in result_store.query_all(experiment_id="x1")) == \
        {"x1-t0": 4, "x1-t1": 5, "x1-t2": 4}


def test_results_filter_by_experiment_kind_task_and_labels(result_store: ResultStore) -> None:
    put(result_store,
        task_results("x1-a", [{"v": 1}], kind="estimate", labels={"arm": "bert", "run": "0"}),
        task_results("x1-b", [{"v": 2}, {"v": 3}], kind="estimate", labels={"arm": "catboost", "run": "0"}),
        task_results("x1-c", [{"v": 4}], kind="aggregate"),
        task_results("x2-a", [{"v": 5}], experiment_id="x2", kind="estimate", labels={"arm": "bert", "run": "1"}))

    def values(**filters: object) -> list[int]:
        return [int(plain(r.values)["v"]) for r in result_store.query_all(**filters)]

    assert values(experiment_id="x1") == [1, 2, 3, 4]
    assert values(table=RESULTS, experiment_id="x2") == [5]  # results is also the default table
    assert values(kind="estimate") == [1, 2, 3, 5]
    assert values(experiment_id="x1", kind="estimate") == [1, 2, 3]
    assert values(task_id="x1-b") == [2, 3]
    assert values(labels={"arm": "bert"}) == [1, 5]
    assert values(labels={"arm": "bert", "run": "1"}) == [5]
    assert values(experiment_id="x1", labels={"arm": "bert", "run": "1"}) == []
    assert values(kind="nothing") == []


@pytest.mark.parametrize("page_size", [1, 7, 100, 0])  # 0: the server's default
def test_pages_return_every_row_exactly_once_in_order(result_store: ResultStore, page_size: int) -> None:
    put(result_store, *(task_results(f"x1-t{t}", [{"t": t, "r": r} for r in range(35)]) for t in range(6)))
    put(result_store, task_results("x2-t0", [{"t": -1, "r": 0}], experiment_id="x2"))  # filtered out
    rows = result_store.query_all(page_size=page_size, experiment_id="x1")
    seen = [(int(plain(r.values)["t"]), int(plain(r.values)["r"])) for r in rows]
    assert seen == [(t, r) for t in range(6) for r in range(35)]


def test_rows_added_between_pages_are_neither_skipped_nor_repeated(result_store: ResultStore) -> None:
    put(result_store, *(task_results(f"x1-t{t}", [{"t": t}] * 10) for t in range(3)))
    first = result_store.stub.Query(result_store_pb2.QueryRequest(
        experiment_id="x1", page=common_pb2.PageRequest(page_size=12)))
    assert len(first.rows) == 12 and first.next_page_token
    put(result_store, task_results("x1-t3", [{"t": 3}] * 10))
    rest = result_store.stub.Query(result_store_pb2.QueryRequest(
        experiment_id="x1", page=common_pb2.PageRequest(page_size=1000, page_token=first.next_page_token)))
    tasks = Counter(r.task_id for r in [*first.rows, *rest.rows])
    assert tasks == {"x1-t0": 10, "x1-t1": 10, "x1-t2": 10, "x1-t3": 10} and not rest.next_page_token


def test_experiment_and_kind_filters_match_exact_values_across_pages(result_store: ResultStore) -> None:
    for row in range(5):  # neighbours in sort order, interleaved in arrival order
        put(result_store, *(task_results(f"{experiment}-{kind}-{row}", [{"row": row}], experiment_id=experiment,
                                         kind=kind)
                             for experiment in ("x1", "x10", "x1-", "x0") for kind in ("fit", "fit_2", "fi")))

    def tasks(**filters: object) -> list[str]:
        return [r.task_id for r in result_store.query_all(page_size=2, **filters)]

    assert tasks(experiment_id="x1") == [f"x1-{k}-{r}" for r in range(5) for k in ("fit", "fit_2", "fi")]
    assert tasks(kind="fit") == [f"{x}-fit-{r}" for r in range(5) for x in ("x1", "x10", "x1-", "x0")]
    assert tasks(experiment_id="x10", kind="fi") == [f"x10-fi-{r}" for r in range(5)]


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize("token", ["%%% not base64", _token("not json"), _token('{"id": 3}'), _token("[]"),
                                   _token('["3"]'), _token("[1, 2]"), _token("[true]")])
def test_a_malformed_page_token_is_invalid_and_names_the_field(result_store: ResultStore, token: str) -> None:
    put(result_store, task_results("x1-a", [{"v": 1}]))
    assert invalid_field(lambda: result_store.stub.Query(result_store_pb2.QueryRequest(
        page=common_pb2.PageRequest(page_token=token)))) == "page.page_token"


def test_bad_queries_name_the_field(result_store: ResultStore) -> None:
    query = result_store.stub.Query
    assert invalid_field(lambda: query(result_store_pb2.QueryRequest(
        page=common_pb2.PageRequest(page_size=-1)))) == "page.page_size"
    assert invalid_field(lambda: query(result_store_pb2.QueryRequest(metric_name="loss"))) == "metric_name"
    assert invalid_field(lambda: query(result_store_pb2.QueryRequest(table=42))) == "table"  # type: ignore[arg-type]


@pytest.mark.parametrize(("bad", "field"), [
    (result_store_pb2.TaskResults(task_id="x1-b", kind="estimate"), "tasks[1].experiment_id"),
    (result_store_pb2.TaskResults(experiment_id="x1", kind="estimate"), "tasks[1].task_id"),
    (result_store_pb2.TaskResults(experiment_id="x1", task_id="x1-b"), "tasks[1].kind"),
])
def test_a_bad_task_in_a_call_stores_nothing_of_the_call(result_store: ResultStore,
                                                         bad: result_store_pb2.TaskResults, field: str) -> None:
    bad.rows.add().values.update({"v": 1})
    assert invalid_field(lambda: put(result_store, task_results("x1-a", [{"v": 0}]), bad)) == field
    assert result_store.count("results") == 0
