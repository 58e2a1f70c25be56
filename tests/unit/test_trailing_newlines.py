"""A trailing newline never passes a name check: Python's ``$`` matches before one, ``\\Z`` does not."""

from __future__ import annotations

import attrs
import pytest

from toolrt.adapters.aws.gateway import tool_code
from toolrt.contracts import builders as b
from toolrt.domain import ValidationError
from toolrt.domain.hashing import CodeHash
from toolrt.domain.network import parse_host_port
from toolrt.domain.requirements import requirement_findings


@pytest.mark.parametrize("field", ["name", "entrypoint"])
def test_a_name_or_entrypoint_ending_in_a_newline_is_refused(field: str) -> None:
    definition = b.definition()
    with pytest.raises(ValidationError):
        attrs.evolve(definition, **{field: getattr(definition, field) + "\n"})


def test_other_checked_names_refuse_a_trailing_newline() -> None:
    assert tool_code("r\n") != "r\n" and "\n" not in tool_code("r\n")
    with pytest.raises(ValueError):
        CodeHash("a" * 64 + "\n")
    with pytest.raises((ValueError, ValidationError)):
        parse_host_port("api.example\n.com:443")
    assert any(f.severity.value == "error" for f in requirement_findings("javascript", ("lodash\n@^4",)))
