"""Every service of a running stack answers gRPC health, lists itself in reflection and serves /metrics;
with a token configured, every call but health and reflection needs it."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from prometheus_client.parser import text_string_to_metric_families

from ehrlab.core.channels import open_channel
from ehrlab.core.embedded.stack import START_ORDER, Stack
from ehrlab.v1 import common_pb2, controller_pb2, controller_pb2_grpc, result_store_pb2, result_store_pb2_grpc

GRPC_NAMES = {
    "controller": "ehrlab.v1.Controller", "result-store": "ehrlab.v1.ResultStore", "data-prep": "ehrlab.v1.DataPrep",
    "trainer": "ehrlab.v1.Trainer", "hpo-controller": "ehrlab.v1.HpoController",
    "ehr-generator": "ehrlab.v1.EhrGenerator", "grader": "ehrlab.v1.Grader",
}
HEALTH, REFLECTION = "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"


def health_check(address: str, service: str = "") -> int:
    with grpc.insecure_channel(address) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                         timeout=10).status


def handled(metrics_port: int, service: str, method: str, code: str) -> float:
    """ehrlab_grpc_server_handled_total for one method and code, as the service's /metrics shows it now."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    wanted = {"grpc_service": service, "grpc_method": method, "grpc_code": code}
    return sum(sample.value for family in text_string_to_metric_families(text)
               if family.name == "ehrlab_grpc_server_handled"
               for sample in family.samples
               if sample.name == "ehrlab_grpc_server_handled_total" and wanted.items() <= sample.labels.items())


def test_the_stack_runs_all_seven_services(stack: Stack) -> None:
    assert sorted(stack.processes) == sorted(GRPC_NAMES) == sorted(START_ORDER)


@pytest.mark.parametrize("name", START_ORDER)
def test_every_service_answers_health_for_itself(stack: Stack, name: str) -> None:
    address = stack.processes[name].address
    assert health_check(address) == health_pb2.HealthCheckResponse.SERVING
    assert health_check(address, GRPC_NAMES[name]) == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as unknown:
        health_check(address, "ehrlab.v1.NoSuchService")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("name", START_ORDER)
def test_every_service_describes_itself_through_reflection(stack: Stack, name: str) -> None:
    with grpc.insecure_channel(stack.processes[name].address) as channel:
        reflection = ProtoReflectionDescriptorDatabase(channel)
        services = set(reflection.get_services())
        assert {GRPC_NAMES[name], HEALTH, REFLECTION} <= services
        # the whole schema comes with it (imports included), so grpcurl-style clients can call any method
        described = DescriptorPool(reflection).FindServiceByName(GRPC_NAMES[name])
        assert described.methods
        for method in described.methods:
            assert method.input_type.fields is not None and method.output_type.full_name


@pytest.mark.parametrize("name", START_ORDER)
def test_every_service_counts_its_calls_on_metrics(stack: Stack, name: str) -> None:
    process = stack.processes[name]
    before = handled(process.metrics, HEALTH, "Check", "OK")
    for _ in range(3):
        health_check(process.address, GRPC_NAMES[name])
    assert handled(process.metrics, HEALTH, "Check", "OK") == before + 3


def _denied(call: Callable[[], object]) -> bool:
    try:
        call()
    except grpc.RpcError as error:
        return error.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    return False


def test_with_a_token_only_health_and_reflection_are_open(stack_factory: Callable[..., Stack]) -> None:
    private = stack_factory(services=("result-store", "controller"), EHRLAB_TOKEN="s3cret")
    controller, store = private.processes["controller"], private.processes["result-store"]
    for token in ("", "wrong"):
        with open_channel(controller.address, token=token) as to_controller, \
                open_channel(store.address, token=token) as to_store:
            assert _denied(lambda: controller_pb2_grpc.ControllerStub(to_controller).ListExperiments(
                controller_pb2.ListExperimentsRequest(), timeout=10))
            assert _denied(lambda: result_store_pb2_grpc.ResultStoreStub(to_store).Progress(
                result_store_pb2.ProgressRequest(experiment_id="x"), timeout=10))
    assert handled(store.metrics, "ehrlab.v1.ResultStore", "Progress", "UNAUTHENTICATED") == 2
    for process in (controller, store):
        assert health_check(process.address) == health_pb2.HealthCheckResponse.SERVING
        with grpc.insecure_channel(process.address) as channel:
            assert set(ProtoReflectionDescriptorDatabase(channel).get_services()) >= {HEALTH, REFLECTION}

    # with the token, everything works end to end: the controller and its workers send it to the result-store
    with private.client() as client:
        experiment = client.submit({"name": "with-token", "steps": {
            "a": {"kind": "noop", "params": {"results": [{"value": 1}]}},
            "b": {"kind": "noop", "inputs": {"upstream": "a"}, "params": {"results": [{"value": 2}]}}}})
        finished = client.wait(experiment.id, timeout=120)
        assert finished.state == common_pb2.EXPERIMENT_STATE_SUCCEEDED, finished.error
        assert sorted(row["value"] for row in client.results(experiment.id)) == [1, 2]
        assert client.progress(experiment.id).ratio == 1.0
