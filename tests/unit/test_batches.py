"""Batch registration: one result per item, all or nothing on request, code validated once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes import CountingValidator, FlakyGateway, memory_runtime
from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
from toolrt.application import ToolRuntime
from toolrt.domain import ConflictError, RegistrationError, ValidationError

ADD = "def handler(a: int, b: int) -> int:\n    return a + b\n"


def _defs(n: int, code: str = ADD, prefix: str = "add") -> list[dict[str, Any]]:
    return [{"name": f"{prefix}_{i}", "description": "Add", "language": "python", "code": code} for i in range(n)]


@pytest.fixture(params=["memory", "sqlite"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> ToolRuntime:
    """Both paths: records one by one (memory) and in one transaction (SQLite's add_many)."""
    if request.param == "memory":
        return memory_runtime()
    return memory_runtime(repository=SqliteToolRepository(tmp_path / "tools.sqlite"))


def test_shared_code_is_validated_once_and_every_item_gets_its_registration(rt: ToolRuntime) -> None:
    validator = rt.ports.validator
    assert isinstance(validator, CountingValidator)
    items = rt.register_tools("alice", [*_defs(50), *_defs(3, "def handler(x: int) -> int:\n    return x\n", "id")])
    assert [i.index for i in items] == list(range(53)) and all(i.ok for i in items)
    assert validator.calls == 2  # two distinct codes
    tools = {t.tool_id: t for t in rt.list_tools(owner="alice")}
    assert len(tools) == 53
    for item in items:
        assert item.registration is not None and item.registration.tool == tools[item.registration.tool_id]
        assert item.registration.tool.gateway_ref is not None
    assert rt.execute_tool("alice", items[7].registration.tool_id, {"a": 1, "b": 2}).ok  # type: ignore[union-attr]


def test_without_atomic_each_item_fails_on_its_own(rt: ToolRuntime) -> None:
    rt.register_tool("alice", _defs(1)[0])  # add_0 exists already
    batch = [*_defs(3), {"name": "broken"}, {**_defs(1)[0], "name": "bad_code", "code": "def handler(:\n"}]
    batch.append({**_defs(1)[0], "name": "add_1"})  # a second add_1 in the batch
    items = rt.register_tools("alice", batch)
    assert [i.ok for i in items] == [False, True, True, False, False, False]
    assert isinstance(items[0].error, ConflictError) and isinstance(items[3].error, ValidationError)
    assert isinstance(items[4].error, ValidationError) and isinstance(items[5].error, ConflictError)
    assert "two tools named 'add_1'" in str(items[5].error)
    assert sorted(t.name for t in rt.list_tools(owner="alice")) == ["add_0", "add_1", "add_2"]


def test_atomic_keeps_nothing_when_one_item_fails(rt: ToolRuntime) -> None:
    artifacts = rt.ports.artifacts
    rt.register_tool("alice", _defs(1, prefix="taken")[0])
    before = set(artifacts.hashes())  # type: ignore[attr-defined]
    unique = "def handler(a: int, b: int) -> int:\n    return a * b\n"
    batch = [*_defs(2, unique), _defs(1, prefix="taken")[0]]
    items = rt.register_tools("alice", batch, atomic=True)
    assert not any(i.ok for i in items)
    assert isinstance(items[2].error, ConflictError)
    assert isinstance(items[0].error, RegistrationError) and "item 2 failed" in str(items[0].error)
    assert [t.name for t in rt.list_tools(owner="alice")] == ["taken_0"]
    assert set(artifacts.hashes()) == before  # type: ignore[attr-defined]  # the new code is not kept
    assert [t.name for t in rt.ports.gateway.tools()] == ["taken_0"]  # type: ignore[attr-defined]


def test_atomic_rolls_back_when_the_gateway_refuses(tmp_path: Path) -> None:
    gateway = FlakyGateway()
    rt = memory_runtime(gateway=gateway, repository=SqliteToolRepository(tmp_path / "tools.sqlite"))
    gateway.fail_on.add("register")
    items = rt.register_tools("alice", _defs(3), atomic=True)
    assert all(isinstance(i.error, RegistrationError) for i in items)
    assert rt.list_tools(owner="alice") == []
    gateway.fail_on.clear()
    assert all(i.ok for i in rt.register_tools("alice", _defs(3), atomic=True))


def test_a_batch_never_sees_or_reuses_another_agents_private_tools(rt: ToolRuntime) -> None:
    """With on_duplicate checks on, a hostile agent's batch learns nothing of a victim's private tool."""
    rt.register_tool("victim", {**_defs(1)[0], "name": "victim_add"})
    public = rt.register_tool("alice", {**_defs(1)[0], "name": "public_add"}, "public")
    items = rt.register_tools("mallory", _defs(2), on_duplicate="reuse")
    assert all(i.ok and i.registration is not None for i in items)
    assert {i.registration.tool_id for i in items} == {public.tool_id}  # type: ignore[union-attr]
    warned = rt.register_tools("mallory", _defs(1, prefix="mine"), on_duplicate="warn")[0].registration
    assert warned is not None and [s.name for s in warned.similar] == ["public_add"]


def test_bad_batches_are_refused_clearly() -> None:
    rt = memory_runtime()
    with pytest.raises(ValidationError, match="list of tool definitions"):
        rt.register_tools("alice", _defs(1)[0])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="on_duplicate"):
        rt.register_tools("alice", _defs(1), on_duplicate="merge")
    assert rt.register_tools("alice", []) == []
    item = rt.register_tools(" ", _defs(1))[0]
    assert isinstance(item.error, ValidationError) and "agent_id" in str(item.error)
