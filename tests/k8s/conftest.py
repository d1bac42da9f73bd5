"""An in-memory Kubernetes API (PyPI `kmock`) on a real HTTP port, and a stand-in for the cluster's
job controller and kubelet that moves Jobs and Pods along through the same API.

The emulator stores what it is sent and streams watch events, but it schedules nothing, ignores label
selectors and validates no schema: `FakeCluster` plays the part of the cluster (pods appear, fail,
complete) so the launcher sees what a real API server would send it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import kmock
import pytest
from kubernetes import client

NAMESPACE = "ehrlab-test"


class Emulator:
    """kmock's KubernetesEmulator served on 127.0.0.1 from a background event loop."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""
        self.handler: kmock.KubernetesEmulator | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="kmock")

    def _run(self) -> None:
        async def serve() -> None:
            self._stop = asyncio.Event()
            async with kmock.KubernetesEmulator() as handler, kmock.Server(handler) as server:
                handler.resources["batch/v1/jobs"] = kmock.ResourceInfo(kind="Job", namespaced=True)
                handler.resources["v1/pods"] = kmock.ResourceInfo(kind="Pod", namespaced=True)
                self.handler, self.url = handler, str(server.url).rstrip("/")
                self._ready.set()
                await self._stop.wait()

        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(serve())

    def start(self) -> Emulator:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("kmock did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def api_client(self) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)


class FakeCluster:
    """Acts as the job controller and the kubelet: creates pods for Jobs and sets their status."""

    def __init__(self, emulator: Emulator, namespace: str = NAMESPACE) -> None:
        self.api = emulator.api_client()
        self.batch = client.BatchV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.namespace = namespace

    def jobs(self) -> list[dict[str, Any]]:
        return json.loads(self.batch.list_namespaced_job(self.namespace, _preload_content=False).data)["items"]

    def job(self, name: str) -> dict[str, Any]:
        return json.loads(self.batch.read_namespaced_job(name, self.namespace, _preload_content=False).data)

    def set_job_status(self, name: str, status: dict[str, Any]) -> None:
        self.batch.patch_namespaced_job_status(name, self.namespace, {"status": status}, _preload_content=False)

    def finish(self, name: str, condition: str = "Complete", reason: str = "", message: str = "") -> None:
        self.set_job_status(name, {"conditions": [{"type": condition, "status": "True", "reason": reason,
                                                   "message": message}]})

    def pod(self, job: str, number: int = 0, *, index: int | None = None, phase: str = "Pending",
            status: dict[str, Any] | None = None) -> str:
        """Creates (or updates the status of) pod `number` of `job`, labelled as the job controller does;
        higher numbers are newer pods."""
        template = self.job(job)["spec"]["template"]["metadata"]
        labels = {**template.get("labels", {}), "job-name": job, "batch.kubernetes.io/job-name": job}
        if index is not None:
            labels["batch.kubernetes.io/job-completion-index"] = str(index)
        name = f"{job}-{number}"
        metadata = {"name": name, "namespace": self.namespace, "labels": labels,
                    "creationTimestamp": f"2026-11-23T00:00:{number:02d}Z"}
        status = {"phase": phase, **(status or {})}
        if phase != "Pending":  # the emulator merges patches: say explicitly that it was scheduled
            status.setdefault("conditions", [{"type": "PodScheduled", "status": "True"}])
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "status": status}
        try:
            self.core.create_namespaced_pod(self.namespace, body, _preload_content=False)
        except client.exceptions.ApiException as exc:
            if exc.status != 409:
                raise
            self.core.patch_namespaced_pod_status(name, self.namespace, {"status": body["status"]},
                                                  _preload_content=False)
        return name

    def terminated(self, job: str, exit_code: int, *, message: str = "", reason: str = "Error",
                   number: int = 0, index: int | None = None, disrupted: bool = False) -> str:
        state = {"terminated": {"exitCode": exit_code, "reason": reason, "message": message}}
        status: dict[str, Any] = {"containerStatuses": [_container(state)]}
        if disrupted:
            status["conditions"] = [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]
        return self.pod(job, number, index=index, phase="Succeeded" if exit_code == 0 else "Failed", status=status)

    def waiting(self, job: str, reason: str, message: str = "", *, image: str = "x") -> str:
        status = {"containerStatuses": [_container({"waiting": {"reason": reason, "message": message}}, image)]}
        return self.pod(job, phase="Pending", status=status)

    def unschedulable(self, job: str, message: str) -> str:
        return self.pod(job, phase="Pending", status={"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]})


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    running = Emulator().start()
    yield running
    running.stop()


@pytest.fixture
def cluster(emulator: Emulator) -> FakeCluster:
    return FakeCluster(emulator)


def _container(state: dict[str, Any], image: str = "ehrlab/data-prep:0.1.0") -> dict[str, Any]:
    return {"name": "task", "image": image, "imageID": "", "ready": False, "restartCount": 0, "state": state}
