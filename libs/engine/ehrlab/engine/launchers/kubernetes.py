"""The KubernetesLauncher: task attempts as batch/v1 Jobs, through the official `kubernetes` client.

Launching creates one Job per attempt, or one Indexed Job per group of at least
`indexed_min_tasks` attempts of the same kind and resources launched together (a wide fan-out);
the manifests come from `k8s_manifests`. Two watch threads (Jobs and Pods, by the controller's
label, resumed from their resourceVersion and fully re-listed every `resync_seconds` or after a
410) keep a cache of what the cluster reports; `poll` turns that cache into outcomes without
blocking:

- Job `Complete` (or index completed) → SUCCEEDED; a failed pod → its exit code (1 FAILED,
  2 CONFIG_ERROR, 3 PRUNED) with the pod's termination message; `DeadlineExceeded` → FAILED
  (timed out). Disrupted pods (preemption, eviction) are ignored by the Job's podFailurePolicy,
  so the Job starts a new pod and no attempt is used.
- An image that cannot be pulled, or a container that cannot be created (a missing Secret), for
  longer than `image_pull_grace_s` → CONFIG_ERROR with the kubelet's reason, and the Job is deleted.
- Unschedulable pods and suspended (queued) Jobs are surfaced by `waiting()` as readable reasons;
  after `pending_timeout_s` (if set) the attempt fails.
- A Job that disappears (deleted by someone else, or never found when adopting) → DISRUPTED if
  it never had a running pod, else FAILED.

Every API call passes a token bucket (`qps`, `burst`). After a restart, `adopt` re-attaches to the
Jobs found by label, and `launch` treats an existing Job of the same name as its own (HTTP 409):
no attempt ever gets a second Job.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from prometheus_client import Gauge

from ehrlab.core.runner import EXIT_CONFIG, EXIT_OK, EXIT_PRUNED
from ehrlab.core.settings import Settings
from ehrlab.engine.launchers import Attempt, AttemptResult, Capacity, Launcher, Outcome
from ehrlab.engine.launchers.k8s_manifests import (
    ATTEMPTS_ANNOTATION,
    CONTAINER,
    CONTROLLER_LABEL,
    INDEX_LABEL,
    MANAGED_BY,
    MANAGER,
    POOL_LABEL,
    QUEUE_LABEL,
    ManifestError,
    job_manifest,
    job_name,
    label_value,
)

log = logging.getLogger("ehrlab.launcher.kubernetes")
WAITING_SECONDS = Gauge("ehrlab_launcher_waiting_seconds",
                        "Longest time an attempt on this node pool has waited to start (0: none waits)",
                        ["node_pool", "gpu"])
_EXIT_OUTCOMES = {EXIT_OK: Outcome.SUCCEEDED, EXIT_CONFIG: Outcome.CONFIG_ERROR, EXIT_PRUNED: Outcome.PRUNED}
# container waiting reasons that do not go away by waiting: the image or the pod's configuration is wrong
_STUCK_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                  "CreateContainerConfigError", "CreateContainerError"}


class RateLimiter:
    """A token bucket: `qps` tokens a second, at most `burst` saved up; `acquire` blocks for a token.

    qps <= 0 means unthrottled. Thread-safe: Job creations run from several threads.
    """

    def __init__(self, qps: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self.clock = clock
        self.sleep = sleep
        self.tokens = float(self.burst)
        self.stamp = clock()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        if self.qps <= 0:
            return
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.qps)
            self.stamp = now
            self.tokens -= 1
            wait = -self.tokens / self.qps if self.tokens < 0 else 0.0
        if wait:
            self.sleep(wait)


class ThrottledApiClient(k8s_client.ApiClient):
    """The official ApiClient with every request passing the launcher's rate limiter."""

    def __init__(self, configuration: k8s_client.Configuration, limiter: RateLimiter) -> None:
        super().__init__(configuration)
        self.limiter = limiter

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        self.limiter.acquire()
        return super().call_api(*args, **kwargs)


def api_configuration(settings: Settings) -> k8s_client.Configuration:
    """In-cluster credentials (the controller's ServiceAccount), or the configured kubeconfig."""
    configuration = k8s_client.Configuration()
    if settings.kubernetes.kubeconfig:
        k8s_config.load_kube_config(settings.kubernetes.kubeconfig, client_configuration=configuration)
    else:
        k8s_config.load_incluster_config(client_configuration=configuration)
    return configuration


def parse_indexes(text: str | None) -> set[int]:
    """'0-2,5' (Job status completedIndexes/failedIndexes) -> {0, 1, 2, 5}."""
    indexes: set[int] = set()
    for part in (text or "").split(","):
        if part.strip():
            low, _, high = part.partition("-")
            indexes.update(range(int(low), int(high or low) + 1))
    return indexes


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in obj.get("status", {}).get("conditions") or ():
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition
    return None


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    for status in pod.get("status", {}).get("containerStatuses") or ():
        if status.get("name") == CONTAINER and "terminated" in (status.get("state") or {}):
            return status["state"]["terminated"]
    return None


def _describe_termination(state: dict[str, Any]) -> str:
    """The termination message (ours, or the log tail), else the exit code and the kubelet's reason."""
    if state.get("reason") == "OOMKilled":
        return "out of memory (killed at the container's memory limit)"
    message = (state.get("message") or "").strip()
    if message:
        return message[-2000:]
    reason = state.get("reason") or ""
    return f"exited with code {state.get('exitCode')}" + (f" ({reason})" if reason not in ("", "Error") else "")


def pod_waiting_reason(pod: dict[str, Any]) -> tuple[str, bool] | None:
    """Why a pod is not running yet, as (readable reason, stuck?); None when it is not waiting."""
    status = pod.get("status", {})
    for container in status.get("containerStatuses") or ():
        waiting = (container.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
            reason = waiting["reason"]
            detail = (waiting.get("message") or "").strip()
            if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"):
                text = f"image {container.get('image', '?')} cannot be pulled ({reason})"
            else:
                text = reason
            return (f"{text}: {detail}" if detail else text), reason in _STUCK_REASONS
    for condition in status.get("conditions") or ():
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            detail = (condition.get("message") or "").strip()
            reason = condition.get("reason") or "not scheduled"
            return (f"{reason}: {detail}" if detail else reason), False
    return None


@dataclass
class _Tracked:
    attempt: Attempt
    job: str
    index: int | None            # position in an Indexed Job
    since: float                 # launch or adoption time (monotonic)
    started: bool = False        # a pod of it has run (so a vanished Job is a failure, not a disruption)
    waiting: str = ""            # readable reason it is not running yet
    waiting_since: float = 0.0
    stuck: bool = False          # failed because its pod can never start: its Job is deleted
    cancelled: str = ""          # reason, when cancel() was called


@dataclass
class _Cache:
    """What the list/watch calls last saw of our Jobs and their Pods."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)              # job name -> Job
    pods: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)   # job name -> pod name -> Pod
    deleted: set[str] = field(default_factory=set)   # Jobs a watch saw deleted since the last list
    listed_at: float = -math.inf                     # when the last complete Job list was requested


class KubernetesLauncher(Launcher):
    def __init__(self, settings: Settings, *, on_change: Callable[[], None] = lambda: None,
                 api_client: k8s_client.ApiClient | None = None) -> None:
        self.settings = settings
        self.k8s = settings.kubernetes
        self.namespace = self.k8s.namespace
        self.on_change = on_change
        self.limiter = RateLimiter(self.k8s.qps, self.k8s.burst)
        configuration = api_client.configuration if api_client is not None else api_configuration(settings)
        self.api = ThrottledApiClient(configuration, self.limiter)
        self.batch = k8s_client.BatchV1Api(self.api)
        self.core = k8s_client.CoreV1Api(self.api)
        self.selector = f"{MANAGED_BY}={MANAGER},{CONTROLLER_LABEL}={label_value(self.k8s.controller_id)}"
        self.lock = threading.Lock()
        self.cache = _Cache()
        self.tracked: dict[str, _Tracked] = {}
        self.by_job: dict[str, set[str]] = {}        # job name -> tracked attempt ids
        self.dirty: set[str] = set()                 # jobs whose state changed since the last poll
        self.results: list[AttemptResult] = []
        self.stopping = threading.Event()
        self._responses: list[Any] = []
        self._creators = ThreadPoolExecutor(self.k8s.launch_concurrency, thread_name_prefix="k8s-create")
        self._threads = [threading.Thread(target=self._watch_loop, args=(kind,), daemon=True, name=f"k8s-watch-{kind}")
                         for kind in ("jobs", "pods")]
        for thread in self._threads:
            thread.start()

    # --- Launcher interface ------------------------------------------------------------------------

    def capacity(self) -> Capacity:
        return Capacity()  # the cluster's scheduler (and Kueue) do the queueing

    def launch(self, attempts: list[Attempt]) -> None:
        jobs: list[tuple[list[Attempt], dict[str, Any]]] = []
        for group in self._groups(attempts):
            try:
                jobs.append((group, job_manifest(group, self.settings)))
            except ManifestError as exc:
                with self.lock:
                    self.results.extend(AttemptResult(a.attempt_id, Outcome.CONFIG_ERROR, str(exc)) for a in group)
        with self.lock:
            for group, manifest in jobs:
                name = manifest["metadata"]["name"]
                for index, attempt in enumerate(group):
                    position = index if len(group) > 1 else None
                    attempt.handle = {"job": name, "namespace": self.namespace,
                                      **({"index": position} if position is not None else {})}
                    self._track(_Tracked(attempt, name, position, time.monotonic()))
        errors = self._creators.map(self._create, [manifest for _, manifest in jobs])
        for (group, _), error in zip(jobs, errors, strict=True):
            if error:
                with self.lock:
                    for attempt in group:
                        self._untrack(attempt.attempt_id)
                        self.results.append(AttemptResult(attempt.attempt_id, Outcome.DISRUPTED, error))
        self.on_change()

    def poll(self) -> list[AttemptResult]:
        doomed: list[str] = []
        with self.lock:
            now = time.monotonic()
            candidates = {a for job in self.dirty for a in self.by_job.get(job, ())}
            candidates.update(a for a, t in self.tracked.items() if t.waiting or t.cancelled)
            self.dirty.clear()
            for attempt_id in candidates:
                tracked = self.tracked[attempt_id]
                result = self._evaluate(tracked, now)
                if result is not None:
                    self._untrack(attempt_id)
                    self.results.append(result)
                    if tracked.stuck:
                        doomed.append(tracked.job)
            results, self.results = self.results, []
            self._export_waiting(now)
        self._delete(doomed)
        return results

    def _export_waiting(self, now: float) -> None:
        longest = {pool.name: 0.0 for pool in self.k8s.node_pools}
        for tracked in self.tracked.values():
            if tracked.waiting:
                pool = (self.cache.jobs.get(tracked.job) or {}).get("metadata", {}).get("labels", {}).get(POOL_LABEL)
                if pool in longest:
                    longest[pool] = max(longest[pool], now - tracked.waiting_since)
        for pool in self.k8s.node_pools:
            WAITING_SECONDS.labels(pool.name, str(pool.gpu).lower()).set(longest[pool.name])

    def adopt(self, attempts: list[Attempt]) -> None:
        """Re-attaches to the Jobs of `attempts`, found by label in a fresh list; creates nothing.

        An attempt is found by its handle, else in a Job's `ehrlab.io/attempts` annotation (which also
        gives its index in an Indexed Job), else under the name a single-attempt Job of it would have.
        """
        now = time.monotonic()  # before the list: a Job missing from it is then known to be gone
        try:
            self._relist("jobs")
        except Exception as exc:  # the watch thread keeps trying; until it lists, nothing is judged vanished
            log.warning("listing jobs to adopt failed: %s", exc)
        with self.lock:
            found: dict[str, tuple[str, int | None]] = {}
            for name, job in self.cache.jobs.items():
                ids = _attempt_ids(job)
                for index, attempt_id in enumerate(ids):
                    found[attempt_id] = (name, index if len(ids) > 1 else None)
            for attempt in attempts:
                if attempt.handle.get("job"):
                    name, index = attempt.handle["job"], attempt.handle.get("index")
                else:
                    name, index = found.get(attempt.attempt_id) or (job_name([attempt]), None)
                attempt.handle = {"job": name, "namespace": self.namespace,
                                  **({"index": index} if index is not None else {})}
                self._track(_Tracked(attempt, name, index, now))
        self.on_change()

    def cancel(self, attempt_ids: list[str], reason: str) -> None:
        with self.lock:
            jobs = set()
            for attempt_id in attempt_ids:
                tracked = self.tracked.get(attempt_id)
                if tracked is not None:
                    tracked.cancelled = reason or "cancelled"
                    jobs.add(tracked.job)
            # an Indexed Job goes only when none of its attempts still runs for anyone
            doomed = [job for job in jobs if all(self.tracked[a].cancelled for a in self.by_job.get(job, ()))]
        self._delete(doomed)
        self.on_change()

    def close(self) -> None:
        self.stopping.set()
        for response in list(self._responses):
            _shutdown(response)
        self._creators.shutdown(wait=True)
        for thread in self._threads:
            thread.join(timeout=5)
        self.api.close()

    def waiting(self) -> dict[str, str]:
        """Attempts not running yet and why (unschedulable, queued by Kueue, image pull back-off…)."""
        with self.lock:
            return {attempt_id: t.waiting for attempt_id, t in self.tracked.items() if t.waiting}

    # --- launching and deleting --------------------------------------------------------------------

    def _track(self, tracked: _Tracked) -> None:
        self.tracked[tracked.attempt.attempt_id] = tracked
        self.by_job.setdefault(tracked.job, set()).add(tracked.attempt.attempt_id)
        self.dirty.add(tracked.job)

    def _untrack(self, attempt_id: str) -> None:
        tracked = self.tracked.pop(attempt_id)
        siblings = self.by_job[tracked.job]
        siblings.discard(attempt_id)
        if not siblings:
            del self.by_job[tracked.job]

    def _groups(self, attempts: list[Attempt]) -> Iterator[list[Attempt]]:
        """Attempts of one experiment, kind and resources launched together share an Indexed Job when
        there are at least `indexed_min_tasks` of them; everything else gets a Job of its own."""
        buckets: dict[tuple[str, str, str], list[Attempt]] = {}
        for attempt in attempts:
            key = (attempt.experiment_id, attempt.kind.name, attempt.resources.model_dump_json())
            buckets.setdefault(key, []).append(attempt)
        for bucket in buckets.values():
            if len(bucket) < max(2, self.k8s.indexed_min_tasks):
                yield from ([attempt] for attempt in bucket)
            else:
                size = self.k8s.indexed_max_tasks
                yield from (bucket[start:start + size] for start in range(0, len(bucket), size))

    def _create(self, manifest: dict[str, Any]) -> str:
        """Creates the Job: '' when it exists afterwards (created now, or before under its unique name)."""
        name = manifest["metadata"]["name"]
        try:
            self.batch.create_namespaced_job(self.namespace, manifest, _preload_content=False)
        except ApiException as exc:
            if exc.status == 409:
                log.info("job %s exists already: adopting it", name)
                return ""
            log.warning("creating job %s failed: %s %s", name, exc.status, exc.reason)
            return f"creating Job {name} failed: HTTP {exc.status} {exc.reason}: {_api_message(exc)}"
        except Exception as exc:  # connection refused, timeouts: the attempt did not start
            log.warning("creating job %s failed: %s", name, exc)
            return f"creating Job {name} failed: {type(exc).__name__}: {exc}"
        return ""

    def _delete(self, jobs: list[str]) -> None:
        for name in jobs:
            try:
                self.batch.delete_namespaced_job(name, self.namespace, propagation_policy=self.k8s.delete_propagation,
                                                 _preload_content=False)
            except ApiException as exc:
                if exc.status != 404:
                    log.warning("deleting job %s failed: %s %s", name, exc.status, exc.reason)

    # --- outcomes ----------------------------------------------------------------------------------

    def _evaluate(self, tracked: _Tracked, now: float) -> AttemptResult | None:
        attempt_id = tracked.attempt.attempt_id
        if tracked.cancelled:
            return AttemptResult(attempt_id, Outcome.FAILED, tracked.cancelled)
        job = self.cache.jobs.get(tracked.job)
        pods = sorted((p for p in self.cache.pods.get(tracked.job, {}).values()
                       if tracked.index is None or _pod_index(p) == tracked.index),
                      key=lambda p: p["metadata"].get("creationTimestamp") or "")
        if any((p.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed") for p in pods):
            tracked.started = True
        if job is None:
            # gone only if a watch saw it deleted, or a list requested after we launched it lacks it
            if tracked.job not in self.cache.deleted and self.cache.listed_at < tracked.since:
                return None
            if tracked.started:
                return AttemptResult(attempt_id, Outcome.FAILED, f"Job {tracked.job} was deleted while it ran")
            return AttemptResult(attempt_id, Outcome.DISRUPTED, f"Job {tracked.job} no longer exists")
        finished = _finished(job, pods, tracked.index)
        if finished is not None:
            return AttemptResult(attempt_id, *finished)
        return self._check_waiting(tracked, job, pods, now)

    def _check_waiting(self, tracked: _Tracked, job: dict[str, Any], pods: list[dict[str, Any]],
                       now: float) -> AttemptResult | None:
        reason: tuple[str, bool] | None = None
        if (job.get("spec") or {}).get("suspend"):
            queue = job["metadata"].get("labels", {}).get(QUEUE_LABEL, "")
            reason = (f"suspended: waiting for admission by Kueue queue {queue}" if queue else "suspended"), False
        elif pods:
            reason = pod_waiting_reason(pods[-1])
        text, stuck = reason or ("", False)
        if text != tracked.waiting:
            if text:
                log.info("attempt %s waits: %s", tracked.attempt.attempt_id, text)
            tracked.waiting, tracked.waiting_since = text, now
        if not text:
            return None
        waited = now - tracked.waiting_since
        if stuck and waited >= self.k8s.image_pull_grace_s:
            tracked.stuck = True
            return AttemptResult(tracked.attempt.attempt_id, Outcome.CONFIG_ERROR, text)
        if not stuck and self.k8s.pending_timeout_s and waited >= self.k8s.pending_timeout_s:
            tracked.stuck = True
            return AttemptResult(tracked.attempt.attempt_id, Outcome.FAILED,
                                 f"not running after {waited:.0f} s: {text}")
        return None

    # --- watching ----------------------------------------------------------------------------------

    def _lister(self, kind: str) -> Callable[..., Any]:
        if kind == "jobs":
            return lambda **kw: self.batch.list_namespaced_job(self.namespace, label_selector=self.selector, **kw)
        return lambda **kw: self.core.list_namespaced_pod(self.namespace, label_selector=self.selector, **kw)

    def _ours(self, obj: dict[str, Any]) -> bool:
        # checked again here: a selector the server ignored must not make us adopt another controller's Jobs
        labels = obj.get("metadata", {}).get("labels") or {}
        return labels.get(MANAGED_BY) == MANAGER and labels.get(CONTROLLER_LABEL) == label_value(self.k8s.controller_id)

    def _apply(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        """One watch event into the cache (under the lock)."""
        name = obj["metadata"]["name"]
        if kind == "jobs":
            if event == "DELETED":
                self.cache.jobs.pop(name, None)
                self.cache.pods.pop(name, None)
                self.cache.deleted.add(name)
            else:
                self.cache.jobs[name] = obj
            self.dirty.add(name)
            return
        job = _job_of_pod(obj)
        pods = self.cache.pods.setdefault(job, {})
        if event == "DELETED":
            pods.pop(name, None)
        else:
            pods[name] = obj
        self.dirty.add(job)

    def _relist(self, kind: str) -> str:
        requested = time.monotonic()
        body = json.loads(self._lister(kind)(_preload_content=False, _request_timeout=30).data)
        items = [item for item in body.get("items") or () if self._ours(item)]
        with self.lock:
            if kind == "jobs":
                self.cache.jobs = {item["metadata"]["name"]: item for item in items}
                self.cache.deleted.clear()
                self.cache.listed_at = requested
            else:
                self.cache.pods = {}
                for item in items:
                    self.cache.pods.setdefault(_job_of_pod(item), {})[item["metadata"]["name"]] = item
            self.dirty.update(self.by_job)
        self.on_change()
        return (body.get("metadata") or {}).get("resourceVersion") or ""

    def _watch_loop(self, kind: str) -> None:
        """List, then watch from the list's resourceVersion; re-list every resync period or after a 410."""
        while not self.stopping.is_set():
            try:
                version: str | None = self._relist(kind)
                deadline = time.monotonic() + self.k8s.resync_seconds
                while version is not None and not self.stopping.is_set() and time.monotonic() < deadline:
                    version = self._watch_once(kind, version, deadline)
            except Exception as exc:  # API unreachable, auth, timeouts: keep trying; the cache just ages
                if self.stopping.is_set():
                    return
                log.warning("watching %s failed (%s): retrying", kind, exc)
                self.stopping.wait(1.0)

    def _watch_once(self, kind: str, version: str, deadline: float) -> str | None:
        """Streams events from `version` until the deadline; the version to resume from, None on 410 Gone."""
        remaining = max(1, int(deadline - time.monotonic()))
        response = self._lister(kind)(watch=True, allow_watch_bookmarks=True, timeout_seconds=remaining,
                                      resource_version=version or None, _preload_content=False,
                                      _request_timeout=(10, remaining + 5))
        self._responses.append(response)
        try:
            for line in iter_resp_lines(response):
                if self.stopping.is_set():
                    break
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise RuntimeError(f"watch error: {obj.get('reason')}: {obj.get('message')}")
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if event.get("type") != "BOOKMARK" and self._ours(obj):
                    with self.lock:
                        self._apply(kind, event["type"], obj)
                    self.on_change()
        except Exception as exc:
            if not _is_timeout(exc):
                raise  # the server or the client ended an idle watch on a timeout: resume from `version`
        finally:
            self._responses.remove(response)
            _shutdown(response)
        return version


def _finished(job: dict[str, Any], pods: list[dict[str, Any]],
              index: int | None) -> tuple[Outcome, str, int | None] | None:
    """(outcome, message, exit code) once the attempt (the Job, or its index) has ended, else None."""
    status = job.get("status") or {}
    if index is not None:
        if index in parse_indexes(status.get("completedIndexes")):
            return Outcome.SUCCEEDED, "", 0
        index_failed = index in parse_indexes(status.get("failedIndexes"))
    else:
        if _condition(job, "Complete") or _condition(job, "SuccessCriteriaMet"):
            return Outcome.SUCCEEDED, "", 0
        index_failed = False
    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    if failed and failed.get("reason") == "DeadlineExceeded":
        return Outcome.FAILED, f"timed out after {job['spec'].get('activeDeadlineSeconds')} s", None
    if not (failed or index_failed):
        return None
    for pod in reversed(pods):  # the newest pod that ended says why: exit code and termination message
        state = _terminated(pod)
        if state is not None and state.get("exitCode") not in (None, 0) and not _condition(pod, "DisruptionTarget"):
            code = int(state["exitCode"])
            return _EXIT_OUTCOMES.get(code, Outcome.FAILED), _describe_termination(state), code
    if failed is None:
        return None  # the index failed but its pod has not reached the cache yet
    return Outcome.FAILED, f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".rstrip(": "), None


def _job_of_pod(pod: dict[str, Any]) -> str:
    labels = pod["metadata"].get("labels") or {}
    return labels.get("batch.kubernetes.io/job-name") or labels.get("job-name") or ""


def _attempt_ids(job: dict[str, Any]) -> list[str]:
    try:
        return list(json.loads((job["metadata"].get("annotations") or {}).get(ATTEMPTS_ANNOTATION, "[]")))
    except ValueError:
        return []


def _pod_index(pod: dict[str, Any]) -> int | None:
    meta = pod.get("metadata", {})
    value = (meta.get("labels") or {}).get(INDEX_LABEL) or (meta.get("annotations") or {}).get(INDEX_LABEL)
    return int(value) if value is not None else None


def _api_message(exc: ApiException) -> str:
    try:
        return json.loads(exc.body or "{}").get("message", "")[:500]
    except ValueError:
        return str(exc.body or "")[:500]


def _is_timeout(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return "timeout" in text or "timed out" in text


def _shutdown(response: Any) -> None:
    """Unblocks a thread reading a streaming response (urllib3 ≥ 2.3), then closes it."""
    try:
        getattr(response, "shutdown", lambda: None)()
        response.close()
    except Exception:  # already closed: nothing to release
        pass
