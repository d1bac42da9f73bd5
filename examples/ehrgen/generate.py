"""Ask the ehr-generator service for synthetic patients and write them as JSON lines.

    .venv/bin/python examples/ehrgen/generate.py sim-small out.jsonl

The model is a published name (spec.yaml publishes "sim-small"), an artifact key or a directory the
service can read. Bad input (a negative age, an unknown code in the history) comes back as SpecError
naming the field, before any patient is sent.
"""

from __future__ import annotations

import json
import sys

from ehrlab.client import Client, rpc_errors
from ehrlab.v1 import ehr_generator_pb2


def main(model: str, out: str) -> None:
    request = ehr_generator_pb2.GenerateRequest(
        model=model, count=50, seed=7,
        demographics=[ehr_generator_pb2.Demographics(age=72, sex=ehr_generator_pb2.SEX_FEMALE),
                      ehr_generator_pb2.Demographics(age=8, sex=ehr_generator_pb2.SEX_MALE)],
        history=[])
    request.sampling.update({"temperature": 1.0, "top_p": 0.98, "max_visits": 40})
    stub = Client.connect().stub("ehr-generator")
    with rpc_errors("generate"):
        patients = list(stub.Generate(request, timeout=600))
    with open(out, "w") as handle:
        for patient in patients:
            handle.write(json.dumps({"age": patient.demographics.age,
                                     "sex": "F" if patient.demographics.sex == ehr_generator_pb2.SEX_FEMALE else "M",
                                     "visits": [list(v.codes) for v in patient.visits]}) + "\n")
    print(f"{len(patients)} patients -> {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
