"""The JSON Schemas of toolrt's file formats, built from the domain classes they describe.

``tool.schema.json`` (a ``tool.yaml`` or ``tool.json`` file) is :func:`tool_file_schema` written
out, kept in the package for editors and readers; the tool-file reader validates against it, and a
test checks that it is what the function builds from ``ToolDefinition``. After a definition field
changes, write it again with ``python -m toolrt.contracts.schemas``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from toolrt.domain import VISIBILITY_SCHEMA, definition_schema

__all__ = ["TOOL_FILE_SCHEMA_NAME", "render", "tool_file_schema", "write_schemas"]

TOOL_FILE_SCHEMA_NAME = "tool.schema.json"

_CODE_FILE = {
    "description": "Path of the source file, relative to this tool file's directory (it may not leave it).",
    "type": "string",
    "minLength": 1,
    "pattern": "^(?!/)",
}


def tool_file_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a tool file: a definition, its code inline or in a file, and a visibility."""
    definition = definition_schema()
    properties: dict[str, Any] = {}
    for key, fragment in definition["properties"].items():
        properties[key] = fragment
        if key == "code":
            properties["code_file"] = dict(_CODE_FILE)
    properties["visibility"] = dict(VISIBILITY_SCHEMA)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://toolrt.dev/schemas/{TOOL_FILE_SCHEMA_NAME}",
        "title": "toolrt tool file",
        "description": "A tool.yaml / tool.json file: one tool definition. "
        "Give the code inline (code) or in a file next to this one (code_file).",
        "type": "object",
        "required": [key for key in definition["required"] if key != "code"],
        "oneOf": [
            {"required": ["code"], "not": {"required": ["code_file"]}},
            {"required": ["code_file"], "not": {"required": ["code"]}},
        ],
        "properties": properties,
        "additionalProperties": False,
    }


def render(schema: dict[str, Any]) -> str:
    """A schema as its file holds it: indented JSON, non-ASCII kept, a final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path | None = None) -> list[Path]:
    """Write every file-format schema into ``directory`` (this package's folder by default); return the paths."""
    target = directory or Path(__file__).resolve().parent
    path = target / TOOL_FILE_SCHEMA_NAME
    path.write_text(render(tool_file_schema()), encoding="utf-8")
    return [path]
