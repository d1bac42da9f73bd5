"""The plain manifests in k8s/: rendered from the chart (never stale), and every overlay builds with
`kubectl kustomize` into objects that pass kubernetes-validate --strict."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ehrlab.core.settings import load_settings
from tests.k8s.support import validate_strict

ROOT = Path(__file__).resolve().parents[2]


def kustomize(path: str) -> list[dict[str, Any]]:
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed")
    run = subprocess.run(["kubectl", "kustomize", str(ROOT / path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


def test_rendered_files_match_the_chart(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    for part in ("charts", "k8s", "scripts"):
        shutil.copytree(ROOT / part, copy / part)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    if (ROOT / ".cache").exists():  # the helm binary, when already extracted
        (copy / ".cache").symlink_to(ROOT / ".cache", target_is_directory=True)
    run = subprocess.run([str(copy / "scripts" / "render-k8s.sh")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    for name in ("k8s/base/ehrlab.yaml", "k8s/overlays/gpu/config.yaml"):
        assert (copy / name).read_text() == (ROOT / name).read_text(), f"{name} is stale: run scripts/render-k8s.sh"


@pytest.mark.parametrize("overlay", ["k8s/base", "k8s/overlays/dev", "k8s/overlays/gpu"])
def test_overlay_objects_pass_strict_validation(overlay: str, tmp_path: Path) -> None:
    objects = kustomize(overlay)
    assert validate_strict(objects, tmp_path) == []
    assert not any(o["kind"] in ("ClusterRole", "ClusterRoleBinding") for o in objects)


def test_dev_overlay_provides_the_secrets_it_references() -> None:
    objects = kustomize("k8s/overlays/dev")
    assert {o["metadata"].get("namespace") for o in objects} == {"ehrlab-dev"}
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet"):
            for container in o["spec"]["template"]["spec"]["containers"]:
                assert container["image"].endswith(":dev") or "ehrlab/" not in container["image"]
                for source in container.get("envFrom", []):
                    assert source["secretRef"]["name"] in secrets
    url = base64.b64decode(secrets["ehrlab-database"]["data"]["EHRLAB_DATABASE_URL"]).decode()
    assert url.startswith("postgresql://ehrlab:") and url.endswith("@ehrlab-postgresql:5432/ehrlab")


def test_gpu_overlay_queues_gpu_jobs_in_kueue(tmp_path: Path) -> None:
    objects = kustomize("k8s/overlays/gpu")
    [config] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "ehrlab-config"]
    path = tmp_path / "config.yaml"
    path.write_text(config["data"]["config.yaml"])
    pools = {pool.name: pool for pool in load_settings(path, environ={}).kubernetes.node_pools}
    assert pools["gpu"].gpu and pools["gpu"].queue == "ehrlab-gpu"
    [local_queue] = [o for o in objects if o["kind"] == "LocalQueue"]
    assert local_queue["metadata"]["name"] == "ehrlab-gpu" and local_queue["metadata"]["namespace"] == "ehrlab"
