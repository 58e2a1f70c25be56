"""The contract every CodeReferences adapter must pass (with the tool records it derives from)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from toolrt.contracts import builders as b
from toolrt.domain import CodeHash, NotFoundError, StorageError, TransientError
from toolrt.ports import CodeReferences, ToolRecords


class CodeReferencesContract:
    """Subclass and implement :meth:`make_code_references`: a fresh, empty store's tool records and
    the code references derived from them (often one object, returned twice)."""

    def make_code_references(self) -> tuple[ToolRecords, CodeReferences]:
        raise NotImplementedError

    @pytest.fixture
    def code_store(self) -> tuple[ToolRecords, CodeReferences]:
        return self.make_code_references()

    @pytest.fixture
    def records(self, code_store: tuple[ToolRecords, CodeReferences]) -> ToolRecords:
        return code_store[0]

    @pytest.fixture
    def references(self, code_store: tuple[ToolRecords, CodeReferences]) -> CodeReferences:
        return code_store[1]

    def test_is_code_references(self, references: CodeReferences) -> None:
        """The adapter satisfies the port's Protocol."""
        assert isinstance(references, CodeReferences)

    def test_delete_releases_the_references(self, records: ToolRecords, references: CodeReferences) -> None:
        """A deleted tool references nothing, and is found by no code hash."""
        t = b.tool()
        records.add(t)
        records.delete(t.tool_id)
        assert references.references(t.code_hash) == frozenset()
        assert list(references.find_by_code_hash(t.code_hash)) == []

    def test_references_follow_history_while_active(self, records: ToolRecords, references: CodeReferences) -> None:
        """An active tool references every hash in its history; deactivation releases them all."""
        t = b.tool("t1")
        records.add(t)
        h1 = t.code_hash
        t2 = t.with_version(b.definition(code="def handler(a, b):\n    return a * b"), b.T0)
        records.save(t2)
        h2 = t2.code_hash
        assert references.references(h1) == {"t1"}
        assert references.references(h2) == {"t1"}
        records.save(t2.deactivated(b.T0))
        assert references.references(h1) == frozenset()
        assert references.references(h2) == frozenset()

    def test_shared_code_is_referenced_by_each_tool(self, records: ToolRecords, references: CodeReferences) -> None:
        """Two tools with identical code both reference it; find_by_code_hash returns both."""
        code = "def handler(a, b):\n    return a + b"
        records.add(b.tool("t1", owner="a", name="x", code=code))
        records.add(b.tool("t2", owner="b", name="y", code=code))
        h = CodeHash.of("python", code)
        assert references.references(h) == {"t1", "t2"}
        assert {t.tool_id for t in references.find_by_code_hash(h)} == {"t1", "t2"}
        records.delete("t1")
        assert references.references(h) == {"t2"}

    def test_delete_unreferenced_calls_delete_only_for_unreferenced_hashes(
        self, records: ToolRecords, references: CodeReferences
    ) -> None:
        """delete_unreferenced deletes a hash no tool references, or only an inactive one; never a referenced one."""
        active = b.tool("t1", owner="a", name="one")
        inactive = b.tool("t2", owner="b", name="two")
        records.add(active)
        records.add(inactive)
        records.save(inactive.deactivated(b.T0))
        orphan = b.artifact("def handler():\n    return 'orphan'").code_hash
        calls: list[CodeHash] = []
        deleted = references.delete_unreferenced([active.code_hash, inactive.code_hash, orphan], calls.append)
        assert list(deleted) == calls == [inactive.code_hash, orphan]
        assert references.references(active.code_hash) == {"t1"}

    def test_delete_unreferenced_stops_at_a_failing_delete_and_can_run_again(self, references: CodeReferences) -> None:
        """A delete that raises stops the call with its error; a later call deletes the hash."""
        h = b.artifact("def handler():\n    return 2").code_hash

        def failing(code_hash: CodeHash) -> None:
            raise StorageError("disk gone", backend="test")

        with pytest.raises(StorageError):
            references.delete_unreferenced([h], failing)
        assert list(references.delete_unreferenced([h], lambda code_hash: None)) == [h]

    def test_a_tool_referencing_the_hash_is_never_stored_between_check_and_delete(
        self, records: ToolRecords, references: CodeReferences
    ) -> None:
        """A concurrent add of a tool using the hash waits until delete returned, or is refused (TransientError)."""
        t = b.tool("t1", owner="a", name="racer")
        outcome: dict[str, Any] = {}
        in_delete = threading.Event()
        delete_done = threading.Event()

        def add() -> None:
            in_delete.wait(5)
            try:
                records.add(t)
                outcome["stored_after_delete"] = delete_done.is_set()
            except TransientError:
                outcome["refused"] = True

        def delete(code_hash: CodeHash) -> None:
            in_delete.set()
            worker.join(0.3)  # time for the concurrent add to land, if the repository let it
            delete_done.set()

        worker = threading.Thread(target=add)
        worker.start()
        assert list(references.delete_unreferenced([t.code_hash], delete)) == [t.code_hash]
        worker.join(10)
        assert outcome in ({"stored_after_delete": True}, {"refused": True})
        if "refused" in outcome:
            with pytest.raises(NotFoundError):
                records.get("t1")
            records.add(t)  # once collection is over, the tool can be stored
        assert references.references(t.code_hash) == {"t1"}
