"""Execution criteria (``toolrt.domain.criteria``) as DynamoDB filter expressions."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from toolrt.adapters.shared.executions import translate_criteria
from toolrt.domain import ExecutionStatus
from toolrt.domain.criteria import AnyOf, AtLeast, Below, Condition, Equals, ExecutionField, OneOf

Attributes = Mapping[ExecutionField, tuple[str, Callable[[Any], dict[str, Any]]]]

#: The attributes an execution item carries beside its body for DynamoDB to filter on, and how a
#: value compared with one is written (see ``DynamoDbToolRepository.record_execution``). Items
#: written by every release hold these two; a condition on any other field is checked on the
#: decoded records.
ATTRIBUTES: Attributes = {
    ExecutionField.TOOL_ID: ("tool_id", lambda value: {"S": str(value)}),
    ExecutionField.STATUS: ("status", lambda value: {"S": ExecutionStatus(value).value}),
}

# A comparison's IN list holds at most this many operands.
_MAX_OPERANDS = 100


@attrs.frozen
class FilterExpression:
    """A ``FilterExpression`` with its ``ExpressionAttributeNames`` and ``ExpressionAttributeValues``."""

    text: str
    names: Mapping[str, str]
    values: Mapping[str, dict[str, Any]]

    @staticmethod
    def all_of(parts: Sequence[FilterExpression], joiner: str = " AND ") -> FilterExpression:
        """Every part holds (``joiner`` `` OR ``: any does), with their names and values merged."""
        names: dict[str, str] = {}
        values: dict[str, dict[str, Any]] = {}
        for part in parts:
            names.update(part.names)
            values.update(part.values)
        text = joiner.join(p.text for p in parts)
        return FilterExpression(f"({text})" if len(parts) > 1 else text, names, values)


def _compare(
    field: ExecutionField, operator: str, value: Any, keys: Iterator[int], attributes: Attributes
) -> FilterExpression:
    name, encode = attributes[field]
    key = f":c{next(keys)}"
    return FilterExpression(f"#{name} {operator} {key}", {f"#{name}": name}, {key: encode(value)})


def _filter(condition: Condition, keys: Iterator[int], attributes: Attributes) -> FilterExpression | None:
    match condition:
        case Equals(field, value) if field in attributes:
            return _compare(field, "=", value, keys, attributes)
        case AtLeast(field, value) if field in attributes:
            return _compare(field, ">=", value, keys, attributes)
        case OneOf(field, values) if field in attributes and 0 < len(values) <= _MAX_OPERANDS:
            name, encode = attributes[field]
            operands = {f":c{next(keys)}": encode(v) for v in values}
            return FilterExpression(f"#{name} IN ({', '.join(operands)})", {f"#{name}": name}, operands)
        case Below(fields, values) if all(f in attributes for f in fields):
            # (a, b) < (x, y): a < x, or a = x and b < y (DynamoDB compares no tuples).
            alternatives = []
            for i, field in enumerate(fields):
                equal = [_compare(f, "=", v, keys, attributes) for f, v in zip(fields[:i], values[:i], strict=True)]
                below = _compare(field, "<", values[i], keys, attributes)
                alternatives.append(FilterExpression.all_of([*equal, below]))
            return FilterExpression.all_of(alternatives, " OR ")
        case AnyOf(conditions):
            parts = [_filter(c, keys, attributes) for c in conditions]
            if not parts or any(p is None for p in parts):
                return None
            return FilterExpression.all_of([p for p in parts if p is not None], " OR ")
    return None


def execution_filter(
    criteria: Iterable[Condition], attributes: Attributes = ATTRIBUTES
) -> tuple[FilterExpression, tuple[Condition, ...]]:
    """The filter of a scan over execution items for ``criteria`` (the items' own ``sk = EXEC``
    first), and the conditions left to check on the decoded records. ``attributes``: the table of
    the attributes items carry (:data:`ATTRIBUTES`)."""
    keys = itertools.count()
    translated, left = translate_criteria(criteria, lambda c: _filter(c, keys, attributes))
    own = FilterExpression("#sk = :exec", {"#sk": "sk"}, {":exec": {"S": "EXEC"}})
    return FilterExpression.all_of([own, *translated]), left
