"""JSON Schemas derived from the domain's attrs classes: each field carries the fragment that describes it.

A class users hand over as JSON (a tool definition, its limits, its examples, its network
declaration) is the one source of its shape, read and written. Every field says, in its attrs metadata, what it looks
like as JSON (``metadata=json_schema(type="string", ...)``) or that the runtime sets it
(``metadata=RUNTIME_SET``); :func:`object_schema` builds the object's schema from those fragments,
the fields without a default being the required ones. The tool-file schema in
``toolrt.contracts.schemas`` and the MCP server's input schemas are built from it, so a field added
to the class is a field of every schema, and a field without a fragment is an error the moment a
schema is built. :func:`written` gives an instance back in that shape, so what toolrt shows of a
definition can be handed to it again.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["RUNTIME_SET", "json_schema", "object_schema", "written", "written_fields", "written_object"]

_KEY = "json_schema"

#: Metadata of a field the runtime sets and users never write (a definition's ``lock``).
RUNTIME_SET: Mapping[str, Any] = {_KEY: None}


def json_schema(**fragment: Any) -> dict[str, Any]:
    """attrs field metadata holding the field's JSON Schema, its keywords given as arguments."""
    return {_KEY: fragment}


def _fragment(cls: type, field: attrs.Attribute[Any]) -> dict[str, Any] | None:
    if _KEY not in field.metadata:
        raise TypeError(
            f"{cls.__name__}.{field.name} says nothing of its JSON shape: "
            "give it metadata=json_schema(...) (or RUNTIME_SET when only the runtime sets it)"
        )
    fragment: dict[str, Any] | None = field.metadata[_KEY]
    return fragment


def written_fields(cls: type) -> tuple[str, ...]:
    """The names of the fields of ``cls`` users write, in the class's order (runtime-set ones left out)."""
    return tuple(field.name for field in attrs.fields(cls) if _fragment(cls, field) is not None)


def object_schema(
    cls: type,
    *,
    extra_properties: Mapping[str, Any] | None = None,
    **keywords: Any,
) -> dict[str, Any]:
    """The JSON Schema of ``cls`` as users write it: an object of its fields and nothing else.

    Each property is the field's own fragment; the fields without a default are required.
    ``extra_properties`` are keys the class reads but does not keep (an example's ``description``);
    ``keywords`` are added to the object's schema (``description``, ``oneOf``, ...).
    """
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        fragment = _fragment(cls, field)
        if fragment is None:
            continue
        properties[field.name] = copy.deepcopy(fragment)
        if field.default is attrs.NOTHING:
            required.append(field.name)
    properties.update(copy.deepcopy(dict(extra_properties or {})))
    keywords = copy.deepcopy(keywords)
    # Title and description first, as a reader of the schema looks for them.
    schema: dict[str, Any] = {key: keywords.pop(key) for key in ("title", "description") if key in keywords}
    schema["type"] = "object"
    if required:
        schema["required"] = required
    schema["properties"] = properties
    schema["additionalProperties"] = False
    schema.update(keywords)
    return schema


def written(value: Any) -> Any:
    """``value`` as users write it: enums by value, sequences as lists, an attrs instance by its own
    ``to_json()`` or else as :func:`written_object` gives it."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [written(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): written(item) for key, item in value.items()}
    if attrs.has(type(value)):
        own = getattr(value, "to_json", None)
        return own() if own is not None else written_object(value)
    return value


def written_object(value: Any) -> dict[str, Any]:
    """An attrs instance as the object its schema describes: the fields users write, those at ``None`` left out."""
    fields = ((name, getattr(value, name)) for name in written_fields(type(value)))
    return {name: written(item) for name, item in fields if item is not None}
