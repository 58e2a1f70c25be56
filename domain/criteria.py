"""Criteria as data: which field of an execution record, compared how.

A query (:class:`toolrt.ports.ExecutionQuery`) states what it asks as conditions over the fields
below. :func:`holds` evaluates them on a record: the reference every store answers as. A store
translates them mechanically, one operator at a time, with one table of its own (field -> column,
field -> attribute); a condition its table cannot express is checked with :func:`holds` on the
records it read. So a new filterable field is a member of :class:`ExecutionField`, a condition in
the query, and a row in each store's table, never hand-written matching in each store.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from operator import attrgetter
from typing import Any

import attrs

from toolrt.domain.execution import Execution


class ExecutionField(enum.Enum):
    """A field of an execution record a query may compare (the value is its attribute path in
    ``Execution``, dotted for a nested one such as ``metrics.isolation``)."""

    EXECUTION_ID = "execution_id"
    TOOL_ID = "tool_id"
    VERSION = "version"
    CALLER = "caller"
    STATUS = "status"
    CREATED_AT = "created_at"

    def of(self, execution: Execution) -> Any:
        """This field's value in ``execution``."""
        return attrgetter(self.value)(execution)


#: The order of execution listings: by these fields, descending (newest first, then by id).
NEWEST_FIRST: tuple[ExecutionField, ...] = (ExecutionField.CREATED_AT, ExecutionField.EXECUTION_ID)


@attrs.frozen
class Equals:
    """The field equals ``value``."""

    field: ExecutionField
    value: Any


def _to_frozenset(values: Iterable[Any]) -> frozenset[Any]:
    return frozenset(values)


@attrs.frozen
class OneOf:
    """The field equals one of ``values`` (none: nothing matches)."""

    field: ExecutionField
    values: frozenset[Any] = attrs.field(converter=_to_frozenset)


@attrs.frozen
class AtLeast:
    """The field is ``value`` or later (greater)."""

    field: ExecutionField
    value: Any


@attrs.frozen
class Below:
    """The fields, compared in order as one tuple, come before ``values`` (a listing's cursor)."""

    fields: tuple[ExecutionField, ...]
    values: tuple[Any, ...]

    def __attrs_post_init__(self) -> None:
        if not self.fields or len(self.fields) != len(self.values):
            raise ValueError(f"Below needs one value per field, got {self.fields!r} and {self.values!r}")


@attrs.frozen
class AnyOf:
    """At least one of ``conditions`` holds."""

    conditions: tuple[Condition, ...]


#: One condition of a query; a query's conditions must all hold.
Condition = Equals | OneOf | AtLeast | Below | AnyOf


def holds(condition: Condition, execution: Execution) -> bool:
    """True when ``condition`` holds for ``execution``."""
    match condition:
        case Equals(field, value):
            return bool(field.of(execution) == value)
        case OneOf(field, values):
            return field.of(execution) in values
        case AtLeast(field, value):
            return bool(field.of(execution) >= value)
        case Below(fields, values):
            return tuple(f.of(execution) for f in fields) < values
        case AnyOf(conditions):
            return any(holds(c, execution) for c in conditions)
    raise TypeError(f"not a condition: {condition!r}")


def holds_all(criteria: Iterable[Condition], execution: Execution) -> bool:
    """True when every one of ``criteria`` holds for ``execution``."""
    return all(holds(c, execution) for c in criteria)


def fields_of(condition: Condition) -> Iterator[ExecutionField]:
    """Every field ``condition`` compares (a store translates it only when it has them all)."""
    match condition:
        case Equals(field, _) | OneOf(field, _) | AtLeast(field, _):
            yield field
        case Below(fields, _):
            yield from fields
        case AnyOf(conditions):
            for c in conditions:
                yield from fields_of(c)
