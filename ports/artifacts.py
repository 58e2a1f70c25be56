"""The artifact store port: validated code under its content address."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from toolrt.domain import Artifact, CodeHash, ValidationReport


@runtime_checkable
class ArtifactStore(Protocol):
    """Content-addressed, create-only storage of artifacts.

    Rules (``toolrt.contracts.artifact_store``): ``put`` of an existing hash keeps the stored artifact
    and returns ``False``; ``get`` verifies the content against its hash and raises ``StorageError``
    on a mismatch; ``delete`` of a missing hash is a no-op.
    """

    def get(self, code_hash: CodeHash) -> Artifact | None:
        """The artifact, or ``None`` when no artifact has this hash."""

    def put(self, artifact: Artifact) -> bool:
        """Store ``artifact`` unless its hash is present; ``True`` when this call created it."""

    def replace_report(self, code_hash: CodeHash, report: ValidationReport) -> Artifact:
        """Store a newer validation report for existing code (``NotFoundError`` if absent)."""

    def delete(self, code_hash: CodeHash) -> None:
        """Remove the artifact, if present."""

    def hashes(self) -> Iterable[CodeHash]:
        """Every stored hash (for repair and garbage collection)."""


@runtime_checkable
class TempFileKeeper(Protocol):
    """An artifact store that writes through temp files (files on disk), and can list and remove the
    ones a killed writer left behind: what the store check reports and repairs."""

    def stale_temp_files(self, older_than_s: float = 300.0) -> Sequence[Path]:
        """Temp files untouched for ``older_than_s`` seconds (a live writer's are younger)."""

    def remove_stale_temp_files(self, older_than_s: float = 300.0) -> Sequence[Path]:
        """Remove the files :meth:`stale_temp_files` lists; the paths removed."""
