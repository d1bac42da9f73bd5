"""Every Job manifest the launcher can produce passes `kubernetes-validate --strict` (1.30 and newest)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ehrlab.core.kinds import Resources
from ehrlab.engine.launchers.k8s_manifests import job_manifest, job_name, label_value
from tests.k8s.support import GPU_KIND, GPU_POOL, attempt, settings, validate_strict

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def variants() -> dict[str, dict[str, Any]]:
    queued = GPU_POOL.model_copy(update={"queue": "gpu-queue"})
    full = {"config_map": "ehrlab-config", "tls_ca_secret": "ehrlab-tls", "env_from_secrets": ["ehrlab-s3"],
            "image_pull_secrets": ["registry"], "env": {"OMP_NUM_THREADS": "2"}, "labels": {"team": "ml"}}
    return {
        "cpu": job_manifest([attempt()], settings()),
        "cpu-configured": job_manifest([attempt(resources=Resources(cpu=0.25, memory="300Mi"))], settings(**full)),
        "gpu": job_manifest([attempt(kind=GPU_KIND)], settings()),
        "indexed": job_manifest([attempt(f"xabc-{i}") for i in range(12)], settings(**full)),
        "suspended": job_manifest([attempt(kind=GPU_KIND)], settings(node_pools=[{"name": "cpu"}, queued])),
        "indexed-suspended-gpu": job_manifest([attempt(f"xabc-{i}", kind=GPU_KIND) for i in range(3)],
                                              settings(node_pools=[queued], **full)),
    }


def test_every_variant_passes_strict_validation(tmp_path: Path) -> None:
    assert validate_strict(variants().values(), tmp_path) == []


def test_validation_catches_a_broken_manifest(tmp_path: Path) -> None:
    """The check is real: an unknown field and a wrong type are both rejected."""
    job = variants()["cpu"]
    job["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1
    assert validate_strict([job], tmp_path, "unknown.yaml")
    job = variants()["cpu"]
    job["spec"]["backoffLimit"] = "none"
    assert validate_strict([job], tmp_path, "type.yaml")


@pytest.mark.parametrize("name", ["cpu", "gpu", "indexed", "suspended"])
def test_pod_is_locked_down(name: str) -> None:
    job = variants()[name]
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                                            "seccompProfile": {"type": "RuntimeDefault"}}
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["EHRLAB_TERMINATION_LOG"] == "/dev/termination-log"
    assert env["EHRLAB_CONTROLLER_ADDR"] == "ehrlab-controller:50051"
    assert env["EHRLAB_ARTIFACT_STORE"] == "s3://ehrlab-artifacts"
    assert {"name": "scratch", "mountPath": "/tmp"} in container["volumeMounts"]
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert rules[1]["onExitCodes"]["values"] == [2, 3]
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600


def test_configured_secrets_and_config_reach_the_pod() -> None:
    job = variants()["cpu-configured"]
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["EHRLAB_CONFIG"] == "/etc/ehrlab/config/config.yaml" and env["EHRLAB_TLS_CA"] == "/etc/ehrlab/tls/ca.crt"
    assert env["OMP_NUM_THREADS"] == "2"
    assert container["envFrom"] == [{"secretRef": {"name": "ehrlab-s3"}}]
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert {v["name"] for v in pod["volumes"]} == {"scratch", "config", "tls"}
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": str(300 * 2**20)},
                                      "limits": {"cpu": "250m", "memory": str(300 * 2**20)}}
    assert job["metadata"]["labels"]["team"] == "ml"


def test_indexed_job_runs_each_index_as_its_attempt() -> None:
    job = variants()["indexed"]
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimitPerIndex"]) == \
        ("Indexed", 12, 12, 0)
    assert "backoffLimit" not in spec
    [container] = spec["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert json.loads(env["EHRLAB_INDEXED_TASKS"])[4] == ["xabc-4", 1]
    assert container["command"][:2] == ["python3", "-c"]
    assert "ehrlab.io/task" not in job["metadata"]["labels"]
    assert json.loads(job["metadata"]["annotations"]["ehrlab.io/attempts"])[11] == "xabc-11.1"


def test_indexed_entrypoint_execs_the_task_of_its_index(tmp_path: Path) -> None:
    """The entrypoint really runs: a fake `ehrlab` on PATH records the arguments it was given."""
    [container] = variants()["indexed"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    fake = tmp_path / "ehrlab"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'args'}\n")
    fake.chmod(0o755)
    subprocess.run([sys.executable, *container["command"][1:]], check=True, timeout=30,
                   env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "JOB_COMPLETION_INDEX": "7",
                        "EHRLAB_INDEXED_TASKS": env["EHRLAB_INDEXED_TASKS"]})
    assert (tmp_path / "args").read_text().split() == ["task", "run", "xabc-7", "--attempt", "1"]


@pytest.mark.parametrize("text", ["xabc-1", "x" * 80, "exp/with spaces:and:colons", "-leading-and-trailing-",
                                  "ünïcode-task"])
def test_label_values_are_valid_and_distinct(text: str) -> None:
    value = label_value(text)
    assert len(value) <= 63 and LABEL_VALUE.match(value), value
    assert label_value(text + "y") != value


def test_job_names_are_dns_labels_and_distinct() -> None:
    long = [attempt("x" * 70 + "-1", 2)]
    names = {job_name(long), job_name([attempt("xabc-1", 1)]), job_name([attempt("xabc-1", 2)]),
             job_name([attempt("Xabc_1", 1)]), job_name([attempt(f"xabc-{i}") for i in range(9)])}
    assert len(names) == 5
    assert all(len(name) <= 63 and DNS_LABEL.match(name) for name in names), names


def test_mixed_group_is_refused() -> None:
    with pytest.raises(ValueError, match="one kind with equal resources"):
        job_manifest([attempt("xabc-1"), attempt("xabc-2", kind=GPU_KIND)], settings())
