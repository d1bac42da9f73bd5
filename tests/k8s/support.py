"""Attempts and settings for launcher and manifest tests, and `kubernetes-validate --strict` as CI runs it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from kubernetes_validate.utils import latest_version

from ehrlab.core.builtin import NoopParams
from ehrlab.core.kinds import Resources, TaskKind
from ehrlab.core.runner import TaskSpec
from ehrlab.core.settings import KubernetesSettings, NodePool, Settings
from ehrlab.engine.launchers import Attempt

NAMESPACE = "ehrlab-test"
# the oldest Kubernetes the chart supports and the newest schemas kubernetes-validate ships
VERSIONS = ("1.30.0", latest_version())
# custom resources have no bundled schema (kubernetes-validate warns and skips them); promtool checks their rules
CUSTOM_KINDS = {"PrometheusRule", "ServiceMonitor", "ResourceFlavor", "ClusterQueue", "LocalQueue"}

CPU_KIND = TaskKind(name="simulate_x", service="data-prep", params=NoopParams, run="ehrlab.core.builtin:noop")
GPU_KIND = TaskKind(name="pretrain_x", service="trainer", params=NoopParams, run="ehrlab.core.builtin:noop",
                    resources=Resources(cpu=4, memory="16Gi", gpu=1))

GPU_POOL = NodePool(name="gpu", gpu=True, node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
                    tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])


def settings(**overrides: Any) -> Settings:
    k8s = {
        "namespace": NAMESPACE,
        "images": {"data-prep": "ehrlab/data-prep:0.1.0", "trainer": "ehrlab/trainer:0.1.0",
                   "controller": "ehrlab/controller:0.1.0"},
        "node_pools": [NodePool(name="cpu", node_selector={"ehrlab.io/pool": "cpu"}), GPU_POOL],
        "resync_seconds": 30.0, "image_pull_grace_s": 0.3, "qps": 0,
        **overrides,
    }
    return Settings(kubernetes=KubernetesSettings(**k8s), artifact_store="s3://ehrlab-artifacts",
                    addresses={"controller": "ehrlab-controller:50051", "result-store": "ehrlab-result-store:50052"})


def attempt(task: str = "xabc-1", number: int = 1, *, kind: TaskKind = CPU_KIND, experiment: str = "xabc",
            resources: Resources | None = None, timeout_s: float = 600) -> Attempt:
    resources = resources or kind.resources
    spec = TaskSpec(task_id=task, kind=kind.name, key=f"key-{task}", dataset="demo", params={},
                    experiment_id=experiment, name=f"step-{task}", attempt=number)
    return Attempt(attempt_id=f"{task}.{number}", task_id=task, experiment_id=experiment, number=number, spec=spec,
                   kind=kind, resources=resources, timeout_s=timeout_s)


def validate_strict(documents: Iterable[dict[str, Any]], tmp_path: Path, name: str = "objects.yaml") -> list[str]:
    """Runs `kubernetes-validate --strict` for every version in VERSIONS; returns its ERROR/WARN lines
    (empty when every object passed). Custom resources must be the only objects without a schema."""
    docs = [d for d in documents if d]
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    problems: list[str] = []
    for version in VERSIONS:
        run = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", version,
                              str(path)], capture_output=True, text=True, timeout=120)
        for line in (run.stdout + run.stderr).splitlines():
            if line.startswith("WARN") and any(f"kind {kind} " in line or f"{kind} " in line for kind in CUSTOM_KINDS):
                continue
            if line.strip():
                problems.append(f"[{version}] {line}")
        if run.returncode and not problems:
            problems.append(f"[{version}] kubernetes-validate exited {run.returncode}")
    return problems
