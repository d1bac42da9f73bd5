"""Fault drills on private stacks: processes killed, the database restarted, a service down for a while."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
import uuid
from collections.abc import Callable

import psycopg
import pytest

from ehrlab.client import Client
from ehrlab.core.embedded.stack import Stack
from ehrlab.v1 import common_pb2 as c

pytestmark = pytest.mark.slow


def fan_out(width: int, sleep_s: float, results: bool = False) -> dict:
    salt = uuid.uuid4().hex
    steps = {"first": {"kind": "noop", "params": {"payload": [salt, "first"]}}}
    for i in range(width):
        steps[f"mid{i}"] = {"kind": "noop", "inputs": {"x": "first"},
                            "params": {"payload": [salt, i], "sleep_s": sleep_s,
                                       "results": [{"i": i}] if results else []}}
    steps["last"] = {"kind": "noop", "after": [f"mid{i}" for i in range(width)], "params": {"payload": [salt, "last"]}}
    return {"name": "drill", "steps": steps}


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def running(client: Client, experiment_id: str) -> int:
    return sum(t.state == c.TASK_STATE_RUNNING for t in client.tasks(experiment_id))


def taken_up(stack: Stack) -> list[str]:
    """Attempts a local worker has taken up: the launcher's `<attempt>.run` marks."""
    return [path.name.removesuffix(".run") for path in (stack.home / "attempts").glob("*.run")]


def attempt_rows(stack: Stack, experiment_id: str) -> list[dict]:
    with psycopg.connect(stack.database_url) as conn:
        return conn.execute("SELECT t.name, a.state FROM controller.attempts a JOIN controller.tasks t "
                            "ON t.id = a.task_id WHERE t.experiment_id = %s", (experiment_id,)).fetchall()


def test_controller_killed_mid_experiment_finishes_without_rerunning(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory()
    client = stack.client()
    experiment = client.submit(fan_out(6, sleep_s=2.0, results=True))
    wait_until(lambda: running(client, experiment.id) >= 3 and len(taken_up(stack)) >= 3)
    stack.kill("controller")                       # SIGKILL: no chance to clean up
    taken = taken_up(stack)
    with psycopg.connect(stack.database_url) as conn:
        started = {name for (name,) in conn.execute(
            "SELECT t.name FROM controller.attempts a JOIN controller.tasks t ON t.id = a.task_id "
            "WHERE t.experiment_id = %s AND a.id = ANY(%s)", (experiment.id, taken))}
    stack.restart("controller")
    final = client.wait(experiment.id, timeout=90)
    assert final.state == c.EXPERIMENT_STATE_SUCCEEDED, final.error
    tasks = client.tasks(final.id)
    rows = attempt_rows(stack, final.id)
    assert all(t.state == c.TASK_STATE_SUCCEEDED and t.attempt == sum(name == t.name for name, _ in rows)
               for t in tasks), ([(t.name, t.state, t.attempt, t.error) for t in tasks], rows)
    # one successful attempt per task; a launch lost in the kill before its worker took it up is redone
    # (a disrupted attempt, which uses no attempt), and nothing that had started is run again
    assert sorted(name for name, state in rows if state == "succeeded") == sorted(t.name for t in tasks), rows
    assert {state for _, state in rows} <= {"succeeded", "disrupted"}, rows
    assert started and not started & {name for name, state in rows if state == "disrupted"}, (started, rows)
    assert sorted(r["i"] for r in client.results(final.id)) == list(range(6))     # nothing lost


def test_controller_killed_right_after_submit(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory()
    client = stack.client()
    experiment = client.submit(fan_out(8, sleep_s=0.5))
    stack.kill("controller")
    stack.restart("controller")
    final = client.wait(experiment.id, timeout=90)
    assert final.state == c.EXPERIMENT_STATE_SUCCEEDED, final.error
    assert final.counts.succeeded == 10
    for name, state in attempt_rows(stack, final.id):  # a launch lost in the kill is redone, never run twice
        assert state in ("succeeded", "disrupted"), (name, state)


@pytest.mark.parametrize("retry_s, down_s", [
    ("60", 2.0),    # a restart within the retry deadline: transactions wait and go through
    ("0.5", 4.0),   # down longer: passes fail; what they decided is written once it is back, and
])                  # launches that could not be recorded first go back to the queue instead of being lost
def test_database_restarted_during_a_run(stack_factory: Callable[..., Stack], retry_s: str, down_s: float) -> None:
    stack = stack_factory(EHRLAB_DATABASE_RETRY_S=retry_s)
    client = stack.client()
    experiment = client.submit(fan_out(6, sleep_s=1.5, results=True))
    wait_until(lambda: running(client, experiment.id) >= 1)
    assert stack.postgres is not None
    stack.postgres.stop()
    time.sleep(down_s)
    stack.postgres.start()
    final = client.wait(experiment.id, timeout=120)
    assert final.state == c.EXPERIMENT_STATE_SUCCEEDED, final.error
    assert final.counts.succeeded == 8
    assert sorted(r["i"] for r in client.results(final.id)) == list(range(6))
    succeeded = sorted(name for name, state in attempt_rows(stack, final.id) if state == "succeeded")
    assert succeeded == sorted(t.name for t in client.tasks(final.id))


def test_result_store_down_for_a_while(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory()
    client = stack.client()
    stack.kill("result-store")
    experiment = client.submit(fan_out(4, sleep_s=0.2, results=True))
    wait_until(lambda: client.get_experiment(experiment.id).counts.succeeded == 6)
    time.sleep(1.0)
    assert client.get_experiment(experiment.id).state == c.EXPERIMENT_STATE_RUNNING  # waits for its results
    stack.restart("result-store")
    final = client.wait(experiment.id, timeout=90)
    assert final.state == c.EXPERIMENT_STATE_SUCCEEDED
    assert sorted(r["i"] for r in client.results(final.id)) == list(range(4))
    progress = client.progress(final.id)
    assert progress.counts.succeeded == 6 and progress.ratio == 1.0


def test_exec_mode_runs_attempts_through_the_task_run_command(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(EHRLAB_LOCAL_MODE="exec")
    client = stack.client()
    salt = uuid.uuid4().hex
    final = client.wait(client.submit({"name": "exec", "steps": {
        "a": {"kind": "noop", "params": {"payload": salt, "results": [{"ok": True}]}},
        "b": {"kind": "noop", "inputs": {"x": "a"}, "params": {"payload": salt, "fail_attempts": 1}},
    }}, max_attempts=2).id, timeout=90)
    assert final.state == c.EXPERIMENT_STATE_SUCCEEDED, final.error
    assert [r["ok"] for r in client.results(final.id)] == [True]
    logs = sorted((stack.home / "attempts" / "logs").glob("*.log"))
    assert len(logs) == 3 and "failing on purpose" in "".join(p.read_text() for p in logs)


def test_gpu_slots_bound_gpu_tasks(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(EHRLAB_LOCAL_GPUS="1")
    client = stack.client()
    salt = uuid.uuid4().hex
    steps = {f"g{i}": {"kind": "noop", "resources": {"gpu": 1}, "params": {"payload": [salt, i], "sleep_s": 0.4}}
             for i in range(3)}
    final = client.wait(client.submit({"name": "gpu", "steps": steps}).id, timeout=60)
    assert final.state == c.EXPERIMENT_STATE_SUCCEEDED
    spans = sorted((t.times.started.ToNanoseconds(), t.times.finished.ToNanoseconds()) for t in client.tasks(final.id))
    assert all(later[0] >= earlier[1] - 5_000_000 for earlier, later in itertools.pairwise(spans))


def test_an_attempt_killed_from_outside_is_retried(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory()
    client = stack.client()
    salt = uuid.uuid4().hex
    experiment = client.submit({"name": "killed", "steps": {
        "victim": {"kind": "noop", "params": {"payload": salt, "sleep_s": 3}}}})
    run_file = stack.home / "attempts" / f"{experiment.id}-0.1.run"
    wait_until(run_file.exists)
    os.kill(json.loads(run_file.read_text())["pid"], signal.SIGKILL)
    final = client.wait(experiment.id, timeout=60)
    assert final.state == c.EXPERIMENT_STATE_SUCCEEDED
    (task,) = client.tasks(final.id)
    assert task.attempt == 2
    assert ("victim", "failed") in [tuple(r) for r in attempt_rows(stack, final.id)]
