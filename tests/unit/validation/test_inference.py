"""Schema inference: a typed, documented Python entrypoint yields its input_schema."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from toolrt.adapters.validation import build_validator
from toolrt.domain import Language, ToolDefinition

VALIDATOR = build_validator()

TYPED = '''
from typing import Literal, Optional


def handler(count: int, ratio: float, name: str, flag: bool, tags: list[str],
            extra: dict, maybe: Optional[int] = None, union: str | None = None,
            mode: Literal["fast", "slow"] = "fast", *, limit: int = 10):
    """Do a thing.

    Args:
        count: how many
            items to make.
        ratio (float): the ratio.
        mode: fast or slow.
    """
    return count
'''


def infer(code: str, entrypoint: str = "handler", language: Language = Language.PYTHON) -> dict[str, Any] | None:
    return VALIDATOR.infer_input_schema(language, code, entrypoint)


def test_types_defaults_and_required() -> None:
    """Type hints map to JSON types, defaults become optional with their value, the rest is required."""
    schema = infer(TYPED)
    assert schema is not None
    props = schema["properties"]
    assert props["count"] == {"type": "integer", "description": "how many items to make."}
    assert props["ratio"] == {"type": "number", "description": "the ratio."}
    assert props["name"] == {"type": "string"} and props["flag"] == {"type": "boolean"}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["extra"] == {"type": "object"}
    assert props["maybe"] == {"type": ["integer", "null"], "default": None}
    assert props["union"] == {"type": ["string", "null"], "default": None}
    assert props["mode"] == {"enum": ["fast", "slow"], "default": "fast", "description": "fast or slow."}
    assert props["limit"] == {"type": "integer", "default": 10}
    assert schema["required"] == ["count", "ratio", "name", "flag", "tags", "extra"]
    assert schema["additionalProperties"] is False
    assert schema["description"] == "Do a thing."
    Draft202012Validator.check_schema(schema)


def test_inferred_schema_passes_validation() -> None:
    """Code registered with its inferred schema has no compliance findings."""
    schema = infer(TYPED)
    assert schema is not None
    tool = ToolDefinition(name="t", description="d", language="python", code=TYPED, input_schema=schema)
    assert VALIDATOR.validate(tool).findings == ()


def test_numpy_docstring() -> None:
    """NumPy-style parameter sections fill the descriptions."""
    code = '''
def handler(a: int, b: float = 1.5):
    """Sum.

    Parameters
    ----------
    a : int
        The first value.
    b : float
        The second
        value.

    Returns
    -------
    float
    """
'''
    schema = infer(code)
    assert schema is not None
    assert schema["properties"]["a"]["description"] == "The first value."
    assert schema["properties"]["b"]["description"] == "The second value."
    assert set(schema["properties"]) == {"a", "b"}


def test_rest_docstring_and_kwargs() -> None:
    """reST :param: lines fill descriptions; **kwargs allows additional properties."""
    code = '''
def handler(a, **rest):
    """Echo.

    :param a: the value
    :returns: it
    """
'''
    schema = infer(code)
    assert schema is not None
    assert schema["properties"] == {"a": {"description": "the value"}}
    assert "additionalProperties" not in schema


def test_none_when_not_inferable() -> None:
    """No schema for JS/TS, a missing entrypoint, a non-function or broken code."""
    assert infer("function handler(p) {}", language=Language.JAVASCRIPT) is None
    assert infer("function handler(p: number) {}", language=Language.TYPESCRIPT) is None
    assert infer("def other():\n    pass\n") is None
    assert infer("handler = 3\n") is None
    assert infer("def handler(:\n") is None
