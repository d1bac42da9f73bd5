"""KubernetesLauncher against a Kubernetes API emulator over HTTP (the official client, real watches)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client

from ehrlab.core.embedded.postgres import free_port
from ehrlab.core.kinds import Resources
from ehrlab.engine.launchers import AttemptResult, Outcome
from ehrlab.engine.launchers.kubernetes import WAITING_SECONDS, KubernetesLauncher, RateLimiter, parse_indexes
from tests.k8s.conftest import Emulator, FakeCluster
from tests.k8s.support import GPU_KIND, attempt, settings

LauncherFactory = Callable[..., KubernetesLauncher]


@pytest.fixture
def make_launcher(emulator: Emulator) -> Iterator[LauncherFactory]:
    started: list[KubernetesLauncher] = []

    def make(**overrides: object) -> KubernetesLauncher:
        launcher = KubernetesLauncher(settings(**overrides), api_client=emulator.api_client())
        started.append(launcher)
        return launcher

    yield make
    for launcher in started:
        launcher.close()


def wait_results(launcher: KubernetesLauncher, count: int = 1, timeout: float = 10) -> list[AttemptResult]:
    results: list[AttemptResult] = []
    deadline = time.monotonic() + timeout
    while len(results) < count and time.monotonic() < deadline:
        results += launcher.poll()
        time.sleep(0.02)
    assert len(results) >= count, f"expected {count} results, got {results}"
    return results


def assert_quiet(launcher: KubernetesLauncher, seconds: float = 0.5) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert launcher.poll() == []
        time.sleep(0.02)


def requests(emulator: Emulator, method: str) -> list:
    """The requests for Jobs the emulator received with this HTTP method, oldest first."""
    assert emulator.handler is not None
    return [r for r in emulator.handler[method.lower()] if "/jobs" in r.url.path]


def test_one_job_per_attempt_labelled_and_completed(make_launcher: LauncherFactory, cluster: FakeCluster) -> None:
    launcher = make_launcher()
    first, second = attempt("xabc-1"), attempt("xabc-2", 3)
    launcher.launch([first, second])
    assert first.handle == {"job": "ehrlab-xabc-1-a1", "namespace": "ehrlab-test"}
    assert second.handle["job"] == "ehrlab-xabc-2-a3"
    job = cluster.job("ehrlab-xabc-2-a3")
    labels = job["metadata"]["labels"]
    assert labels["ehrlab.io/experiment"] == "xabc" and labels["ehrlab.io/task"] == "xabc-2"
    assert labels["ehrlab.io/attempt"] == "3" and labels["ehrlab.io/kind"] == "simulate_x"
    assert job["metadata"]["annotations"]["ehrlab.io/attempts"] == '["xabc-2.3"]'
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["ehrlab", "task", "run", "xabc-2", "--attempt", "3"]
    assert pod["containers"][0]["image"] == "ehrlab/data-prep:0.1.0"
    assert_quiet(launcher, 0.2)

    cluster.terminated("ehrlab-xabc-1-a1", 0, reason="Completed")
    cluster.finish("ehrlab-xabc-1-a1")
    [result] = wait_results(launcher)
    assert (result.attempt_id, result.outcome, result.exit_code) == ("xabc-1.1", Outcome.SUCCEEDED, 0)


@pytest.mark.parametrize(("exit_code", "reason", "message", "outcome", "expected"), [
    (1, "Error", "RuntimeError: failing on purpose", Outcome.FAILED, "RuntimeError: failing on purpose"),
    (2, "Error", "params.lr: Input should be greater than 0", Outcome.CONFIG_ERROR, "params.lr"),
    (3, "Error", "trial pruned at step 4", Outcome.PRUNED, "pruned"),
    (137, "OOMKilled", "", Outcome.FAILED, "out of memory"),
    (139, "Error", "", Outcome.FAILED, "exited with code 139"),
])
def test_exit_codes_become_outcomes(make_launcher: LauncherFactory, cluster: FakeCluster, exit_code: int,
                                    reason: str, message: str, outcome: Outcome, expected: str) -> None:
    launcher = make_launcher()
    launcher.launch([attempt()])
    cluster.terminated("ehrlab-xabc-1-a1", exit_code, reason=reason, message=message)
    job_reason = "PodFailurePolicy" if exit_code in (2, 3) else "BackoffLimitExceeded"
    cluster.finish("ehrlab-xabc-1-a1", "Failed", job_reason, "Job has reached the specified backoff limit")
    [result] = wait_results(launcher)
    assert result.outcome is outcome and expected in result.message
    assert result.exit_code == exit_code


def test_deadline_exceeded_is_a_timeout(make_launcher: LauncherFactory, cluster: FakeCluster) -> None:
    launcher = make_launcher()
    launcher.launch([attempt(timeout_s=90.5)])
    assert cluster.job("ehrlab-xabc-1-a1")["spec"]["activeDeadlineSeconds"] == 91
    cluster.pod("ehrlab-xabc-1-a1", phase="Running")
    cluster.finish("ehrlab-xabc-1-a1", "Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
    [result] = wait_results(launcher)
    assert result.outcome is Outcome.FAILED and result.message == "timed out after 91 s"


def test_disrupted_pod_uses_no_attempt(make_launcher: LauncherFactory, cluster: FakeCluster) -> None:
    """A preempted pod is ignored by the podFailurePolicy: the Job makes a new pod, and its result counts."""
    launcher = make_launcher()
    launcher.launch([attempt()])
    cluster.terminated("ehrlab-xabc-1-a1", 143, reason="Error", disrupted=True, number=0)
    assert_quiet(launcher)
    cluster.terminated("ehrlab-xabc-1-a1", 1, message="boom", number=1)
    cluster.finish("ehrlab-xabc-1-a1", "Failed", "BackoffLimitExceeded")
    [result] = wait_results(launcher)
    assert (result.outcome, result.message) == (Outcome.FAILED, "boom")


def test_image_pull_failure_is_a_config_error_and_the_job_goes(make_launcher: LauncherFactory,
                                                               cluster: FakeCluster, emulator: Emulator) -> None:
    launcher = make_launcher(image_pull_grace_s=0.3)
    launcher.launch([attempt()])
    cluster.waiting("ehrlab-xabc-1-a1", "ImagePullBackOff", 'Back-off pulling image "ehrlab/data-prep:0.1.0"',
                    image="ehrlab/data-prep:0.1.0")
    deadline = time.monotonic() + 5
    while not launcher.waiting() and time.monotonic() < deadline:
        assert launcher.poll() == []
        time.sleep(0.02)
    assert "cannot be pulled" in launcher.waiting()["xabc-1.1"]
    [result] = wait_results(launcher)
    assert result.outcome is Outcome.CONFIG_ERROR
    assert result.message.startswith("image ehrlab/data-prep:0.1.0 cannot be pulled (ImagePullBackOff)")
    [delete] = requests(emulator, "DELETE")
    assert delete.url.path == "/apis/batch/v1/namespaces/ehrlab-test/jobs/ehrlab-xabc-1-a1"


def test_unschedulable_is_reported_and_waits(make_launcher: LauncherFactory, cluster: FakeCluster) -> None:
    launcher = make_launcher()
    launcher.launch([attempt()])
    cluster.unschedulable("ehrlab-xabc-1-a1", "0/3 nodes are available: 3 Insufficient cpu.")
    deadline = time.monotonic() + 5
    while not launcher.waiting() and time.monotonic() < deadline:
        launcher.poll()
        time.sleep(0.02)
    assert launcher.waiting() == {"xabc-1.1": "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu."}
    assert_quiet(launcher, 0.4)
    assert WAITING_SECONDS.labels("cpu", "false")._value.get() >= 0.3  # the GPU-pending alert's input
    assert WAITING_SECONDS.labels("gpu", "true")._value.get() == 0
    cluster.pod("ehrlab-xabc-1-a1", phase="Running")
    deadline = time.monotonic() + 5
    while launcher.waiting() and time.monotonic() < deadline:
        launcher.poll()
        time.sleep(0.02)
    assert launcher.waiting() == {}


def test_pending_timeout_fails_an_unschedulable_attempt(make_launcher: LauncherFactory, cluster: FakeCluster) -> None:
    launcher = make_launcher(pending_timeout_s=0.3)
    launcher.launch([attempt()])
    cluster.unschedulable("ehrlab-xabc-1-a1", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")
    [result] = wait_results(launcher)
    assert result.outcome is Outcome.FAILED and "Insufficient nvidia.com/gpu" in result.message


def test_gpu_task_lands_on_the_gpu_pool_suspended_for_kueue(make_launcher: LauncherFactory,
                                                            cluster: FakeCluster) -> None:
    pools = settings().kubernetes.node_pools
    pools[1] = pools[1].model_copy(update={"queue": "gpu-queue"})
    launcher = make_launcher(node_pools=pools)
    launcher.launch([attempt(kind=GPU_KIND)])
    job = cluster.job("ehrlab-xabc-1-a1")
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["containers"][0]["image"] == "ehrlab/trainer:0.1.0"
    deadline = time.monotonic() + 5
    while not launcher.waiting() and time.monotonic() < deadline:
        launcher.poll()
        time.sleep(0.02)
    assert launcher.waiting() == {"xabc-1.1": "suspended: waiting for admission by Kueue queue gpu-queue"}


def test_wide_fan_out_becomes_an_indexed_job(make_launcher: LauncherFactory, cluster: FakeCluster,
                                             emulator: Emulator) -> None:
    launcher = make_launcher(indexed_min_tasks=4)
    attempts = [attempt(f"xabc-{i}") for i in range(6)] + [attempt("xabc-9", kind=GPU_KIND)]
    launcher.launch(attempts)
    assert len(requests(emulator, "POST")) == 2  # six identical tasks in one Job, the GPU task alone
    name = attempts[0].handle["job"]
    assert [a.handle.get("index") for a in attempts[:6]] == list(range(6))
    assert {a.handle["job"] for a in attempts[:6]} == {name}
    job = cluster.job(name)
    assert (job["spec"]["completionMode"], job["spec"]["completions"], job["spec"]["parallelism"]) == ("Indexed", 6, 6)
    assert job["spec"]["podFailurePolicy"]["rules"][1]["action"] == "FailIndex"

    cluster.set_job_status(name, {"completedIndexes": "0-2,4"})
    results = wait_results(launcher, 4)
    assert sorted(r.attempt_id for r in results) == ["xabc-0.1", "xabc-1.1", "xabc-2.1", "xabc-4.1"]
    assert {r.outcome for r in results} == {Outcome.SUCCEEDED}

    cluster.terminated(name, 2, message="params.n: must be positive", index=5, number=5)
    cluster.set_job_status(name, {"completedIndexes": "0-2,4", "failedIndexes": "5"})
    [result] = wait_results(launcher)
    assert (result.attempt_id, result.outcome, result.message) == ("xabc-5.1", Outcome.CONFIG_ERROR,
                                                                   "params.n: must be positive")
    cluster.set_job_status(name, {"completedIndexes": "0-4", "failedIndexes": "5"})
    [result] = wait_results(launcher)
    assert (result.attempt_id, result.outcome) == ("xabc-3.1", Outcome.SUCCEEDED)


def test_cancel_deletes_the_job_with_propagation(make_launcher: LauncherFactory, cluster: FakeCluster,
                                                 emulator: Emulator) -> None:
    launcher = make_launcher(delete_propagation="Foreground")
    launcher.launch([attempt()])
    launcher.cancel(["xabc-1.1"], "experiment cancelled")
    [result] = wait_results(launcher)
    assert (result.outcome, result.message) == (Outcome.FAILED, "experiment cancelled")
    [delete] = requests(emulator, "DELETE")
    assert delete.params.get("propagationPolicy") == "Foreground" or \
        (delete.data or {}).get("propagationPolicy") == "Foreground"
    assert cluster.jobs() == []


def test_restart_adopts_jobs_by_label_and_never_duplicates(make_launcher: LauncherFactory, cluster: FakeCluster,
                                                           emulator: Emulator) -> None:
    first = make_launcher()
    running, finished = attempt("xabc-1"), attempt("xabc-2")
    first.launch([running, finished])
    first.close()  # the controller dies; its Jobs go on
    cluster.terminated(finished.handle["job"], 0, reason="Completed")
    cluster.finish(finished.handle["job"])

    second = make_launcher()
    running.handle, finished.handle = {}, {}  # the engine does not keep handles: Jobs are found by label
    second.adopt([running, finished])
    assert running.handle == {"job": "ehrlab-xabc-1-a1", "namespace": "ehrlab-test"}
    [result] = wait_results(second)
    assert (result.attempt_id, result.outcome) == ("xabc-2.1", Outcome.SUCCEEDED)
    second.launch([running])  # the engine relaunching an attempt it had not recorded: same Job name, 409
    assert len(requests(emulator, "POST")) == 3
    assert len(cluster.jobs()) == 2
    cluster.finish(running.handle["job"])
    [result] = wait_results(second)
    assert (result.attempt_id, result.outcome) == ("xabc-1.1", Outcome.SUCCEEDED)


def test_restart_finds_attempts_inside_indexed_jobs(make_launcher: LauncherFactory, cluster: FakeCluster,
                                                     emulator: Emulator) -> None:
    first = make_launcher(indexed_min_tasks=3)
    attempts = [attempt(f"xabc-{i}") for i in range(4)]
    first.launch(attempts)
    name = attempts[0].handle["job"]
    first.close()
    for one in attempts:
        one.handle = {}
    second = make_launcher(indexed_min_tasks=3)
    second.adopt(attempts)
    assert [a.handle for a in attempts] == [{"job": name, "namespace": "ehrlab-test", "index": i} for i in range(4)]
    cluster.set_job_status(name, {"completedIndexes": "2"})
    [result] = wait_results(second)
    assert (result.attempt_id, result.outcome) == ("xabc-2.1", Outcome.SUCCEEDED)
    assert len(requests(emulator, "POST")) == 1


def test_adopted_attempt_without_job_is_disrupted(make_launcher: LauncherFactory) -> None:
    launcher = make_launcher()
    lost = attempt("xabc-7")
    lost.handle = {"job": "ehrlab-xabc-7-a1", "namespace": "ehrlab-test"}
    launcher.adopt([lost])
    [result] = wait_results(launcher)
    assert result.outcome is Outcome.DISRUPTED and "no longer exists" in result.message


def test_job_deleted_while_running_is_a_failure(make_launcher: LauncherFactory, cluster: FakeCluster) -> None:
    launcher = make_launcher()
    launcher.launch([attempt()])
    cluster.pod("ehrlab-xabc-1-a1", phase="Running")
    deadline = time.monotonic() + 5
    while not launcher.tracked["xabc-1.1"].started and time.monotonic() < deadline:
        launcher.poll()
        time.sleep(0.02)
    cluster.batch.delete_namespaced_job("ehrlab-xabc-1-a1", "ehrlab-test", _preload_content=False)
    [result] = wait_results(launcher)
    assert result.outcome is Outcome.FAILED and "deleted while it ran" in result.message


def test_other_controllers_jobs_are_not_adopted(make_launcher: LauncherFactory) -> None:
    theirs = make_launcher(controller_id="staging")
    theirs.launch([attempt("xabc-1")])
    ours = make_launcher()
    mine = attempt("xabc-1")
    mine.handle = {"job": "ehrlab-xabc-1-a1", "namespace": "ehrlab-test"}
    ours.adopt([mine])
    [result] = wait_results(ours)
    assert result.outcome is Outcome.DISRUPTED  # the Job of that name belongs to another controller


def test_configuration_errors_fail_at_once(make_launcher: LauncherFactory, emulator: Emulator) -> None:
    launcher = make_launcher(images={"data-prep": "ehrlab/data-prep:0.1.0"}, node_pools=[{"name": "cpu"}])
    launcher.launch([attempt("xabc-1", kind=GPU_KIND),
                     attempt("xabc-2", resources=Resources(node_pool="highmem")),
                     attempt("xabc-3", resources=Resources(gpu=1))])
    results = {r.attempt_id: r for r in launcher.poll()}
    assert {r.outcome for r in results.values()} == {Outcome.CONFIG_ERROR}
    assert "no image configured for service 'trainer'" in results["xabc-1.1"].message
    assert "node pool 'highmem' is not configured" in results["xabc-2.1"].message
    assert "no node pool has gpu: true" in results["xabc-3.1"].message
    assert requests(emulator, "POST") == []


def test_unreachable_api_server_disrupts_the_launch() -> None:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    launcher = KubernetesLauncher(settings(), api_client=client.ApiClient(configuration))
    try:
        launcher.launch([attempt()])
        [result] = launcher.poll()
    finally:
        launcher.close()
    assert result.outcome is Outcome.DISRUPTED and "creating Job ehrlab-xabc-1-a1 failed" in result.message


def test_rate_limiter_spaces_calls_after_the_burst() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(qps=10, burst=3, clock=lambda: now[0], sleep=sleep)
    for _ in range(8):
        limiter.acquire()
    assert slept[:0] == [] and len(slept) == 5  # three from the burst, then one every 0.1 s
    assert now[0] == pytest.approx(0.5)
    RateLimiter(qps=0, burst=1, clock=lambda: now[0], sleep=sleep).acquire()
    assert len(slept) == 5


def test_parse_indexes() -> None:
    assert parse_indexes("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert parse_indexes("") == set() and parse_indexes(None) == set()
