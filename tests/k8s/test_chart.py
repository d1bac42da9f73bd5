"""The Helm chart: lint, render for several values combinations, and check every object for real —
kubernetes-validate --strict, least-privilege RBAC, locked-down pods, credentials only in Secrets, and
a rendered config that the platform's own Settings model and Job builder accept."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ehrlab.core.settings import load_settings
from ehrlab.engine.launchers.k8s_manifests import job_manifest
from tests.k8s.support import GPU_KIND, attempt, validate_strict

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ehrlab"
GPU_POOLS = [{"name": "cpu", "nodeSelector": {"pool": "cpu"}},
             {"name": "gpu", "gpu": True, "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
              "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
              "queue": "gpu-queue"}]
COMBINATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "secured-monitored-gpu": {
        "auth": {"enabled": True}, "tls": {"enabled": True, "existingSecret": "ehrlab-tls"},
        "monitoring": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}},
                       "prometheusRule": {"enabled": True}},
        "nodePools": GPU_POOLS, "image": {"pullSecrets": ["registry"], "tag": "1.2.3"},
        "jobs": {"deletePropagation": "Foreground", "env": {"OMP_NUM_THREADS": "4"}},
    },
    "external-stores": {
        "postgresql": {"deploy": False, "externalSecret": "ehrlab-db"},
        "objectStore": {"deploy": False, "endpoint": "s3.eu-west-1.amazonaws.com", "secure": True,
                        "existingSecret": "ehrlab-s3-keys"},
        "pushgateway": {"deploy": False, "url": "http://pushgateway.monitoring:9091"},
        "monitoring": {"dashboards": {"enabled": False}}, "auth": {"enabled": True, "existingSecret": "tok"},
    },
    "core-only": {"services": {name: {"enabled": False, "replicas": 1, "resources": {"requests": {}, "limits": {}}}
                               for name in ("data-prep", "trainer", "hpo-controller", "ehr-generator", "grader")}},
}


@pytest.fixture(scope="session")
def helm() -> str:
    run = subprocess.run([str(ROOT / "scripts" / "install-helm.sh")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1]


def helm_run(helm: str, *args: str, values: dict[str, Any] | None = None,
             tmp_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra: list[str] = []
    if values:
        assert tmp_path is not None
        path = tmp_path / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        extra = ["-f", str(path)]
    return subprocess.run([helm, *args, str(CHART), *extra], capture_output=True, text=True, timeout=120)


def render(helm: str, values: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    run = helm_run(helm, "template", "ehrlab", "--namespace", "research", values=values, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
            for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


@pytest.fixture(scope="module", params=sorted(COMBINATIONS))
def rendered(request: pytest.FixtureRequest, helm: str,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    name = request.param
    return name, render(helm, COMBINATIONS[name], tmp_path_factory.mktemp(name))


def test_lint(helm: str, tmp_path: Path) -> None:
    for name, values in COMBINATIONS.items():
        run = helm_run(helm, "lint", "--strict", values=values, tmp_path=tmp_path)
        assert run.returncode == 0, f"{name}: {run.stdout}{run.stderr}"


def test_every_object_passes_strict_validation(rendered: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    name, objects = rendered
    assert validate_strict(objects, tmp_path, f"{name}.yaml") == []


def test_controller_role_is_least_privilege(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    [role] = [o for o in objects if o["kind"] == "Role"]
    assert role["rules"] == [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
    ]
    [binding] = [o for o in objects if o["kind"] == "RoleBinding"]
    assert binding["subjects"][0]["name"].endswith("-controller")
    pods = dict(pod_specs(objects))
    assert pods["Deployment/ehrlab-controller"]["serviceAccountName"] == "ehrlab-controller"
    assert all(spec.get("automountServiceAccountToken") is False
               for name, spec in pods.items() if name != "Deployment/ehrlab-controller")


def test_pods_are_locked_down_and_sized(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    for name, spec in pod_specs(objects):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert container["resources"]["requests"] and container["resources"]["limits"], name
            assert "readinessProbe" in container and "livenessProbe" in container, name


def test_services_probe_grpc_health(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    combination, objects = rendered
    for name, spec in pod_specs(objects):
        if name.startswith("Deployment/") and not name.endswith("pushgateway"):
            [container] = spec["containers"]
            port = container["ports"][0]["containerPort"]
            probe = container["readinessProbe"]
            if combination == "secured-monitored-gpu":  # kubelet gRPC probes cannot speak TLS
                script = probe["exec"]["command"][2]
                assert "HealthStub" in script and f"127.0.0.1:{port}" in script
            else:
                assert probe["grpc"] == {"port": port}


def test_credentials_live_only_in_secrets(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    # the generated credentials (the database URL holds the password, which is checked itself)
    secrets = [base64.b64decode(value).decode() for o in objects if o["kind"] == "Secret"
               for key, value in o.get("data", {}).items() if key != "EHRLAB_DATABASE_URL"]
    assert all(len(secret) >= 20 for secret in secrets)
    everything_else = yaml.safe_dump_all([o for o in objects if o["kind"] != "Secret"])
    assert not [secret for secret in secrets if secret in everything_else]
    for _, spec in pod_specs(objects):
        for container in spec["containers"]:
            for env in container.get("env", []):
                assert not any(word in env["name"] for word in ("PASSWORD", "SECRET", "TOKEN", "KEY")) \
                    or "valueFrom" in env or env["value"].startswith("/etc/"), env


def test_rendered_config_drives_the_launcher(rendered: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    """config.yaml is a valid Settings file, and the Jobs the launcher builds from it validate."""
    combination, objects = rendered
    [config] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-config")]
    path = tmp_path / "config.yaml"
    path.write_text(config["data"]["config.yaml"])
    settings = load_settings(path, environ={})
    assert settings.launcher == "kubernetes" and settings.kubernetes.namespace == "research"
    assert settings.addresses["controller"] == "ehrlab-controller:50051"
    assert settings.kubernetes.config_map == config["metadata"]["name"]
    secrets = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
    for name in settings.kubernetes.env_from_secrets:
        assert name in secrets or combination == "external-stores"
    accounts = {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"}
    assert settings.kubernetes.service_account in accounts
    jobs = [job_manifest([attempt()], settings)]
    if any(pool.gpu for pool in settings.kubernetes.node_pools):
        gpu_job = job_manifest([attempt("xabc-2", kind=GPU_KIND)], settings)
        assert gpu_job["spec"]["suspend"] is True
        jobs.append(gpu_job)
    assert validate_strict(jobs, tmp_path, "jobs.yaml") == []


def test_monitoring_objects_follow_their_toggles(helm: str, tmp_path: Path) -> None:
    defaults = {o["kind"] for o in render(helm, {}, tmp_path)}
    assert not defaults & {"PrometheusRule", "ServiceMonitor"}
    objects = render(helm, COMBINATIONS["secured-monitored-gpu"], tmp_path)
    [rule] = [o for o in objects if o["kind"] == "PrometheusRule"]
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    [monitor] = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    dashboards = [o for o in objects if o["kind"] == "ConfigMap" and "-dashboard-" in o["metadata"]["name"]]
    assert len(dashboards) == len(list((CHART / "dashboards").glob("*.json"))) == 5
    uids = set()
    for configmap in dashboards:
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        [(_, text)] = configmap["data"].items()
        uids.add(json.loads(text)["uid"])
    assert len(uids) == 5


@pytest.mark.parametrize(("values", "message"), [
    ({"jobs": {"deletePropagation": "Sideways"}}, "deletePropagation"),
    ({"jobs": {"qps": "fast"}}, "qps"),
    ({"postgresql": {"deploy": False}}, "externalSecret"),
    ({"tls": {"enabled": True}}, "existingSecret"),
    ({"services": {"trainer": {"replicas": -1}}}, "replicas"),
    ({"nodePools": [{"gpu": True}]}, "name"),
    ({"podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
    ({"colour": "blue"}, "colour"),
])
def test_schema_rejects_bad_values(helm: str, tmp_path: Path, values: dict[str, Any], message: str) -> None:
    run = helm_run(helm, "template", "ehrlab", values=values, tmp_path=tmp_path)
    assert run.returncode != 0 and message in run.stderr, run.stderr


def test_notes_tell_how_to_submit(helm: str, tmp_path: Path) -> None:
    run = helm_run(helm, "install", "ehrlab", "--dry-run=client", "--namespace", "research",
                   values=COMBINATIONS["secured-monitored-gpu"], tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    notes = run.stdout.split("NOTES:", 1)[1]
    assert "port-forward svc/ehrlab-controller 50051:50051" in notes
    assert "EHRLAB_TOKEN" in notes and "--tls-ca ca.crt" in notes and "gpu (GPU, Kueue queue gpu-queue)" in notes
