"""gRPC unary latency of GetExperiment at a paced 1,000 requests/s (open loop), p50/p99.

    .venv/bin/python -m benchmarks.core_grpc_latency [--rate 1000] [--seconds 10]

A private embedded stack (durable PostgreSQL, result-store, controller). An asyncio client sends
requests on a fixed schedule whatever the answers do (open loop: a slow answer does not slow the
sender, so queueing shows in the latency instead of hiding); latency is measured from each request's
scheduled time to its answer. Cases: GetExperiment of a finished experiment (read from PostgreSQL,
the usual case), of a large finished one (1,000 tasks: a bigger row), of a running one (served from
the engine's memory), and the gRPC health check on the same controller as the floor (same server,
same interceptors, no work), so the ratio shows what GetExperiment adds; the controller's CPU time
per call shows how many calls a second one core could answer. Target: p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import psutil
from grpc_health.v1 import health_pb2

from benchmarks.harness import CpuMeter, ProcessGroup, Stopwatch, embedded_stack, machine, percentile, table
from ehrlab.core.serving import CHANNEL_OPTIONS
from ehrlab.v1 import common_pb2, controller_pb2


async def paced(address: str, method: str, request: Any, response_type: Any, rate: float,
                seconds: float) -> tuple[list[float], list[float], float]:
    """Latencies from the schedule and from the send (seconds), and the achieved request rate."""
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        call: Callable[..., Any] = channel.unary_unary(method, request_serializer=type(request).SerializeToString,
                                                       response_deserializer=response_type.FromString)
        for _ in range(200):  # warm-up: connection, server threads, caches
            await call(request, timeout=10)
        from_schedule: list[float] = []
        from_send: list[float] = []
        failures: list[str] = []

        async def one(scheduled: float) -> None:
            sent = time.monotonic()
            try:
                await call(request, timeout=30)
            except grpc.aio.AioRpcError as error:
                failures.append(error.code().name)
                return
            done = time.monotonic()
            from_schedule.append(done - scheduled)
            from_send.append(done - sent)

        total = int(rate * seconds)
        start = time.monotonic() + 0.01
        running = []
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            running.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*running)
        return from_schedule, from_send, failures, len(from_schedule) / (time.monotonic() - start)


def settle(pid: int, timeout: float = 120.0) -> None:
    """Waits until the process is nearly idle: a backlog left by the previous case must not count in the next."""
    process = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    while process.cpu_percent(interval=0.5) > 5 and time.monotonic() < deadline:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    salt = uuid.uuid4().hex[:8]
    rows = []
    with embedded_stack() as stack, stack.client() as client:
        def experiment(tasks: int, sleep_s: float = 0.0) -> str:
            steps = {f"t{i}": {"kind": "noop", "params": {"payload": f"{salt}-{i}", "sleep_s": sleep_s}}
                     for i in range(tasks)}
            return client.submit({"name": f"latency-{tasks}-{sleep_s:g}-{salt}", "steps": steps}).id

        small, large = experiment(3), experiment(1000)
        for finished in (small, large):
            state = client.wait(finished, timeout=600).state
            assert state == common_pb2.EXPERIMENT_STATE_SUCCEEDED, state
        running = experiment(2, sleep_s=3600)
        address = stack.processes["controller"].address
        get = "/ehrlab.v1.Controller/GetExperiment"
        cases = [
            ("health check (the floor)", "/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest(),
             health_pb2.HealthCheckResponse),
            ("GetExperiment, finished, 3 tasks", get, controller_pb2.GetExperimentRequest(id=small),
             controller_pb2.Experiment),
            ("GetExperiment, running, 2 tasks", get, controller_pb2.GetExperimentRequest(id=running),
             controller_pb2.Experiment),
            ("GetExperiment, finished, 1,000 tasks", get, controller_pb2.GetExperimentRequest(id=large),
             controller_pb2.Experiment),
            ("GetExperiment, finished, 1,000 tasks, summary view", get,
             controller_pb2.GetExperimentRequest(id=large, view=controller_pb2.EXPERIMENT_VIEW_SUMMARY),
             controller_pb2.Experiment),
        ]
        controller = CpuMeter([ProcessGroup("controller", stack.processes["controller"].pid)])
        for name, method, request, response_type in cases:
            settle(stack.processes["controller"].pid)
            clock = Stopwatch()
            controller.start()
            with clock.measure():
                from_schedule, from_send, failures, achieved = asyncio.run(
                    paced(address, method, request, response_type, args.rate, args.seconds))
            used = controller.stop()
            calls = len(from_schedule) + len(failures) + 200  # with the warm-up
            rows.append({"call": name, "answered": len(from_schedule), "failed": len(failures),
                         "answered/s": achieved, "controller cpu ms/call": 1000 * used["controller"] / calls,
                         "client cpu ms/call": 1000 * used["benchmark"] / calls,
                         "p50 ms": 1000 * percentile(from_schedule, 50), "p99 ms": 1000 * percentile(from_schedule, 99),
                         "max ms": 1000 * max(from_schedule), "p99 from send ms": 1000 * percentile(from_send, 99),
                         "load 1m": clock.load})
        client.cancel(running)
    print(table(rows, title=f"\nUnary latency at a paced {args.rate:g} requests/s for {args.seconds:g}s, from the "
                            "scheduled send (target p99 < 5 ms)"))
    floor = rows[0]
    print(table([{"call": r["call"], "p50 / floor": r["p50 ms"] / floor["p50 ms"],
                  "p99 / floor": r["p99 ms"] / floor["p99 ms"]} for r in rows[1:]],
                title="\nRatio to the health check on the same server"))


if __name__ == "__main__":
    main()
