"""Conversions between the hpo-controller's protobuf messages and the library's types.

Protobuf Structs keep every number as a double (ehrlab.core.wire turns whole numbers back into ints),
so a search space travels with explicit `type`s (SearchSpace.to_dict gives them).
"""

from __future__ import annotations

from typing import Any

from optuna.trial import TrialState

from ehrlab.core.errors import SpecError
from ehrlab.core.wire import from_struct, from_timestamp, to_struct, to_timestamp
from ehrlab.hpo.studies import StudyDefinition, StudySummary, TrialInfo
from ehrlab.v1 import hpo_pb2

STATE_TO_PROTO = {
    TrialState.RUNNING: hpo_pb2.TRIAL_STATE_RUNNING, TrialState.COMPLETE: hpo_pb2.TRIAL_STATE_COMPLETE,
    TrialState.PRUNED: hpo_pb2.TRIAL_STATE_PRUNED, TrialState.FAIL: hpo_pb2.TRIAL_STATE_FAILED,
    TrialState.WAITING: hpo_pb2.TRIAL_STATE_WAITING,
}
STATE_FROM_PROTO = {v: k for k, v in STATE_TO_PROTO.items()}
DIRECTION_TO_PROTO = {"maximize": hpo_pb2.DIRECTION_MAXIMIZE, "minimize": hpo_pb2.DIRECTION_MINIMIZE}
DIRECTION_FROM_PROTO = {v: k for k, v in DIRECTION_TO_PROTO.items()}


def definition_to_request(definition: StudyDefinition) -> hpo_pb2.CreateStudyRequest:
    return hpo_pb2.CreateStudyRequest(
        name=definition.name, metric=definition.metric, direction=DIRECTION_TO_PROTO[definition.direction],
        search_space=to_struct(definition.space), sampler=to_struct(definition.sampler),
        pruner=to_struct(definition.pruner), n_trials=definition.n_trials, parallelism=definition.parallelism,
        timeout_seconds=definition.timeout_s,
        objective=to_struct(definition.objective.model_dump(exclude_none=True)) if definition.objective else None,
        max_retries=definition.max_retries, heartbeat_timeout_seconds=definition.heartbeat_timeout_s,
        enqueue=[to_struct(point) for point in definition.enqueue],
    )


def definition_from_request(request: hpo_pb2.CreateStudyRequest) -> dict[str, Any]:
    """The definition's dict form (validate it with studies.parse_definition)."""
    if request.direction not in DIRECTION_FROM_PROTO:
        raise SpecError("direction must be MAXIMIZE or MINIMIZE", path="direction")
    space = from_struct(request.search_space)
    for name, body in space.items():
        if isinstance(body, dict) and "type" not in body and "choices" not in body:
            raise SpecError("give `type` (int or float): protobuf does not keep integers apart from floats",
                            path=f"space.{name}.type")
    data: dict[str, Any] = {
        "name": request.name, "metric": request.metric, "direction": DIRECTION_FROM_PROTO[request.direction],
        "space": space, "sampler": from_struct(request.sampler), "pruner": from_struct(request.pruner),
        "n_trials": request.n_trials, "parallelism": request.parallelism or 1,
        "timeout_s": request.timeout_seconds, "max_retries": request.max_retries,
        "heartbeat_timeout_s": request.heartbeat_timeout_seconds,
        "enqueue": [from_struct(point) for point in request.enqueue],
    }
    if request.HasField("objective"):
        data["objective"] = from_struct(request.objective)
    return data


def trial_to_proto(trial: TrialInfo) -> hpo_pb2.Trial:
    message = hpo_pb2.Trial(
        number=trial.number, state=STATE_TO_PROTO[trial.state], params=to_struct(trial.params),
        intermediate=[hpo_pb2.IntermediateValue(step=step, value=value)
                      for step, value in sorted(trial.intermediate.items())],
        experiment_id=str(trial.user_attrs.get("experiment_id", "")), error=trial.error, attempt=trial.attempt,
        retry_of=int(trial.user_attrs.get("retry_of", 0)), started=to_timestamp(trial.started),
        finished=to_timestamp(trial.finished), attrs=to_struct(trial.user_attrs),
    )
    if trial.value is not None:
        message.value = trial.value
    return message


def trial_from_proto(message: hpo_pb2.Trial) -> TrialInfo:
    return TrialInfo(
        number=message.number, state=STATE_FROM_PROTO[message.state], params=from_struct(message.params),
        value=message.value if message.HasField("value") else None,
        intermediate={item.step: item.value for item in message.intermediate},
        user_attrs=from_struct(message.attrs),
        started=from_timestamp(message.started), finished=from_timestamp(message.finished),
    )


def study_to_proto(summary: StudySummary, *, finished: bool = False, error: str = "") -> hpo_pb2.Study:
    definition = summary.definition
    counts = summary.counts
    message = hpo_pb2.Study(
        name=definition.name, metric=definition.metric, direction=DIRECTION_TO_PROTO[definition.direction],
        n_trials=definition.n_trials,
        counts=hpo_pb2.TrialCounts(running=counts["running"], complete=counts["complete"], pruned=counts["pruned"],
                                   failed=counts["fail"], waiting=counts["waiting"], budgeted=counts["budgeted"]),
        search_space=to_struct(definition.space), definition=to_struct(definition.model_dump(exclude_none=True)),
        finished=finished, error=error, trials=[trial_to_proto(t) for t in summary.trials],
    )
    if summary.best is not None:
        message.best.CopyFrom(trial_to_proto(summary.best))
    return message
