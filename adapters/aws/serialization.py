"""The AWS family's private cattrs converter, with the Decimal hooks DynamoDB needs."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import cattrs
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from toolrt.domain import CodeHash, LimitExceededError

converter = cattrs.Converter()
converter.register_unstructure_hook(datetime, lambda d: d.isoformat())
converter.register_structure_hook(datetime, lambda v, _: datetime.fromisoformat(v))
converter.register_unstructure_hook(CodeHash, str)
converter.register_structure_hook(CodeHash, lambda v, _: CodeHash(str(v)))
converter.register_structure_hook(Any, lambda v, _: v)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_dynamo_value(value: Any) -> Any:
    """Plain JSON data with every float as a Decimal (DynamoDB numbers reject floats)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        # repr gives the shortest string that round-trips, so 0.1 stays 0.1 and not 0.1000000000000000055.
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: to_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dynamo_value(v) for v in value]
    return value


def from_dynamo_value(value: Any) -> Any:
    """Plain JSON data back from DynamoDB: integral Decimals as int, others as float."""
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        # Integers are written with exponent 0; a float (even 1e+16 or 2.0) never is.
        return int(value) if exponent == 0 else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [from_dynamo_value(v) for v in value]
    return value


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (attribute-value form) from plain data."""
    return {k: _serializer.serialize(to_dynamo_value(v)) for k, v in data.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """Plain data from a DynamoDB item."""
    return {k: from_dynamo_value(_deserializer.deserialize(v)) for k, v in item.items()}


def av(value: Any) -> dict[str, Any]:
    """One attribute value (for expression values and keys)."""
    result: dict[str, Any] = dict(_serializer.serialize(to_dynamo_value(value)))
    return result


# DynamoDB items hold at most 400 KB; the indexed attributes beside the body need a little room.
MAX_BODY_BYTES = 380 * 1024


def encode_body(data: Any, what: str = "record") -> dict[str, Any]:
    """Item attributes holding ``data`` as a JSON string (``body_json``).

    Always JSON, never a native map: DynamoDB normalises numbers (``2.0`` comes back as ``2``,
    ``1E+16`` as ``10000000000000000``) and holds only 38 significant digits, while outputs and
    schemas from agents must round-trip exactly. Nothing queries inside the body; the indexed
    attributes sit beside it. A body larger than an item can hold is LimitExceededError.
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    size = len(text.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise LimitExceededError(
            f"the {what} is {size // 1024} KB; a DynamoDB item holds at most 400 KB "
            "(fewer or smaller code versions, or a smaller output, fit)"
        )
    return {"body_json": {"S": text}}


def decode_body(item: dict[str, Any]) -> Any:
    """The data :func:`encode_body` stored in ``item`` (``body``: a native map, as older items hold)."""
    if "body_json" in item:
        return json.loads(item["body_json"]["S"])
    return from_dynamo_value(_deserializer.deserialize(item["body"]))
