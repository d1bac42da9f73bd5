"""gRPC servicer of the data-prep service: the dataset catalog (ehrlab.cohort.catalog) over gRPC.

Bad requests raise SpecError / NotFoundError; the server maps them to INVALID_ARGUMENT / NOT_FOUND.
"""

from __future__ import annotations

import grpc
import pyarrow as pa

from ehrlab.cohort.catalog import Catalog, Dataset, Description
from ehrlab.core.wire import to_struct, to_timestamp
from ehrlab.v1 import data_prep_pb2, data_prep_pb2_grpc


def dataset_info(dataset: Dataset, name: str = "") -> data_prep_pb2.DatasetInfo:
    return data_prep_pb2.DatasetInfo(id=dataset.id, uri=dataset.uri, format=dataset.format, name=name or dataset.id,
                                     kind=dataset.kind)


def description(found: Description) -> data_prep_pb2.DatasetDescription:
    summary = found.summary
    return data_prep_pb2.DatasetDescription(
        dataset=dataset_info(found.dataset, found.name), patients=summary["subjects"], codes=summary["codes"],
        events=summary["events"], time_start=to_timestamp(summary.get("time_start")),
        time_end=to_timestamp(summary.get("time_end")), shards=summary.get("shards", 0),
        metadata=to_struct(found.metadata))


def _events(rows: pa.Table) -> list[data_prep_pb2.PatientEvent]:
    events = []
    for time, code, value in zip(rows.column("time").to_pylist(), rows.column("code").to_pylist(),
                                 rows.column("numeric_value").to_pylist(), strict=True):
        event = data_prep_pb2.PatientEvent(time=to_timestamp(time), code=code)
        if value is not None:
            event.numeric_value = value
        events.append(event)
    return events


class DataPrepServicer(data_prep_pb2_grpc.DataPrepServicer):
    """ListDatasets, DescribeDataset, PreviewCohort over one Catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def ListDatasets(self, request: data_prep_pb2.ListDatasetsRequest,
                     context: grpc.ServicerContext) -> data_prep_pb2.ListDatasetsResponse:
        return data_prep_pb2.ListDatasetsResponse(datasets=[dataset_info(d) for d in self.catalog.datasets()])

    def DescribeDataset(self, request: data_prep_pb2.DescribeDatasetRequest,
                        context: grpc.ServicerContext) -> data_prep_pb2.DatasetDescription:
        return description(self.catalog.describe(request.id))

    def PreviewCohort(self, request: data_prep_pb2.PreviewCohortRequest,
                      context: grpc.ServicerContext) -> data_prep_pb2.PreviewCohortResponse:
        previews = self.catalog.preview(request.dataset_id, limit=request.limit,
                                        subject_ids=list(request.subject_ids))
        return data_prep_pb2.PreviewCohortResponse(patients=[
            data_prep_pb2.PatientPreview(subject_id=p.subject_id, events=_events(p.events),
                                         summary=to_struct(p.summary))
            for p in previews])
