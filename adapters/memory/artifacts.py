"""A dict-backed ArtifactStore."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from toolrt.domain import Artifact, CodeHash, NotFoundError, StorageError, ValidationReport


class InMemoryArtifactStore:
    """Keeps artifacts in a dict under a lock; verifies hashes on read like the durable stores."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._artifacts: dict[CodeHash, Artifact] = {}

    def get(self, code_hash: CodeHash) -> Artifact | None:
        with self._lock:
            artifact = self._artifacts.get(code_hash)
        if artifact is not None and artifact.content_hash != code_hash:
            raise StorageError(f"artifact {code_hash} does not match its hash", backend="memory")
        return artifact

    def put(self, artifact: Artifact) -> bool:
        with self._lock:
            if artifact.code_hash in self._artifacts:
                return False
            self._artifacts[artifact.code_hash] = artifact
            return True

    def replace_report(self, code_hash: CodeHash, report: ValidationReport) -> Artifact:
        with self._lock:
            if code_hash not in self._artifacts:
                raise NotFoundError("artifact", str(code_hash))
            updated = self._artifacts[code_hash].with_report(report)
            self._artifacts[code_hash] = updated
            return updated

    def delete(self, code_hash: CodeHash) -> None:
        with self._lock:
            self._artifacts.pop(code_hash, None)

    def hashes(self) -> Iterable[CodeHash]:
        with self._lock:
            return list(self._artifacts)
