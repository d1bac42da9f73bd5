"""KubernetesLauncher throughput against the kmock Kubernetes API emulator (a separate process).

Three runs on a fresh emulator each:
  - reference: the official client creating the same Jobs one by one, nothing else (what the API allows);
  - launcher, unthrottled (qps 0): `launch()` of N single-attempt Jobs (manifests, handles, parallel creates);
  - launcher, throttled: qps Q / burst B; the measured rate over the configured QPS should be ≈ 1.
Also: the launcher against a bare HTTP endpoint that only accepts creations (the client side's
ceiling, since the emulator is the slower party); one launch of N identical attempts as Indexed Jobs
(API calls saved by grouping); and the launcher's own cost per Job (manifests built per second).

    .venv/bin/python -m benchmarks.k8s_launcher [--jobs 200] [--qps 8]
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


def _serve_sink(queue: multiprocessing.Queue) -> None:
    """A bare HTTP endpoint that accepts Job creations and lists nothing: the client side's ceiling."""
    from aiohttp import web

    async def create(request: web.Request) -> web.Response:
        return web.json_response(await request.json(), status=201)

    async def listing(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") in ("true", "1", "True"):
            response = web.StreamResponse()
            await response.prepare(request)
            await asyncio.sleep(3600)
            return response
        return web.json_response({"items": [], "metadata": {"resourceVersion": "1"}})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/apis/batch/v1/namespaces/{namespace}/jobs", create)
        app.router.add_get("/apis/batch/v1/namespaces/{namespace}/jobs", listing)
        app.router.add_get("/api/v1/namespaces/{namespace}/pods", listing)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        queue.put(f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}")
        await asyncio.Event().wait()

    asyncio.run(main())


class EmulatorProcess:
    def __init__(self, target: Any = _serve) -> None:
        self.target = target

    def __enter__(self) -> EmulatorProcess:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        self.process = context.Process(target=self.target, args=(queue,), daemon=True)
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


def launcher_rate(jobs: int, *, indexed: bool = False, server: Any = _serve, **overrides: Any) -> tuple[float, int]:
    with EmulatorProcess(server) as emulator:
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


def manifest_rate(jobs: int) -> float:
    """Job manifests built per second: the launcher's own work per Job, without any API."""
    configured = settings()
    attempts = [attempt(f"xman-{i}") for i in range(jobs)]
    start = time.perf_counter()
    for one in attempts:
        job_manifest([one], configured)
    return jobs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--qps", type=float, default=8.0)
    parser.add_argument("--burst", type=int, default=5)
    args = parser.parse_args()
    manifests = manifest_rate(args.jobs * 10)
    ref = reference(args.jobs)
    unthrottled, _ = launcher_rate(args.jobs, qps=0)
    throttled_jobs = int(args.qps * 5)
    throttled, _ = launcher_rate(throttled_jobs, qps=args.qps, burst=args.burst)
    grouped, created = launcher_rate(args.jobs, indexed=True, qps=0)
    sink, _ = launcher_rate(args.jobs * 5, qps=0, server=_serve_sink)
    report = {
        "jobs": args.jobs,
        "manifests_built_per_s": round(manifests, 1),
        "reference_client_creates_per_s": round(ref, 1),
        "launcher_unthrottled_creates_per_s": round(unthrottled, 1),
        "launcher_over_reference": round(unthrottled / ref, 2),
        "throttled_qps": args.qps, "throttled_burst": args.burst, "throttled_jobs": throttled_jobs,
        # the first `burst` creations are free; the rest come at qps
        "throttled_creates_per_s": round(throttled, 1),
        "expected_throttled_creates_per_s": round(throttled_jobs / ((throttled_jobs - args.burst) / args.qps), 1),
        "indexed_attempts_per_s": round(grouped, 1),
        # the same launcher against an endpoint that does nothing: what the client side can do
        "launcher_to_bare_endpoint_creates_per_s": round(sink, 1),
        "indexed_jobs_created": created,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
