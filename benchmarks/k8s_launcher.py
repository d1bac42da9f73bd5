"""KubernetesLauncher throughput against the kmock Kubernetes API emulator (a separate process).

Three runs on a fresh emulator each:
  - reference: the official client creating the same Jobs one by one, nothing else (what the API allows);
  - launcher, unthrottled (qps 0): `launch()` of N single-attempt Jobs (manifests, handles, parallel creates);
  - launcher, throttled: qps Q / burst B; the measured rate over the configured QPS should be ≈ 1.
Also: one launch of N identical attempts as Indexed Jobs (API calls saved by grouping).

    .venv/bin/python -m benchmarks.k8s_launcher [--jobs 300] [--qps 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from typing import Any

from kubernetes import client

from ehrlab.engine.launchers.k8s_manifests import job_manifest
from ehrlab.engine.launchers.kubernetes import KubernetesLauncher
from tests.k8s.support import attempt, settings


def _serve(queue: multiprocessing.Queue) -> None:
    import kmock

    async def main() -> None:
        async with kmock.KubernetesEmulator() as handler, kmock.Server(handler) as server:
            handler.resources["batch/v1/jobs"] = kmock.ResourceInfo(kind="Job", namespaced=True)
            handler.resources["v1/pods"] = kmock.ResourceInfo(kind="Pod", namespaced=True)
            queue.put(str(server.url).rstrip("/"))
            await asyncio.Event().wait()

    asyncio.run(main())


class EmulatorProcess:
    def __enter__(self) -> EmulatorProcess:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        self.process = context.Process(target=_serve, args=(queue,), daemon=True)
        self.process.start()
        self.url = queue.get(timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.join(10)

    def api_client(self) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)


def reference(jobs: int) -> float:
    with EmulatorProcess() as emulator:
        batch = client.BatchV1Api(emulator.api_client())
        manifests = [job_manifest([attempt(f"xref-{i}")], settings()) for i in range(jobs)]
        start = time.perf_counter()
        for manifest in manifests:
            batch.create_namespaced_job("ehrlab-test", manifest, _preload_content=False)
        return jobs / (time.perf_counter() - start)


def launcher_rate(jobs: int, *, indexed: bool = False, **overrides: Any) -> tuple[float, int]:
    with EmulatorProcess() as emulator:
        options = {"indexed_min_tasks": 2 if indexed else 10**9, "resync_seconds": 600, **overrides}
        launcher = KubernetesLauncher(settings(**options), api_client=emulator.api_client())
        try:
            attempts = [attempt(f"xbench-{i}") for i in range(jobs)]
            start = time.perf_counter()
            launcher.launch(attempts)
            elapsed = time.perf_counter() - start
            failed = [r for r in launcher.poll() if r.message]
            if failed:
                raise RuntimeError(f"{len(failed)} launches failed: {failed[0].message}")
            created = len({a.handle["job"] for a in attempts})
        finally:
            launcher.close()
    return jobs / elapsed, created


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--qps", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=5)
    args = parser.parse_args()
    ref = reference(args.jobs)
    unthrottled, _ = launcher_rate(args.jobs, qps=0)
    throttled_jobs = int(args.qps * 5)
    throttled, _ = launcher_rate(throttled_jobs, qps=args.qps, burst=args.burst)
    grouped, created = launcher_rate(args.jobs, indexed=True, qps=0)
    report = {
        "jobs": args.jobs,
        "reference_client_creates_per_s": round(ref, 1),
        "launcher_unthrottled_creates_per_s": round(unthrottled, 1),
        "launcher_over_reference": round(unthrottled / ref, 2),
        "throttled_qps": args.qps, "throttled_burst": args.burst, "throttled_jobs": throttled_jobs,
        # the first `burst` creations are free; the rest come at qps
        "throttled_creates_per_s": round(throttled, 1),
        "expected_throttled_creates_per_s": round(throttled_jobs / ((throttled_jobs - args.burst) / args.qps), 1),
        "indexed_attempts_per_s": round(grouped, 1),
        "indexed_jobs_created": created,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
