"""ReportStatus keeps each task's newest report; Progress counts tasks by state and lists the latest reports."""

from __future__ import annotations

from ehrlab.v1 import common_pb2, result_store_pb2
from tests.resultstore.conftest import ResultStore, at, invalid_field

PENDING, RUNNING, SUCCEEDED, CACHED, FAILED = (common_pb2.TASK_STATE_PENDING, common_pb2.TASK_STATE_RUNNING,
                                               common_pb2.TASK_STATE_SUCCEEDED, common_pb2.TASK_STATE_CACHED,
                                               common_pb2.TASK_STATE_FAILED)


def status(task: str, state: int, sequence: int, *, experiment_id: str = "x1", seconds: float = 0,
           **extra: object) -> result_store_pb2.TaskStatus:
    return result_store_pb2.TaskStatus(experiment_id=experiment_id, task_id=f"{experiment_id}-{task}", task_name=task,
                                       kind="noop", state=state, sequence=sequence, time=at(seconds), **extra)


def report(store: ResultStore, *statuses: result_store_pb2.TaskStatus) -> None:
    store.stub.ReportStatus(result_store_pb2.ReportStatusRequest(statuses=statuses), timeout=30)


def progress(store: ResultStore, experiment_id: str = "x1") -> result_store_pb2.ProgressResponse:
    return store.stub.Progress(result_store_pb2.ProgressRequest(experiment_id=experiment_id), timeout=30)


def test_the_newest_sequence_wins_and_older_reports_are_ignored(result_store: ResultStore) -> None:
    report(result_store, status("a", RUNNING, 20, message="started", attempt=1))
    report(result_store, status("a", PENDING, 10, message="late and stale"))  # arrives after a newer one
    [latest] = progress(result_store).recent
    assert (latest.state, latest.message, latest.sequence, latest.attempt) == (RUNNING, "started", 20, 1)

    report(result_store, status("a", RUNNING, 20, message="same sequence again"))  # a resend changes nothing
    assert progress(result_store).recent[0].message == "started"

    # two reports of one task in one call: the order inside the call does not matter
    report(result_store, status("a", SUCCEEDED, 40, message="done", progress=1.0, cache_hit=False),
           status("a", RUNNING, 30, message="half way", progress=0.5))
    [latest] = progress(result_store).recent
    assert (latest.state, latest.message, latest.progress, latest.sequence) == (SUCCEEDED, "done", 1.0, 40)
    assert result_store.count("task_status") == 1


def test_progress_counts_tasks_by_state_and_gives_the_finished_ratio(result_store: ResultStore) -> None:
    states = [SUCCEEDED] * 4 + [CACHED] * 2 + [FAILED] + [RUNNING] * 3 + [PENDING] * 2
    report(result_store, *(status(f"t{i}", state, 1, seconds=i) for i, state in enumerate(states)))
    report(result_store, status("other", RUNNING, 1, experiment_id="x2"))  # another experiment: not counted

    answer = progress(result_store)
    counts = answer.counts
    assert (counts.total, counts.succeeded, counts.cached, counts.failed, counts.running, counts.pending) == \
        (12, 4, 2, 1, 3, 2)
    assert answer.ratio == 7 / 12  # succeeded, cached and failed tasks are finished
    # the ten latest reports, newest first
    assert [r.task_name for r in answer.recent] == [f"t{i}" for i in range(11, 1, -1)]
    assert answer.last_update == at(11)
    assert all(r.experiment_id == "x1" and r.kind == "noop" for r in answer.recent)

    report(result_store, *(status(f"t{i}", SUCCEEDED, 2, seconds=20 + i) for i in range(7, 12)))
    finished = progress(result_store)
    assert (finished.counts.succeeded, finished.counts.running, finished.ratio) == (9, 0, 1.0)
    assert finished.recent[0].task_name == "t11" and finished.last_update == at(31)


def test_progress_of_an_unknown_experiment_is_empty(result_store: ResultStore) -> None:
    answer = progress(result_store, "x-nobody")
    assert (answer.counts.total, answer.ratio, list(answer.recent)) == (0, 0.0, [])
    assert not answer.HasField("last_update")


def test_a_report_without_a_time_is_stamped_on_arrival(result_store: ResultStore) -> None:
    report(result_store, result_store_pb2.TaskStatus(experiment_id="x1", task_id="x1-a", task_name="a", kind="noop",
                                                     state=RUNNING, sequence=1))
    stamped = progress(result_store).last_update.ToDatetime()
    now = result_store.db.fetch_one("SELECT now() AT TIME ZONE 'UTC' AS now")
    assert now is not None and abs((now["now"] - stamped).total_seconds()) < 60


def test_bad_statuses_are_rejected_naming_the_field_and_nothing_is_stored(result_store: ResultStore) -> None:
    good = status("a", RUNNING, 1)
    cases = {
        "statuses[1].task_id": result_store_pb2.TaskStatus(experiment_id="x1", task_name="b", kind="noop",
                                                           state=RUNNING, sequence=1),
        "statuses[1].experiment_id": result_store_pb2.TaskStatus(task_id="x1-b", kind="noop", state=RUNNING,
                                                                 sequence=1),
        "statuses[1].state": status("b", 0, 1),
        "statuses[1].progress": status("b", RUNNING, 1, progress=1.5),
    }
    for field, bad in cases.items():
        assert invalid_field(lambda bad=bad: report(result_store, good, bad)) == field
    unknown_state = status("b", RUNNING, 1)
    unknown_state.state = 99  # type: ignore[assignment]  # an enum value this server does not know
    assert invalid_field(lambda: report(result_store, good, unknown_state)) == "statuses[1].state"
    assert result_store.count("task_status") == 0
    assert invalid_field(lambda: progress(result_store, "")) == "experiment_id"
