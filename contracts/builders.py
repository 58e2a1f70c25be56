"""Small builders of domain objects for the contract suites and tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from toolrt.domain import (
    Artifact,
    CodeHash,
    Execution,
    ExecutionMetrics,
    ExecutionStatus,
    Language,
    Lock,
    LockedPackage,
    Tool,
    ToolDefinition,
    ValidationReport,
    Visibility,
)
from toolrt.ports import ToolRecords

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def definition(name: str = "add", code: str | None = None, **changes: Any) -> ToolDefinition:
    """A valid Python definition; ``code`` defaults to a small adder unique to ``name``."""
    fields: dict[str, Any] = {
        "name": name,
        "description": f"{name}: adds two numbers",
        "language": Language.PYTHON,
        "code": code if code is not None else f"def handler(a, b):\n    # {name}\n    return a + b\n",
        "input_schema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    }
    fields.update(changes)
    return ToolDefinition(**fields)


def tool(
    tool_id: str = "tool-1",
    owner: str = "agent-a",
    name: str = "add",
    code: str | None = None,
    visibility: Visibility = Visibility.PRIVATE,
    now: datetime = T0,
    team: str | None = None,
) -> Tool:
    """A new active tool at version 1 (``team`` exactly when the visibility is team)."""
    return Tool.create(
        tool_id=tool_id,
        owner=owner,
        definition=definition(name, code),
        now=now,
        visibility=visibility,
        team=team,
    )


def lock(*packages: str) -> Lock:
    """A Python lock of ``name==version`` packages (default: python-dateutil and six), as a resolver makes it."""
    pins = packages or ("python-dateutil==2.9.0.post0", "six==1.17.0")
    locked = []
    for index, pin in enumerate(pins):
        name, _, version = pin.partition("==")
        digest = f"{index:02x}" * 32
        url = f"https://files.example.org/{name}-{version}-py3-none-any.whl"
        locked.append(LockedPackage(name, version, url, digest, requested=index == 0))
    return Lock(
        "python", locked, "cp311-cp311-manylinux_2_17_x86_64", [p.partition("==")[0].replace("-", "_") for p in pins]
    )


def artifact(
    code: str = "def handler():\n    return 1", language: Language = Language.PYTHON, lock: Lock | None = None
) -> Artifact:
    """An artifact for ``code`` (run with ``lock``'s packages, when given) with an empty report."""
    return Artifact(
        code_hash=CodeHash.of(language.value, code, lock.digest if lock is not None else None),
        language=language,
        code=code,
        entrypoint="handler",
        report=ValidationReport(policy_version="test-1"),
        created_at=T0,
        lock=lock,
    )


def execution(
    execution_id: str = "exec-1",
    tool_id: str = "tool-1",
    status: ExecutionStatus = ExecutionStatus.SUCCEEDED,
    caller: str = "agent-a",
) -> Execution:
    """A finished execution record."""
    return Execution(
        execution_id=execution_id,
        tool_id=tool_id,
        version=1,
        caller=caller,
        status=status,
        created_at=T0,
        finished_at=T0 + timedelta(milliseconds=5),
        output={"sum": 3},
        stdout="hello\n",
        metrics=ExecutionMetrics(wall_ms=5.0, cpu_ms=3.0, max_rss_kb=1000, exit_code=0),
    )


def searchable(tool_id: str, owner: str, name: str, description: str, **changes: Any) -> Tool:
    """A tool to search for: public unless ``visibility`` says otherwise; ``changes`` go to the definition."""
    visibility = changes.pop("visibility", Visibility.PUBLIC)
    team = changes.pop("team", None)
    made = definition(name, description=description, **changes)
    return Tool.create(tool_id=tool_id, owner=owner, definition=made, visibility=visibility, team=team, now=T0)


def catalog(records: ToolRecords) -> list[Tool]:
    """Five tools added to ``records``: a's weather tools and private population tool, b's public
    unit converter and private weather tool."""
    tools = [
        searchable("w1", "a", "get_weather_forecast", "Weather forecast for a city, by day"),
        searchable("w2", "a", "currentWeather", "The weather now at a place", tags=("weather",)),
        searchable("u1", "b", "convert_units", "Convert a length between metric and imperial units"),
        searchable("p1", "a", "city_population", "Population of a city", visibility=Visibility.PRIVATE),
        searchable("s1", "b", "stolen_weather", "Weather from b's secret station", visibility=Visibility.PRIVATE),
    ]
    for made in tools:
        records.add(made)
    return tools


def team_catalog(records: ToolRecords) -> list[Tool]:
    """:func:`catalog`, and three team tools: two of team red (b's, c's) and one of team blue (b's)."""
    team = Visibility.TEAM
    shared = [
        searchable("r1", "b", "red_weather", "Weather radar for the red team", visibility=team, team="red"),
        searchable("r2", "c", "red_city", "City weather station list", visibility=team, team="red"),
        searchable("k1", "b", "blue_weather", "Weather of the blue team", visibility=team, team="blue"),
    ]
    for made in shared:
        records.add(made)
    return [*catalog(records), *shared]
