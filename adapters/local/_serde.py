"""The local family's private cattrs converter: domain objects to and from JSON documents."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

import cattrs

from toolrt.domain import Artifact, CodeHash, Execution, Tool

T = TypeVar("T")

# Bumped when the JSON layout changes incompatibly; readers refuse documents from the future.
FORMAT_VERSION = 1


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(CodeHash, str)
    converter.register_structure_hook(CodeHash, lambda value, _: CodeHash(value))
    converter.register_unstructure_hook(datetime, datetime.isoformat)
    converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
    return converter


converter = _make_converter()


def dumps(obj: Tool | Artifact | Execution) -> str:
    """``obj`` as compact JSON text (keys sorted so equal objects give equal text)."""
    return json.dumps(converter.unstructure(obj), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def loads(text: str | bytes, cls: type[T]) -> T:
    """The ``cls`` stored as ``text``; any decoding or validation problem raises ``ValueError``."""
    try:
        data: Any = json.loads(text)
        return converter.structure(data, cls)
    except ValueError:
        raise
    except (cattrs.BaseValidationError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(_describe(exc)) from exc
    except Exception as exc:  # a domain validator may raise anything from ToolRuntimeError down
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc)) or str(exc)
    return f"{type(exc).__name__}: {exc}"
