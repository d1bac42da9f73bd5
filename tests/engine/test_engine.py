"""The engine through a running controller and result-store: caching, retries, faults, cancellation."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from ehrlab.client import Client
from ehrlab.core.embedded.stack import Stack
from ehrlab.core.errors import ConflictError, FailedPreconditionError, NotFoundError, SpecError
from ehrlab.v1 import common_pb2 as c

SUCCEEDED, FAILED, CANCELLED = c.EXPERIMENT_STATE_SUCCEEDED, c.EXPERIMENT_STATE_FAILED, c.EXPERIMENT_STATE_CANCELLED


def spec(steps: dict, **top) -> dict:
    """A pipeline spec with a unique payload, so tests sharing a store never share cache entries."""
    salt = uuid.uuid4().hex
    for name, step in steps.items():
        params = step.setdefault("params", {})
        params["payload"] = [salt, name, params.get("payload")]
    return {"name": top.pop("name", "t"), "dataset": {"id": "tests"}, "steps": steps, **top}


def run(client: Client, body: dict, timeout: float = 60, **options):
    experiment = client.submit(body, **options)
    final = client.wait(experiment.id, timeout=timeout)
    return final, {t.name: t for t in client.tasks(final.id)}


@pytest.fixture(scope="module")
def client(core_stack: Stack) -> Client:
    return core_stack.client()


def test_pipeline_runs_then_reruns_fully_cached(client: Client) -> None:
    body = spec({"a": {"kind": "noop", "params": {"results": [{"metric": 0.5}]}},
                 "b": {"kind": "noop", "inputs": {"x": "a"}},
                 "c": {"kind": "noop", "inputs": {"x": "a"}, "params": {"results": [{"metric": 0.7}]}},
                 "d": {"kind": "noop", "after": ["b", "c"]}})
    final, tasks = run(client, body)
    assert final.state == SUCCEEDED and final.counts.succeeded == 4 and final.progress == 1.0
    assert all(t.attempt == 1 and t.output.digest for t in tasks.values())
    rows = client.results(final.id)
    assert sorted((r["task"], r["metric"]) for r in rows) == [("a", 0.5), ("c", 0.7)]
    again, again_tasks = run(client, body)
    assert again.counts.cached == 4 and again.counts.succeeded == 0
    assert all(t.attempt == 0 for t in again_tasks.values())
    assert {t.name: t.output.digest for t in again_tasks.values()} == {t.name: t.output.digest for t in tasks.values()}
    assert sorted(r["metric"] for r in client.results(again.id)) == [0.5, 0.7]   # cached results still reported


def test_force_recomputes_the_kind_and_everything_downstream(client: Client) -> None:
    body = spec({"a": {"kind": "noop"}, "b": {"kind": "noop", "inputs": {"x": "a"}},
                 "c": {"kind": "noop", "inputs": {"x": "b"}}, "other": {"kind": "noop"}})
    run(client, body)
    _final, tasks = run(client, body, force=["b"])
    assert {n: t.state for n, t in tasks.items()} == {
        "a": c.TASK_STATE_CACHED, "b": c.TASK_STATE_SUCCEEDED, "c": c.TASK_STATE_SUCCEEDED,
        "other": c.TASK_STATE_CACHED}
    assert tasks["b"].forced and tasks["c"].forced and not tasks["a"].forced


def test_skip_skips_the_step_and_what_needs_it(client: Client) -> None:
    body = spec({"a": {"kind": "noop"}, "b": {"kind": "noop", "inputs": {"x": "a"}}, "c": {"kind": "noop"}})
    final, tasks = run(client, body, skip=["a"])
    assert final.state == SUCCEEDED
    assert tasks["a"].state == tasks["b"].state == c.TASK_STATE_SKIPPED
    assert tasks["c"].state == c.TASK_STATE_SUCCEEDED


def test_failures_are_retried_within_max_attempts(client: Client) -> None:
    body = spec({"flaky": {"kind": "noop", "params": {"fail_attempts": 2}},
                 "crashy": {"kind": "noop", "params": {"crash_attempts": 1}},
                 "hangs": {"kind": "noop", "params": {"hang_attempts": 1}, "timeout_s": 1.5}},
                options={"retry_backoff_s": 0.05})
    final, tasks = run(client, body, max_attempts=3)
    assert final.state == SUCCEEDED, final.error
    assert tasks["flaky"].attempt == 3
    assert tasks["crashy"].attempt == 2 and tasks["hangs"].attempt == 2


def test_exhausted_attempts_fail_the_task_and_skip_its_users(client: Client) -> None:
    body = spec({"bad": {"kind": "noop", "params": {"fail_attempts": 9}},
                 "user": {"kind": "noop", "inputs": {"x": "bad"}},
                 "fine": {"kind": "noop"}}, options={"retry_backoff_s": 0.05})
    final, tasks = run(client, body, max_attempts=2)
    assert final.state == FAILED
    assert tasks["bad"].state == c.TASK_STATE_FAILED and tasks["bad"].attempt == 2
    assert "failing on purpose on attempt 2" in tasks["bad"].error
    assert tasks["user"].state == c.TASK_STATE_SKIPPED and "'bad' failed" in tasks["user"].error
    assert tasks["fine"].state == c.TASK_STATE_SUCCEEDED
    assert "bad" in final.error


def test_retry_task_reruns_the_failed_task_and_what_it_blocked(client: Client) -> None:
    body = spec({"bad": {"kind": "noop", "params": {"fail_attempts": 1}},
                 "user": {"kind": "noop", "inputs": {"x": "bad"}}})
    final, tasks = run(client, body, max_attempts=1)
    assert final.state == FAILED
    assert client.get_experiment(final.id).state == FAILED  # a finished experiment, answered from memory now …
    client.retry_task(tasks["bad"].id)
    assert client.get_experiment(final.id).state != FAILED  # … until a retry revives it
    final = client.wait(final.id, timeout=60)
    tasks = {t.name: t for t in client.tasks(final.id)}
    assert final.state == SUCCEEDED and not final.error
    assert tasks["bad"].attempt == 2 and tasks["user"].state == c.TASK_STATE_SUCCEEDED
    with pytest.raises(FailedPreconditionError, match="only failed, cancelled or skipped tasks"):
        client.retry_task(tasks["user"].id)
    with pytest.raises(NotFoundError):
        client.retry_task("no-such-task")


def test_failfast_stops_running_work(client: Client) -> None:
    body = spec({"bad": {"kind": "noop", "params": {"fail_attempts": 5}},
                 "slow": {"kind": "noop", "params": {"sleep_s": 60}},
                 "later": {"kind": "noop", "inputs": {"x": "slow"}}})
    start = time.monotonic()
    final, tasks = run(client, body, max_attempts=1, failfast=True)
    assert time.monotonic() - start < 30
    assert final.state == FAILED and final.error.startswith("failfast: task 'bad' failed")
    assert tasks["slow"].state == c.TASK_STATE_CANCELLED and tasks["later"].state == c.TASK_STATE_CANCELLED


def test_cancel_stops_running_work(client: Client) -> None:
    body = spec({f"s{i}": {"kind": "noop", "params": {"sleep_s": 60}} for i in range(3)})
    experiment = client.submit(body)
    deadline = time.monotonic() + 30
    while not any(t.state == c.TASK_STATE_RUNNING for t in client.tasks(experiment.id)):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    client.cancel(experiment.id, reason="enough")
    final = client.wait(experiment.id, timeout=30)
    assert final.state == CANCELLED
    assert {t.state for t in client.tasks(final.id)} == {c.TASK_STATE_CANCELLED}


def test_waiting_gives_up_at_its_timeout_even_when_nothing_happens(client: Client) -> None:
    experiment = client.submit(spec({"quiet": {"kind": "noop", "params": {"sleep_s": 60}}}))
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="still running after 1s"):
            client.wait(experiment.id, timeout=1)
        assert time.monotonic() - started < 10
    finally:
        client.cancel(experiment.id)


def test_identical_concurrent_work_runs_once(client: Client) -> None:
    body = spec({f"t{i}": {"kind": "noop", "params": {"sleep_s": 0.5}} for i in range(4)})
    finals = []

    def submit() -> None:
        finals.append(run(client, body)[0])

    threads = [threading.Thread(target=submit) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [f.state for f in finals] == [SUCCEEDED] * 3
    assert sum(f.counts.succeeded for f in finals) == 4          # each key ran exactly once
    assert sum(f.counts.cached for f in finals) == 8


def test_max_parallel_bounds_an_experiment(client: Client) -> None:
    body = spec({f"t{i}": {"kind": "noop", "params": {"sleep_s": 0.4}} for i in range(6)})
    final, tasks = run(client, body, max_parallel=2)
    spans = sorted((t.times.started.ToNanoseconds(), t.times.finished.ToNanoseconds()) for t in tasks.values())
    most = max(sum(1 for s, f in spans if s <= start < f) for start, _ in spans)
    assert final.state == SUCCEEDED and most <= 2


def test_submit_is_idempotent_by_request_id(client: Client) -> None:
    body = spec({"a": {"kind": "noop"}})
    request_id = uuid.uuid4().hex
    first = client.submit(body, request_id=request_id)
    assert client.submit(body, request_id=request_id).id == first.id
    with pytest.raises(ConflictError, match="different experiment"):
        client.submit(spec({"a": {"kind": "noop"}}), request_id=request_id)
    client.wait(first.id, timeout=30)


def test_bad_specs_are_refused_and_nothing_is_stored(client: Client) -> None:
    before = len(list(client.list_experiments()))
    with pytest.raises(SpecError, match=r"^spec 1: steps\.a\.params\.bogus: unknown key"):
        client.submit({"name": "bad", "steps": {"a": {"kind": "noop", "params": {"bogus": 1}}}})
    with pytest.raises(SpecError, match=r"dependency cycle"):
        client.submit({"name": "bad", "steps": {"a": {"kind": "noop", "after": ["a"]}}})
    with pytest.raises(SpecError, match=r"options\.max_attempts"):
        client.submit({"name": "bad", "steps": {"a": {"kind": "noop"}}}, max_attempts=1000)
    assert len(list(client.list_experiments())) == before


def test_dry_run_shows_the_plan_without_storing_it(client: Client) -> None:
    body = spec({"a": {"kind": "noop"}, "b": {"kind": "noop", "inputs": {"x": "a"}}})
    run(client, body)
    plan = client.submit({**body, "steps": {**body["steps"], "c": {"kind": "noop", "inputs": {"x": "b"}}}},
                         dry_run=True)
    assert [(t.name, t.state) for t in plan.tasks] == [
        ("a", c.TASK_STATE_CACHED), ("b", c.TASK_STATE_CACHED), ("c", c.TASK_STATE_PENDING)]
    with pytest.raises(NotFoundError):
        client.get_experiment(plan.id)


def test_watch_starts_with_a_snapshot_and_ends_with_the_final_state(client: Client) -> None:
    experiment = client.submit(spec({"a": {"kind": "noop", "params": {"sleep_s": 0.3}},
                                     "b": {"kind": "noop", "inputs": {"x": "a"}}}))
    events = list(client.watch(experiment.id))
    assert events[0].snapshot and events[0].HasField("experiment")
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[-1].HasField("experiment") and events[-1].experiment.state == SUCCEEDED
    seen = [e.task.state for e in events if e.HasField("task") and e.task.name == "b"]
    assert seen[-1] == c.TASK_STATE_SUCCEEDED
    assert c.TASK_STATE_RUNNING in seen or c.TASK_STATE_READY in seen


def test_list_and_get_by_name(client: Client) -> None:
    name = f"named-{uuid.uuid4().hex[:8]}"
    final, _ = run(client, spec({"a": {"kind": "noop"}}, name=name))
    assert client.get_experiment(name).id == final.id
    listed = list(client.list_experiments(name_prefix=name))
    assert [e.id for e in listed] == [final.id]
    assert final.id in [e.id for e in client.list_experiments(states=[SUCCEEDED], limit=1000)]


def test_the_summary_view_leaves_out_the_spec(client: Client) -> None:
    name = f"viewed-{uuid.uuid4().hex[:8]}"
    running = client.submit(spec({"a": {"kind": "noop", "params": {"sleep_s": 60}}}, name=name))
    deadline = time.monotonic() + 30
    while client.get_experiment(name).counts.running != 1:  # steady, so that two reads agree
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        for _ in range(2):  # active (from the engine), then finished (from the database, then the cache)
            full, summary = client.get_experiment(name), client.get_experiment(name, with_spec=False)
            assert full.spec["steps"]["a"]["kind"] == "noop" and not summary.HasField("spec")
            summary.spec.CopyFrom(full.spec)
            assert summary == full                     # the same answer otherwise
            (listed,) = client.list_experiments(name_prefix=name)
            (listed_full,) = client.list_experiments(name_prefix=name, with_spec=True)
            assert not listed.HasField("spec") and listed_full.spec == full.spec
            if full.state == c.EXPERIMENT_STATE_RUNNING:
                client.cancel(running.id)
                assert client.wait(running.id, timeout=60).state == CANCELLED
    finally:
        client.cancel(running.id)


def test_listing_tasks_pages_through_everything(client: Client) -> None:
    final, _ = run(client, spec({f"t{i:03d}": {"kind": "noop"} for i in range(25)}))
    from ehrlab.v1 import common_pb2, controller_pb2

    names, token = [], ""
    while True:
        page = client.controller.ListTasks(controller_pb2.ListTasksRequest(
            experiment_id=final.id, page=common_pb2.PageRequest(page_size=10, page_token=token)))
        names += [t.name for t in page.tasks]
        token = page.next_page_token
        if not token:
            break
    assert names == [f"t{i:03d}" for i in range(25)]


def test_optional_inputs_whose_producers_failed_are_left_out(client: Client) -> None:
    body = spec({"good": {"kind": "noop", "params": {"results": [{"run": 1}]}},
                 "bad": {"kind": "noop", "params": {"fail_attempts": 1}},
                 "summary": {"kind": "noop_partial", "inputs": {"first": "good", "second": "bad"}}},
                options={"retry_backoff_s": 0.05})
    final, tasks = run(client, body, max_attempts=1)
    assert final.state == FAILED                       # a task failed, and the experiment says so …
    summary = tasks["summary"]
    assert summary.state == c.TASK_STATE_SUCCEEDED     # … but the summary of what succeeded exists
    assert set(summary.inputs) == {"first"} and summary.depends_on == ["good"]
    partial = summary.key
    final, tasks = run(client, body, max_attempts=2)   # now `bad` succeeds on its second attempt
    assert final.state == SUCCEEDED
    assert tasks["summary"].state == c.TASK_STATE_SUCCEEDED and set(tasks["summary"].inputs) == {"first", "second"}
    assert tasks["summary"].key != partial             # the partial result was not taken for the full one
