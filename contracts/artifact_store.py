"""The contract every ArtifactStore adapter must pass."""

from __future__ import annotations

import pytest

from toolrt.contracts import builders as b
from toolrt.domain import CodeHash, Finding, NotFoundError, Severity, ValidationReport
from toolrt.ports import ArtifactStore


class ArtifactStoreContract:
    """Subclass and implement :meth:`make_store` (a fresh, empty store per call)."""

    def make_store(self) -> ArtifactStore:
        raise NotImplementedError

    @pytest.fixture
    def store(self) -> ArtifactStore:
        return self.make_store()

    def test_is_an_artifact_store(self, store: ArtifactStore) -> None:
        """The adapter satisfies the port's Protocol."""
        assert isinstance(store, ArtifactStore)

    def test_put_then_get_round_trips(self, store: ArtifactStore) -> None:
        """A stored artifact comes back equal."""
        a = b.artifact()
        assert store.put(a) is True
        assert store.get(a.code_hash) == a

    def test_lock_round_trips_and_is_part_of_the_address(self, store: ArtifactStore) -> None:
        """The same code with a lock is another artifact, and its lock (packages, hashes, modules) comes back."""
        plain = b.artifact()
        locked = b.artifact(lock=b.lock())
        assert plain.code_hash != locked.code_hash
        assert store.put(plain) is True
        assert store.put(locked) is True
        assert store.get(locked.code_hash) == locked
        got = store.get(locked.code_hash)
        assert got is not None and got.lock is not None
        assert got.lock.digest == locked.lock.digest  # type: ignore[union-attr]
        assert [p.requested for p in got.lock.packages] == [True, False]
        assert store.get(plain.code_hash) == plain

    def test_get_missing_is_none(self, store: ArtifactStore) -> None:
        """An unknown hash gives None, not an error."""
        assert store.get(CodeHash("0" * 64)) is None

    def test_put_is_create_only(self, store: ArtifactStore) -> None:
        """A second put of the same hash keeps the first artifact and returns False."""
        a = b.artifact()
        store.put(a)
        other = a.with_report(ValidationReport(policy_version="other"))
        assert store.put(other) is False
        assert store.get(a.code_hash) == a

    def test_replace_report(self, store: ArtifactStore) -> None:
        """A newer report replaces the old one; code stays."""
        a = b.artifact()
        store.put(a)
        report = ValidationReport(
            (Finding("security.test", Severity.WARNING, "careful", 1, 1, "be careful"),), "test-2"
        )
        updated = store.replace_report(a.code_hash, report)
        assert updated.report == report
        assert store.get(a.code_hash) == a.with_report(report)
        with pytest.raises(NotFoundError):
            store.replace_report(CodeHash("1" * 64), report)

    def test_delete_is_idempotent(self, store: ArtifactStore) -> None:
        """Delete removes; deleting again is a no-op."""
        a = b.artifact()
        store.put(a)
        store.delete(a.code_hash)
        assert store.get(a.code_hash) is None
        store.delete(a.code_hash)

    def test_hashes_lists_every_artifact(self, store: ArtifactStore) -> None:
        """Every stored hash is listed once."""
        a1 = b.artifact("def handler():\n    return 1")
        a2 = b.artifact("def handler():\n    return 2")
        store.put(a1)
        store.put(a2)
        assert set(store.hashes()) == {a1.code_hash, a2.code_hash}

    def test_unicode_code_round_trips(self, store: ArtifactStore) -> None:
        """Non-ASCII code is stored byte-exact."""
        a = b.artifact('def handler():\n    return "héllo — 世界 🙂"')
        store.put(a)
        assert store.get(a.code_hash) == a
