"""The contract every ToolRecords adapter must pass."""

from __future__ import annotations

from datetime import timedelta

import pytest

from toolrt.contracts import builders as b
from toolrt.domain import ConflictError, NotFoundError, ToolStatus, Visibility
from toolrt.ports import ToolCensus, ToolQuery, ToolRecords


class ToolRecordsContract:
    """Subclass and implement :meth:`make_tool_records` (fresh, empty records per call)."""

    def make_tool_records(self) -> ToolRecords:
        raise NotImplementedError

    @pytest.fixture
    def records(self) -> ToolRecords:
        return self.make_tool_records()

    def test_is_tool_records(self, records: ToolRecords) -> None:
        """The adapter satisfies the port's Protocol."""
        assert isinstance(records, ToolRecords)

    def test_add_then_get_round_trips(self, records: ToolRecords) -> None:
        """A stored tool comes back equal, version history and all."""
        t = b.tool()
        records.add(t)
        assert records.get(t.tool_id) == t

    def test_network_declaration_round_trips_with_each_version(self, records: ToolRecords) -> None:
        """A version's network declaration is stored with it: the hosts a tool may reach come back as given."""
        t = b.tool()
        t = t.with_version(b.definition(network={"allow": ["api.example.com:443", "[::1]:8080"]}), b.T0)
        records.add(t)
        got = records.get(t.tool_id)
        assert got == t
        assert [str(e) for e in got.definition.network.allow] == ["[::1]:8080", "api.example.com:443"]
        assert not got.version(1).definition.network

    def test_requirements_and_lock_round_trip_with_each_version(self, records: ToolRecords) -> None:
        """A version's requirements and the lock they resolved to are stored with it, exactly."""
        t = b.tool()
        with_packages = b.definition(requirements=["python-dateutil>=2.8", "six"], lock=b.lock())
        t = t.with_version(with_packages, b.T0)
        records.add(t)
        got = records.get(t.tool_id)
        assert got == t
        assert got.definition.requirements == ("python-dateutil>=2.8", "six")
        assert got.definition.lock == b.lock()
        assert got.code_hash == with_packages.code_hash != b.definition().code_hash
        assert got.version(1).definition.lock is None and not got.version(1).definition.requirements

    def test_get_unknown_raises_not_found(self, records: ToolRecords) -> None:
        """An unknown id is a NotFoundError naming the id."""
        with pytest.raises(NotFoundError, match="nope"):
            records.get("nope")

    def test_add_duplicate_id_conflicts(self, records: ToolRecords) -> None:
        """Two tools cannot share an id."""
        records.add(b.tool("t1", name="one"))
        with pytest.raises(ConflictError):
            records.add(b.tool("t1", name="two"))

    def test_active_names_are_unique_per_owner(self, records: ToolRecords) -> None:
        """An owner cannot have two active tools with one name; other owners can use it."""
        records.add(b.tool("t1", owner="a", name="add"))
        with pytest.raises(ConflictError):
            records.add(b.tool("t2", owner="a", name="add"))
        records.add(b.tool("t3", owner="b", name="add"))
        assert {t.tool_id for t in records.list(ToolQuery(status=None))} == {"t1", "t3"}

    def test_an_inactive_name_can_be_reused(self, records: ToolRecords) -> None:
        """Deactivating a tool frees its name for a new tool of the same owner."""
        t = b.tool("t1", owner="a", name="add")
        records.add(t)
        records.save(t.deactivated(b.T0))
        records.add(b.tool("t2", owner="a", name="add"))
        assert records.get("t2").is_active

    def test_save_with_next_record_version(self, records: ToolRecords) -> None:
        """A save that follows the stored record replaces it."""
        t = b.tool()
        records.add(t)
        t2 = t.with_version(b.definition(code="def handler(a, b):\n    return a - b"), b.T0 + timedelta(1))
        records.save(t2)
        stored = records.get(t.tool_id)
        assert stored == t2
        assert stored.current_version == 2 and stored.record_version == 2

    def test_stale_save_conflicts_and_changes_nothing(self, records: ToolRecords) -> None:
        """Two writers from the same record: the second gets ConflictError, the first's change stays."""
        t = b.tool()
        records.add(t)
        first = t.with_visibility(Visibility.PUBLIC, b.T0)
        second = t.with_version(b.definition(code="def handler(a, b):\n    return 0"), b.T0)
        records.save(first)
        with pytest.raises(ConflictError):
            records.save(second)
        assert records.get(t.tool_id) == first

    def test_save_unknown_raises_not_found(self, records: ToolRecords) -> None:
        """Saving a tool that was never added is NotFoundError."""
        t = b.tool()
        with pytest.raises(NotFoundError):
            records.save(t.with_visibility(Visibility.PUBLIC, b.T0))

    def test_save_cannot_steal_an_active_name(self, records: ToolRecords) -> None:
        """Renaming a tool onto another active tool's name of the same owner conflicts."""
        records.add(b.tool("t1", owner="a", name="one"))
        t2 = b.tool("t2", owner="a", name="two")
        records.add(t2)
        with pytest.raises(ConflictError):
            records.save(t2.with_version(b.definition("one"), b.T0))
        assert records.get("t2").name == "two"

    def test_delete_removes_the_record(self, records: ToolRecords) -> None:
        """After delete the tool is gone; deleting it again is NotFoundError."""
        t = b.tool()
        records.add(t)
        records.delete(t.tool_id)
        with pytest.raises(NotFoundError):
            records.get(t.tool_id)
        with pytest.raises(NotFoundError):
            records.delete(t.tool_id)

    def test_list_filters(self, records: ToolRecords) -> None:
        """Listing narrows by owner, visibility to an agent, status, name, tag and text."""
        records.add(b.tool("t1", owner="a", name="alpha"))
        records.add(b.tool("t2", owner="b", name="beta", visibility=Visibility.PUBLIC))
        t3 = b.tool("t3", owner="b", name="gamma")
        records.add(t3)
        records.save(t3.deactivated(b.T0))

        def ids(query: ToolQuery) -> list[str]:
            return [t.tool_id for t in records.list(query)]

        assert ids(ToolQuery(owner="a")) == ["t1"]
        assert ids(ToolQuery(visible_to="a")) == ["t1", "t2"]
        assert ids(ToolQuery(owner="b")) == ["t2"]
        assert ids(ToolQuery(owner="b", status=None)) == ["t2", "t3"]
        assert ids(ToolQuery(owner="b", status=ToolStatus.INACTIVE)) == ["t3"]
        assert ids(ToolQuery(name="beta")) == ["t2"]
        assert ids(ToolQuery(text="ALPH")) == ["t1"]
        assert ids(ToolQuery(status=None, limit=2)) == ["t1", "t2"]

    def test_list_by_tag(self, records: ToolRecords) -> None:
        """Tags of the current version are searchable."""
        t = b.tool("t1")
        records.add(t)
        records.save(t.with_version(b.definition(tags=["math", "demo"]), b.T0))
        records.add(b.tool("t2", name="other"))
        assert [x.tool_id for x in records.list(ToolQuery(tag="math"))] == ["t1"]

    def test_discoverable_lists_the_keys_of_exactly_the_visible_active_tools(self, records: ToolRecords) -> None:
        """Ids, record versions and tags of what the agent may discover, as the records say."""
        tools = b.catalog(records)
        records.save(records.get("w1").deactivated(b.T0))
        for agent in ("a", "b", None):
            expected = {
                (t.tool_id, t.record_version, t.definition.tags)
                for t in (records.get(t.tool_id) for t in tools)
                if t.is_active and (agent is None or t.can_discover(agent))
            }
            assert set(records.discoverable(agent)) == expected
            assert len(records.discoverable(agent)) == len(expected)

    def test_tool_census_counts_tools_owners_and_visibility(self, records: ToolRecords) -> None:
        """Active and inactive tools, distinct owners of active ones, and active tools per visibility."""
        records.add(b.tool("t1", owner="a", name="one"))
        records.add(b.tool("t2", owner="a", name="two", visibility=Visibility.PUBLIC))
        records.add(b.tool("t3", owner="b", name="three", visibility=Visibility.TEAM, team="ops"))
        gone = b.tool("t4", owner="c", name="four")
        records.add(gone)
        records.save(gone.deactivated(b.T0))
        census = records.tool_census()
        assert census == ToolCensus(3, 1, 2, (("private", 1), ("public", 1), ("team", 1)))

    def test_change_marker_moves_with_every_tool_change(self, records: ToolRecords) -> None:
        """A store that offers a change marker changes it for a tool added, saved or deleted
        (watchers announce tool changes); None is a store that cannot tell."""
        before = records.change_marker()
        if before is None:
            return  # the store cannot tell (memory, DynamoDB): its watchers rely on events alone
        t = b.tool()
        records.add(t)
        added = records.change_marker()
        assert added != before
        assert records.change_marker() == added
        records.save(t.with_version(b.definition(code="def handler(a, b):\n    return a - b"), b.T0))
        saved = records.change_marker()
        assert saved != added
        records.delete(t.tool_id)
        assert records.change_marker() != saved
