"""skaffold.yaml names only paths that exist, builds every service (the torch ones on the ML base), and
deploys each built image."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {path.parent.name for path in (ROOT / "services").glob("*/pyproject.toml")}


def config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "skaffold.yaml").read_text())


def named_paths(node: Any, key: str = "") -> list[str]:
    """Every value under a key that holds a path (context, dockerfile, chartPath, valuesFiles, paths, command)."""
    found: list[str] = []
    if isinstance(node, dict):
        for name, value in node.items():
            found += named_paths(value, name)
    elif isinstance(node, list):
        for item in node:
            found += named_paths(item, key)
    elif isinstance(node, str) and key in ("context", "dockerfile", "chartPath", "valuesFiles", "paths", "command"):
        found.append(node)
    return found


def test_every_named_path_exists() -> None:
    paths = named_paths(config())
    assert len(paths) > 20
    for profile in config()["profiles"]:
        for patch in profile.get("patches", []):
            paths += named_paths({"valuesFiles": patch["value"]}) if patch["path"].endswith("valuesFiles") else []
    missing = sorted({p for p in paths if not (ROOT / p).exists()})
    assert missing == []


TORCH_IMAGES = {"ehrlab/trainer", "ehrlab/ehr-generator", "ehrlab/grader"}


def test_every_service_is_built_and_deployed_with_its_image() -> None:
    artifacts = {a["image"]: a for a in config()["build"]["artifacts"]}
    assert set(artifacts) == {f"ehrlab/{service}" for service in SERVICES} | {"ehrlab/ml-base"}
    assert artifacts.pop("ehrlab/ml-base")["docker"]["dockerfile"] == "docker/ml-base.Dockerfile"
    for image, artifact in artifacts.items():
        assert artifact["docker"]["dockerfile"] == f"services/{image.split('/')[1]}/Dockerfile"
        on_ml_base = [{"image": "ehrlab/ml-base", "alias": "BASE_IMAGE"}]
        assert artifact.get("requires") == (on_ml_base if image in TORCH_IMAGES else None), image
    [release] = config()["manifests"]["helm"]["releases"]
    templates = release["setValueTemplates"]
    for service in SERVICES:
        variable = "IMAGE_FULLY_QUALIFIED_ehrlab_" + service.replace("-", "_")
        assert templates[f"services.{service}.image"] == "{{." + variable + "}}"
    values = yaml.safe_load((ROOT / release["chartPath"] / "values.yaml").read_text())
    assert set(values["services"]) == SERVICES


def test_gpu_profile_puts_the_ml_base_on_the_cuda_base() -> None:
    artifacts = config()["build"]["artifacts"]
    [gpu] = [p for p in config()["profiles"] if p["name"] == "gpu"]
    patched = [artifacts[int(match.group(1))]["image"] for patch in gpu["patches"]
               if (match := re.fullmatch(r"/build/artifacts/(\d+)/docker/buildArgs", patch["path"]))]
    assert patched == ["ehrlab/ml-base"]
