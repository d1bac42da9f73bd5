"""The controller with `launcher: kubernetes` end to end: it creates Jobs in the API emulator, a stand-in
kubelet runs exactly the container command of each Job on this machine (`ehrlab task run …` with the
Job's environment), reports the pod's exit and the Job's condition back through the API, and the
experiment finishes with its results — including a retry after a failed attempt."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ehrlab.core.embedded.stack import Stack
from tests.k8s.conftest import Emulator, FakeCluster

BIN = str(Path(sys.executable).parent)


class Kubelet:
    """Runs each new Job's container command locally and reports its end as the cluster would."""

    def __init__(self, cluster: FakeCluster, scratch: Path) -> None:
        self.cluster = cluster
        self.scratch = scratch
        self.seen: set[str] = set()
        self.ran: list[tuple[str, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="fake-kubelet")

    def __enter__(self) -> Kubelet:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def _loop(self) -> None:
        while not self.stop.is_set():
            for job in self.cluster.jobs():
                name = job["metadata"]["name"]
                if name not in self.seen:
                    self.seen.add(name)
                    self._run(job)
            self.stop.wait(0.1)

    def _run(self, job: dict[str, Any]) -> None:
        name = job["metadata"]["name"]
        [container] = job["spec"]["template"]["spec"]["containers"]
        log = self.scratch / f"{name}.termination"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("EHRLAB_")},
               **{e["name"]: e["value"] for e in container["env"]},
               "PATH": f"{BIN}:{os.environ['PATH']}", "EHRLAB_TERMINATION_LOG": str(log),
               "HOME": str(self.scratch), "EHRLAB_HOME": str(self.scratch / "home")}
        self.cluster.pod(name, phase="Running")
        done = subprocess.run(container["command"], env=env, capture_output=True, text=True, timeout=120)
        self.ran.append((name, done.returncode))
        message = log.read_text() if log.exists() else ""
        self.cluster.terminated(name, done.returncode, message=message,
                                reason="Completed" if done.returncode == 0 else "Error")
        if done.returncode == 0:
            self.cluster.finish(name)
        else:
            self.cluster.finish(name, "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")


@pytest.fixture
def k8s_stack(emulator: Emulator, stack_factory: Callable[..., Stack], tmp_path: Path) -> Iterator[Stack]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": emulator.url}}],
        "users": [{"name": "nobody", "user": {}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "nobody"}}]}))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"kubernetes": {
        "namespace": "ehrlab-test", "kubeconfig": str(kubeconfig), "resync_seconds": 30,
        "images": {"controller": "ehrlab/controller:test"}}}))
    yield stack_factory(("result-store", "controller"), EHRLAB_LAUNCHER="kubernetes", EHRLAB_CONFIG=str(config))


@pytest.mark.slow
def test_experiment_runs_as_jobs(k8s_stack: Stack, cluster: FakeCluster, tmp_path: Path) -> None:
    client = k8s_stack.client()
    spec = {"name": "on-kubernetes", "planner": "pipeline", "dataset": {"id": "k8s"},
            "steps": {"first": {"kind": "noop", "params": {"fail_attempts": 1, "results": [{"step": 1}]}},
                      "second": {"kind": "noop", "inputs": {"first": "first"}, "params": {"results": [{"step": 2}]}}},
            "options": {"retry_backoff_s": 0.1}}
    with Kubelet(cluster, tmp_path) as kubelet:
        experiment = client.submit(spec)
        final = client.wait(experiment.id, timeout=180)
        assert final.state == 3, k8s_stack.log_tail("controller", 40)  # succeeded
    jobs = {job["metadata"]["name"]: job for job in cluster.jobs()}
    assert len(jobs) == 3  # first: a failed attempt and its retry; second: one attempt
    attempts = sorted(job["metadata"]["labels"]["ehrlab.io/attempt"] for job in jobs.values())
    assert attempts == ["1", "1", "2"]
    assert {job["metadata"]["labels"]["ehrlab.io/experiment"] for job in jobs.values()} == {experiment.id}
    assert sorted(code for _, code in kubelet.ran) == [0, 0, 1]
    [failed] = [name for name, code in kubelet.ran if code == 1]
    assert "failing on purpose on attempt 1" in (tmp_path / f"{failed}.termination").read_text()
    rows = sorted(row["step"] for row in client.results(experiment.id))
    assert rows == [1, 2]


@pytest.mark.slow
def test_users_see_why_a_launched_task_is_not_running(k8s_stack: Stack, cluster: FakeCluster) -> None:
    client = k8s_stack.client()
    experiment = client.submit({"name": "pending", "dataset": {"id": "k8s"},
                                "steps": {"big": {"kind": "noop", "params": {"payload": "pending"}}}})
    deadline = time.monotonic() + 60
    while not cluster.jobs():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cluster.unschedulable(cluster.jobs()[0]["metadata"]["name"], "0/3 nodes are available: 3 Insufficient cpu.")
    while "Insufficient cpu" not in client.tasks(experiment.id)[0].waiting:
        assert time.monotonic() < deadline, client.tasks(experiment.id)[0]
        time.sleep(0.2)
    shown = subprocess.run([sys.executable, "-m", "ehrlab.cli.main", "show", experiment.id], capture_output=True,
                           text=True, env={**os.environ, **k8s_stack.env()}, timeout=60)
    assert "waiting: Unschedulable" in shown.stdout
    client.cancel(experiment.id)
    assert client.wait(experiment.id, timeout=60).state == 5  # cancelled
