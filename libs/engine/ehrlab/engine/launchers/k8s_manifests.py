"""The batch/v1 Job manifests the KubernetesLauncher creates, as plain dicts (no API calls here).

One Job runs one attempt, or, as an Indexed Job, a group of attempts of the same kind with the same
resources (index i runs attempt i of the group). Every Job carries labels that tie it to its
controller, experiment, task and attempt (selectable, 63-character values) and annotations with the
exact ids; a restarted controller finds its Jobs by these labels.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from ehrlab.core.kinds import Resources
from ehrlab.core.settings import NodePool, Settings
from ehrlab.engine.launchers import Attempt

GROUP = "ehrlab.io"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "ehrlab-controller"
CONTROLLER_LABEL = f"{GROUP}/controller"
EXPERIMENT_LABEL = f"{GROUP}/experiment"
TASK_LABEL = f"{GROUP}/task"
ATTEMPT_LABEL = f"{GROUP}/attempt"
KIND_LABEL = f"{GROUP}/kind"
POOL_LABEL = f"{GROUP}/node-pool"
ATTEMPTS_ANNOTATION = f"{GROUP}/attempts"    # JSON list of attempt ids, in index order
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
CONTAINER = "task"
TERMINATION_LOG = "/dev/termination-log"
RUN_AS = 10001
# exit codes of `ehrlab task run` that no retry can change: 2 configuration error, 3 pruned
FINAL_EXIT_CODES = (2, 3)
# Index i of an Indexed Job runs the i-th (task id, attempt) of EHRLAB_INDEXED_TASKS. Plain Python, so
# it works in every service image whatever its ehrlab libraries.
INDEXED_ENTRYPOINT = (
    "import json, os\n"
    "task_id, attempt = json.loads(os.environ['EHRLAB_INDEXED_TASKS'])[int(os.environ['JOB_COMPLETION_INDEX'])]\n"
    "os.execvp('ehrlab', ['ehrlab', 'task', 'run', task_id, '--attempt', str(attempt)])\n"
)


class ManifestError(ValueError):
    """The attempt cannot become a Job with this configuration (no image, no fitting node pool)."""


def label_value(text: str) -> str:
    """A valid label value (≤63 of [A-Za-z0-9._-], alphanumeric at both ends) that still identifies `text`."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "-", text).strip("-._")
    if clean == text and len(clean) <= 63:
        return clean
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{clean[:52].rstrip('-._')}-{digest}".lstrip("-")


def job_name(attempts: Sequence[Attempt]) -> str:
    """`ehrlab-<task>-a<n>` for one attempt; `ehrlab-ix-<hash>` for an Indexed Job's group (DNS-1123, ≤63)."""
    if len(attempts) == 1:
        base = f"ehrlab-{attempts[0].task_id}-a{attempts[0].number}".lower()
    else:
        digest = hashlib.sha256("\n".join(a.attempt_id for a in attempts).encode()).hexdigest()[:16]
        base = f"ehrlab-{attempts[0].experiment_id}-ix-{digest}".lower()
    clean = re.sub(r"[^a-z0-9-]", "-", base).strip("-")
    if len(clean) > 63 or clean != base:
        clean = f"{clean[:52].rstrip('-')}-{hashlib.sha256(base.encode()).hexdigest()[:10]}"
    return clean


def choose_pool(pools: Sequence[NodePool], resources: Resources) -> NodePool:
    """The pool named by the task, else the first GPU pool for GPU tasks, else the first CPU pool."""
    if resources.node_pool:
        for pool in pools:
            if pool.name == resources.node_pool:
                return pool
        raise ManifestError(f"node pool {resources.node_pool!r} is not configured "
                            f"(kubernetes.node_pools: {', '.join(p.name for p in pools) or 'none'})")
    wanted = resources.gpu > 0
    for pool in pools:
        if pool.gpu == wanted:
            return pool
    if wanted:
        raise ManifestError(f"the task needs {resources.gpu} GPU(s) but no node pool has gpu: true")
    if not pools:
        raise ManifestError("kubernetes.node_pools is empty")
    return pools[0]


def _quantity_cpu(cpu: float) -> str:
    return f"{math.ceil(cpu * 1000)}m"


def _resources(resources: Resources, pool: NodePool) -> dict[str, Any]:
    # requests == limits: Guaranteed QoS, so task pods are the last to be evicted under node pressure
    amounts: dict[str, Any] = {"cpu": _quantity_cpu(resources.cpu), "memory": str(resources.memory)}
    limits = dict(amounts)
    if resources.gpu:
        limits[pool.gpu_resource] = str(resources.gpu)
    return {"requests": amounts, "limits": limits}


def _env(settings: Settings) -> list[dict[str, Any]]:
    k8s = settings.kubernetes
    env: dict[str, str] = {
        "EHRLAB_TERMINATION_LOG": TERMINATION_LOG,
        "EHRLAB_HOME": "/tmp/ehrlab",
        "HOME": "/tmp",
        "EHRLAB_ARTIFACT_STORE": settings.store_uri,
    }
    for service, address in sorted(settings.addresses.items()):
        env[f"EHRLAB_{service.upper().replace('-', '_')}_ADDR"] = address
    if k8s.config_map:
        env["EHRLAB_CONFIG"] = "/etc/ehrlab/config/config.yaml"
    if k8s.tls_ca_secret:
        env["EHRLAB_TLS_CA"] = "/etc/ehrlab/tls/ca.crt"
    env.update(k8s.env)
    return [{"name": name, "value": value} for name, value in env.items()]


def _volumes(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    k8s = settings.kubernetes
    volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "scratch", "mountPath": "/tmp"}]
    if k8s.config_map:
        volumes.append({"name": "config", "configMap": {"name": k8s.config_map}})
        mounts.append({"name": "config", "mountPath": "/etc/ehrlab/config", "readOnly": True})
    if k8s.tls_ca_secret:
        volumes.append({"name": "tls", "secret": {"secretName": k8s.tls_ca_secret, "items": [
            {"key": "ca.crt", "path": "ca.crt"}]}})
        mounts.append({"name": "tls", "mountPath": "/etc/ehrlab/tls", "readOnly": True})
    return volumes, mounts


def _security_context() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def job_manifest(attempts: Sequence[Attempt], settings: Settings) -> dict[str, Any]:
    """The Job for one attempt, or an Indexed Job for several attempts of one kind with equal resources."""
    if not attempts:
        raise ValueError("job_manifest needs at least one attempt")
    first = attempts[0]
    if any(a.kind.name != first.kind.name or a.resources != first.resources for a in attempts):
        raise ValueError("an Indexed Job groups attempts of one kind with equal resources only")
    k8s = settings.kubernetes
    image = k8s.images.get(first.kind.service)
    if not image:
        raise ManifestError(f"no image configured for service {first.kind.service!r} "
                            f"(kubernetes.images; task kind {first.kind.name!r})")
    pool = choose_pool(k8s.node_pools, first.resources)
    indexed = len(attempts) > 1
    name = job_name(attempts)

    labels = {**k8s.labels, MANAGED_BY: MANAGER, CONTROLLER_LABEL: label_value(k8s.controller_id),
              EXPERIMENT_LABEL: label_value(first.experiment_id), KIND_LABEL: label_value(first.kind.name),
              POOL_LABEL: label_value(pool.name)}
    if not indexed:
        labels[TASK_LABEL] = label_value(first.task_id)
        labels[ATTEMPT_LABEL] = str(first.number)
    if pool.queue:
        labels[QUEUE_LABEL] = pool.queue
    annotations = {ATTEMPTS_ANNOTATION: json.dumps([a.attempt_id for a in attempts]),
                   f"{GROUP}/experiment-id": first.experiment_id,
                   f"{GROUP}/service": first.kind.service}
    if not indexed:
        annotations[f"{GROUP}/task-id"] = first.task_id
        annotations[f"{GROUP}/task-key"] = first.spec.key
        annotations[f"{GROUP}/task-name"] = first.spec.name

    env = _env(settings)
    if indexed:
        env.append({"name": "EHRLAB_INDEXED_TASKS",
                    "value": json.dumps([[a.task_id, a.number] for a in attempts])})
        command = ["python3", "-c", INDEXED_ENTRYPOINT]
    else:
        command = ["ehrlab", "task", "run", first.task_id, "--attempt", str(first.number)]
    volumes, mounts = _volumes(settings)
    container = {
        "name": CONTAINER, "image": image, "imagePullPolicy": k8s.image_pull_policy, "command": command,
        "env": env, "envFrom": [{"secretRef": {"name": secret}} for secret in k8s.env_from_secrets],
        "resources": _resources(first.resources, pool), "volumeMounts": mounts,
        "securityContext": _security_context(),
        "terminationMessagePath": TERMINATION_LOG, "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": k8s.service_account,
        "automountServiceAccountToken": False,  # tasks talk to ehrlab services, never to the API server
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": volumes,
    }
    if pool.node_selector:
        pod_spec["nodeSelector"] = dict(pool.node_selector)
    if pool.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in pool.tolerations]
    if k8s.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": secret} for secret in k8s.image_pull_secrets]

    # A disruption (preemption, eviction, node drain) is ignored: the Job makes a new pod and no attempt
    # is used. Exit codes 2 and 3 are final, so the Job (or the index) fails at once.
    final = "FailIndex" if indexed else "FailJob"
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "activeDeadlineSeconds": max(1, math.ceil(first.timeout_s)),
        "ttlSecondsAfterFinished": k8s.ttl_seconds_after_finished,
        "podFailurePolicy": {"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": final, "onExitCodes": {"containerName": CONTAINER, "operator": "In",
                                              "values": list(FINAL_EXIT_CODES)}},
        ]},
        "template": {"metadata": {"labels": labels, "annotations": {ATTEMPTS_ANNOTATION:
                                                                    annotations[ATTEMPTS_ANNOTATION]}},
                     "spec": pod_spec},
    }
    if indexed:
        spec.update(completionMode="Indexed", completions=len(attempts), parallelism=len(attempts),
                    backoffLimitPerIndex=0, maxFailedIndexes=len(attempts))
        del spec["backoffLimit"]  # per-index limits replace the Job-wide one
    if pool.queue:
        spec["suspend"] = True  # Kueue admits the Job (unsuspends it) when the queue has quota
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": k8s.namespace, "labels": labels, "annotations": annotations},
            "spec": spec}
