"""Platform settings: one model, read from a YAML file (EHRLAB_CONFIG) and environment variables.

Environment variables win over the file, so a Helm chart can mount one config file and inject
secrets (database URL, S3 keys, tokens) as variables from Kubernetes Secrets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ehrlab.core.config import Layer, SpecModel, load_layer, merge_layers, validate

SERVICE_PORTS = {
    "controller": 50051, "result-store": 50052, "data-prep": 50053, "trainer": 50054,
    "hpo-controller": 50055, "ehr-generator": 50056, "grader": 50057,
}


class NodePool(SpecModel):
    """A Kubernetes node pool: where tasks that fit it are scheduled."""

    name: str
    gpu: bool = False
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    gpu_resource: str = "nvidia.com/gpu"
    queue: str = ""                       # Kueue LocalQueue; set to submit suspended Jobs


class KubernetesSettings(SpecModel):
    namespace: str = "default"
    images: dict[str, str] = Field(default_factory=dict)   # service name -> image
    image_pull_policy: str = "IfNotPresent"
    node_pools: list[NodePool] = Field(default_factory=lambda: [NodePool(name="cpu")])
    qps: float = 50.0
    burst: int = 100
    service_account: str = "ehrlab-task"
    ttl_seconds_after_finished: int = 3600
    resync_seconds: float = 60.0
    indexed_min_tasks: int = 8            # fan-outs of at least this many identical tasks become Indexed Jobs
    env_from_secrets: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    controller_id: str = "ehrlab"         # label value a controller finds its own Jobs by (one per namespace)
    kubeconfig: str = ""                  # empty: in-cluster service account, else this kubeconfig file
    env: dict[str, str] = Field(default_factory=dict)       # extra plain variables for task pods
    config_map: str = ""                  # ConfigMap with config.yaml, mounted into task pods as EHRLAB_CONFIG
    tls_ca_secret: str = ""               # Secret with ca.crt that task pods trust for gRPC TLS
    image_pull_secrets: list[str] = Field(default_factory=list)
    delete_propagation: Literal["Background", "Foreground"] = "Background"
    launch_concurrency: int = Field(8, ge=1)   # Job creations in flight at once (QPS still applies)
    indexed_max_tasks: int = Field(500, ge=1)  # larger fan-outs are split over several Indexed Jobs
    image_pull_grace_s: float = 120.0     # an image that cannot be pulled this long fails the attempt
    pending_timeout_s: float = 0.0        # unschedulable this long fails the attempt (0: wait for capacity)


class LocalLauncherSettings(SpecModel):
    cpus: float = Field(default_factory=lambda: float(os.cpu_count() or 1))
    gpus: int = 0                          # GPU slots (real or simulated)
    mode: Literal["pool", "exec"] = "pool"  # pool: reusable worker processes; exec: `ehrlab task run` per attempt
    max_tasks_per_worker: int = 500
    max_processes: int = 64                 # attempts running at once, whatever their cpu request


class TlsSettings(SpecModel):
    cert: str = ""                         # server: certificate chain (PEM path)
    key: str = ""                          # server: private key (PEM path)
    ca: str = ""                           # client: CA bundle to trust (PEM path)


class Settings(SpecModel):
    home: str = ".ehrlab"
    database_url: str = ""
    database_retry_s: float = Field(60.0, gt=0)  # how long a transaction is retried across a database outage
    artifact_store: str = ""               # path, file:// or s3://; default: {home}/store
    launcher: Literal["local", "kubernetes"] = "local"
    local: LocalLauncherSettings = Field(default_factory=LocalLauncherSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    addresses: dict[str, str] = Field(default_factory=dict)  # service -> host:port
    tls: TlsSettings = Field(default_factory=TlsSettings)
    token: str = ""                        # bearer token required by servers and sent by clients
    reconcile_interval_s: float = 0.05
    default_max_attempts: int = 3
    pushgateway: str = ""

    @property
    def store_uri(self) -> str:
        return self.artifact_store or str(Path(self.home, "store").absolute())

    def address(self, service: str) -> str:
        return self.addresses.get(service) or f"127.0.0.1:{SERVICE_PORTS[service]}"


_ENV = {
    "EHRLAB_HOME": ("home",),
    "EHRLAB_DATABASE_URL": ("database_url",),
    "EHRLAB_DATABASE_RETRY_S": ("database_retry_s",),
    "EHRLAB_ARTIFACT_STORE": ("artifact_store",),
    "EHRLAB_LAUNCHER": ("launcher",),
    "EHRLAB_LOCAL_CPUS": ("local", "cpus"),
    "EHRLAB_LOCAL_GPUS": ("local", "gpus"),
    "EHRLAB_LOCAL_MODE": ("local", "mode"),
    "EHRLAB_TLS_CERT": ("tls", "cert"),
    "EHRLAB_TLS_KEY": ("tls", "key"),
    "EHRLAB_TLS_CA": ("tls", "ca"),
    "EHRLAB_TOKEN": ("token",),
    "EHRLAB_PUSHGATEWAY": ("pushgateway",),
    "EHRLAB_K8S_NAMESPACE": ("kubernetes", "namespace"),
}


def env_layer(environ: dict[str, str] | None = None) -> Layer:
    environ = dict(os.environ if environ is None else environ)
    content: dict[str, Any] = {}
    for var, path in _ENV.items():
        if var in environ:
            node = content
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = environ[var]
    for service in SERVICE_PORTS:  # EHRLAB_CONTROLLER_ADDR, EHRLAB_RESULT_STORE_ADDR, …
        var = f"EHRLAB_{service.upper().replace('-', '_')}_ADDR"
        if var in environ:
            content.setdefault("addresses", {})[service] = environ[var]
    return Layer("environment", content)


def load_settings(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Settings from the YAML file at `path` (or EHRLAB_CONFIG), overridden by the environment."""
    environ = dict(os.environ if environ is None else environ)
    path = path or environ.get("EHRLAB_CONFIG")
    layers = [load_layer(path)] if path else []
    layers.append(env_layer(environ))
    return validate(Settings, merge_layers(layers))
