"""Content addressing of tool code: ``sha256(language + ":" + normalize(code))``, plus the lock's digest when it has requirements."""

from __future__ import annotations

import hashlib
import re

import attrs

_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")


def normalize_code(code: str) -> str:
    """The form of ``code`` that is hashed and stored.

    Line endings become ``\\n`` (CRLF and lone CR alike), trailing whitespace is stripped from every
    line, and leading and trailing blank lines are dropped. Nothing else changes: indentation and
    blank lines inside the code are meaningful in Python.
    """
    lines = code.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    stripped = [line.rstrip() for line in lines]
    start = 0
    while start < len(stripped) and not stripped[start]:
        start += 1
    end = len(stripped)
    while end > start and not stripped[end - 1]:
        end -= 1
    return "\n".join(stripped[start:end])


def _check_hex(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not _HEX64.match(value):
        raise ValueError(f"code hash must be 64 lowercase hex digits, got {value!r}")


@attrs.frozen(order=True)
class CodeHash:
    """The content address of a tool's code; ``str()`` gives the hex digest."""

    value: str = attrs.field(validator=_check_hex)

    @classmethod
    def of(cls, language: str, code: str, lock_digest: str | None = None) -> CodeHash:
        """Hash ``code`` written in ``language`` (normalized first, see :func:`normalize_code`).

        ``lock_digest``: the digest of the resolved requirements the code runs with; code without
        requirements hashes exactly as it always did, so existing artifacts keep their addresses.
        """
        text = f"{language}:{normalize_code(code)}"
        if lock_digest:
            text += f"\x00lock:{lock_digest}"
        return cls(hashlib.sha256(text.encode()).hexdigest())

    def __str__(self) -> str:
        return self.value

    @property
    def short(self) -> str:
        """The first 12 hex digits, for humans."""
        return self.value[:12]
