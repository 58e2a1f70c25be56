"""Requirements that cannot be met: a typed error naming the requirement, and nothing stored or built."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.requirements_world import PARSE_DATE, local_runtime, private_environments, tool
from toolrt.application import ToolRuntime
from toolrt.domain import RequirementError, ValidationError

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def envs() -> Iterator[Path]:
    with private_environments() as path:
        yield path


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory, envs: Path) -> Iterator[ToolRuntime]:
    runtime = local_runtime(
        tmp_path_factory.mktemp("req-errors"), envs, denied_packages=["tzdata"], max_environment_mb=1
    )
    try:
        yield runtime
    finally:
        runtime.close()


def nothing_kept(rt: ToolRuntime, envs: Path) -> bool:
    built = (
        [p for p in (envs / "python").iterdir() if not p.name.startswith(".locks")]
        if (envs / "python").exists()
        else []
    )
    return rt.list_tools("alice") == [] and list(rt.ports.artifacts.hashes()) == [] and built == []


def register(rt: ToolRuntime, requirements: list[str], **changes: Any) -> None:
    code = 'def handler(text: str) -> str:\n    """Echo."""\n    return text\n'
    rt.register_tool("alice", tool(PARSE_DATE, code=code, requirements=requirements, **changes))


@pytest.mark.parametrize(
    ("requirement", "reason", "says"),
    [
        ("toolrt-no-such-package-7f3a9c", "not_found", "is not on the package index"),
        ("six==99.0", "no_matching_version", "no version of 'six' matches"),
        ("docopt==0.6.2", "no_wheel", "published only as source"),
    ],
)
def test_a_requirement_the_index_cannot_meet_names_it(
    rt: ToolRuntime, envs: Path, requirement: str, reason: str, says: str
) -> None:
    """Unknown package, no matching version, sdist only: RequirementError naming the requirement."""
    with pytest.raises(RequirementError) as caught:
        register(rt, [requirement])
    assert caught.value.requirement == requirement and caught.value.reason == reason
    assert says in str(caught.value)
    assert caught.value.report.errors[0].rule_id == "definition.requirements"
    assert nothing_kept(rt, envs)


def test_a_malformed_requirement_never_reaches_pip(rt: ToolRuntime, envs: Path) -> None:
    """A specifier PEP 508 does not read is a ValidationError naming it, before any resolution."""
    with pytest.raises(ValidationError, match="'numpy>>1' is not a valid PEP 508 specifier"):
        register(rt, ["numpy>>1"])
    assert nothing_kept(rt, envs)


def test_a_denied_dependency_is_refused_before_anything_is_installed(rt: ToolRuntime, envs: Path) -> None:
    """python-dateutil pulls tzdata in, which the owner denies: refused, naming tzdata, nothing built."""
    with pytest.raises(RequirementError) as caught:
        register(rt, ["python-dateutil>=2.8"])
    assert caught.value.requirement == "tzdata" and caught.value.reason == "denied"
    assert nothing_kept(rt, envs)


def test_an_environment_over_the_size_limit_is_refused_and_removed(rt: ToolRuntime, envs: Path) -> None:
    """six fits in the policy's 1 MB; pytz (its time zone files) does not, and nothing of it is kept."""
    register(rt, ["six==1.17.0"], name="small")
    [small] = rt.list_tools("alice")
    rt.deregister_tool("alice", small.tool_id, purge=True)
    assert len(rt.prune_environments().removed) == 1
    with pytest.raises(RequirementError) as caught:
        register(rt, ["pytz==2024.1"], name="big")
    assert caught.value.requirement == "pytz==2024.1" and caught.value.reason == "too_large"
    assert "more than the policy's 1 MB" in str(caught.value)
    assert nothing_kept(rt, envs)
