"""Plain Python values <-> the protobuf types the API uses for them (Struct, Timestamp).

Struct stores every number as a double and cannot hold NaN; these helpers make the round trip
faithful: whole numbers come back as ints, NaN and infinities travel as null, and anything that is not
JSON (dates, paths) travels as its string.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from ehrlab.core.hashing import canonical_json


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return str(value)


def to_struct(value: Mapping[str, Any] | None) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    if value:
        message.update(_json_safe(value))
    return message


def from_struct(message: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain Python, with whole numbers as ints again."""
    return json.loads(canonical_json(json_format.MessageToDict(message)))


def to_timestamp(value: datetime | date | str | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp, or None (an unset field) for None. Naive datetimes are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value.astimezone(UTC))
    return message


def from_timestamp(message: timestamp_pb2.Timestamp, default: datetime | None = None) -> datetime | None:
    """The time in `message`, or `default` when it is unset (zero)."""
    if not (message.seconds or message.nanos):
        return default
    return message.ToDatetime(tzinfo=UTC)
