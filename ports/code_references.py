"""The code references port: which tools use which code, for sharing artifacts and collecting them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from toolrt.domain import CodeHash, Tool


@runtime_checkable
class CodeReferences(Protocol):
    """Which tools reference which code hash, derived from the tool records of the same store.

    Rules (``toolrt.contracts.CodeReferencesContract`` checks them): an *active* tool references
    every code hash of its version history; an inactive or deleted tool references none.
    ``references(h)`` is always exactly the set of tools referencing ``h``, and changes atomically
    with the record (:class:`~toolrt.ports.ToolRecords`).
    """

    def references(self, code_hash: CodeHash) -> frozenset[str]:
        """Ids of the tools that currently reference ``code_hash``."""

    def find_by_code_hash(self, code_hash: CodeHash) -> Sequence[Tool]:
        """Every tool (any status) with ``code_hash`` anywhere in its history."""

    def delete_unreferenced(
        self, code_hashes: Sequence[CodeHash], delete: Callable[[CodeHash], None]
    ) -> Sequence[CodeHash]:
        """Call ``delete(h)`` for each of ``code_hashes`` no tool references; the hashes deleted.

        The reference check and ``delete`` are one step as far as references go: a tool that
        references ``h`` is stored either before the check (then ``delete`` is not called) or after
        ``delete(h)`` returned (so that its registration, which makes sure the artifact is present
        once its tool is stored, puts it back). A ``delete`` that raises stops the call.
        """
