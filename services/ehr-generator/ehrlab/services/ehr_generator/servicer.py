"""gRPC servicer of the ehr-generator service: Generate (a stream), Evaluate, DescribeModel.

The servicer adapts ehrlab.ehrgen to gRPC: it resolves model references (paths, published names,
artifacts) through ehrlab.ehrgen.registry, keeps the few most recently used models loaded, and turns
requests into the library's checked inputs. Bad input raises SpecError before any patient is sent,
which the server maps to INVALID_ARGUMENT with the field path.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2
from prometheus_client import Counter

from ehrlab.core.artifacts import ArtifactStore, open_store
from ehrlab.core.artifacts.manifest import artifact_prefix, load_complete, materialize
from ehrlab.core.config import validate
from ehrlab.core.errors import NotFoundError, SpecError
from ehrlab.core.settings import Settings
from ehrlab.core.wire import from_struct, to_struct
from ehrlab.ehrgen import registry
from ehrlab.ehrgen.artifact import GeneratorBundle, load_bundle
from ehrlab.ehrgen.data import load_patients
from ehrlab.ehrgen.generate import Generator, requests_for
from ehrlab.ehrgen.kinds import EvaluateGeneratorParams, SamplingParams
from ehrlab.v1 import common_pb2, ehr_generator_pb2, ehr_generator_pb2_grpc

GENERATED = Counter("ehrlab_ehrgen_generated_records_total", "Synthetic records streamed by Generate", ["model"])
SEX_OF = {ehr_generator_pb2.SEX_FEMALE: "F", ehr_generator_pb2.SEX_MALE: "M"}
ENUM_OF = {"F": ehr_generator_pb2.SEX_FEMALE, "M": ehr_generator_pb2.SEX_MALE}


def _params(model: type, message: struct_pb2.Struct, path: str) -> Any:
    try:
        return validate(model, from_struct(message))
    except SpecError as exc:
        raise SpecError(exc.message, path=f"{path}.{exc.path}" if exc.path else path) from None


class _Loaded:
    def __init__(self, bundle: GeneratorBundle, pointer: dict[str, Any]) -> None:
        self.bundle = bundle
        self.pointer = pointer
        self.generator = Generator(bundle)
        self.lock = threading.Lock()


class EhrGeneratorServicer(ehr_generator_pb2_grpc.EhrGeneratorServicer):
    """Synthetic EHR generation, evaluation and model description."""

    def __init__(self, settings: Settings, *, max_models: int = 4) -> None:
        self.settings = settings
        self.cache_dir = Path(settings.home, "cache", "ehrgen").absolute()
        self.max_models = max_models
        self._models: OrderedDict[str, _Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._store: ArtifactStore | None = None

    @property
    def store(self) -> ArtifactStore:
        if self._store is None:
            self._store = open_store(self.settings.store_uri)
        return self._store

    def _model(self, reference: str) -> _Loaded:
        with self._lock:
            if reference in self._models:
                self._models.move_to_end(reference)
                return self._models[reference]
        local = Path(reference).expanduser()
        directory, pointer = registry.resolve(reference, None if local.is_dir() else self.store, self.cache_dir)
        loaded = _Loaded(load_bundle(directory), pointer)
        with self._lock:
            self._models[reference] = loaded
            while len(self._models) > self.max_models:
                self._models.popitem(last=False)
        return loaded

    def _records(self, ref: common_pb2.ArtifactRef, field: str) -> list:
        if ref.key:
            prefix = artifact_prefix(ref.dataset, ref.kind, ref.key)
            manifest = load_complete(self.store, prefix)
            if manifest is None:
                raise NotFoundError(f"{field}: artifact {prefix} is missing or incomplete")
            return load_patients(materialize(self.store, prefix, manifest, self.cache_dir / manifest.digest))
        if ref.uri:
            return load_patients(Path(ref.uri.removeprefix("file://")))
        raise SpecError("give the records as a local path (uri) or an artifact (dataset, kind, key)", path=field)

    def Generate(self, request: ehr_generator_pb2.GenerateRequest,
                 context: grpc.ServicerContext) -> Iterator[ehr_generator_pb2.SyntheticPatient]:
        sampling = _params(SamplingParams, request.sampling, "sampling")
        demographics = []
        for i, entry in enumerate(request.demographics):
            if entry.sex not in SEX_OF:
                raise SpecError("sex must be SEX_FEMALE or SEX_MALE", path=f"demographics[{i}].sex")
            demographics.append((entry.age, SEX_OF[entry.sex]))
        requests = requests_for(demographics, request.count, [list(v.codes) for v in request.history])
        loaded = self._model(request.model)
        loaded.generator.check(requests, sampling)   # all of it, before the first patient is sent
        counter = GENERATED.labels(request.model)
        for index, patient in enumerate(loaded.generator.generate(requests, seed=request.seed, sampling=sampling,
                                                                  lock=loaded.lock)):
            if not context.is_active():
                return
            counter.inc()
            yield ehr_generator_pb2.SyntheticPatient(
                index=index, demographics=ehr_generator_pb2.Demographics(age=patient.age, sex=ENUM_OF[patient.sex]),
                visits=[ehr_generator_pb2.Visit(codes=list(visit)) for visit in patient.visits])

    def Evaluate(self, request: ehr_generator_pb2.EvaluateRequest,
                 context: grpc.ServicerContext) -> ehr_generator_pb2.EvaluateResponse:
        from ehrlab.ehrgen.evaluate import cohort_splits, evaluate_generator

        params = EvaluateGeneratorParams(
            seed=request.seed, n_synthetic=max(request.n_synthetic, 0),
            sampling=_params(SamplingParams, request.sampling, "sampling"))
        loaded = self._model(request.model)
        heldout = self._records(request.heldout, "heldout")
        train = []
        if request.cohort.uri or request.cohort.key:
            train, _ = cohort_splits(loaded.bundle, self._records(request.cohort, "cohort"))
        with loaded.lock:
            report, _ = evaluate_generator(loaded.bundle, heldout, train, params)
        return ehr_generator_pb2.EvaluateResponse(report=to_struct(report))

    def DescribeModel(self, request: ehr_generator_pb2.DescribeModelRequest,
                      context: grpc.ServicerContext) -> ehr_generator_pb2.ModelDescription:
        loaded = self._model(request.model)
        bundle = loaded.bundle
        training = bundle.training
        config = {**bundle.model.config.to_dict(), "tokenizer": bundle.tokenizer.kind,
                  "codes": len(bundle.tokenizer.codes)}
        data = {"records": training.get("records", {}), "steps": training.get("steps"),
                "epochs": training.get("epochs"), "tokens_per_record": training.get("tokens_per_record"),
                "device": training.get("device"), "artifact": training.get("artifact", ""),
                "distinct_codes": len(bundle.code_counts)}
        metrics = {**training.get("metrics", {}), **({"targets": loaded.pointer["targets"]}
                                                     if loaded.pointer.get("targets") else {})}
        return ehr_generator_pb2.ModelDescription(
            model=request.model, config=to_struct(config), training_data=to_struct(data),
            parameters=bundle.model.num_parameters(), metrics=to_struct(metrics))
