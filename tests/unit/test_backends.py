"""Backends by name, open to other packages, and adapters passed to connect() as instances."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import toolrt
from tests.fakes import EchoSandbox
from toolrt import backends as registry
from toolrt.adapters.memory import InMemoryToolRepository
from toolrt.contracts import builders as b
from toolrt.domain import ValidationError
from toolrt.settings import Settings, SettingsError


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path where a test installs a distribution (its dist-info and module)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._installed.cache_clear()
    yield tmp_path
    registry._installed.cache_clear()


def _install(root: Path, dist: str, entry_points: str, module: str, source: str) -> None:
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[toolrt.backends]\n{entry_points}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))


def test_a_package_adds_a_sandbox_backend_through_an_entry_point(installed: Path) -> None:
    """An installed distribution's toolrt.backends entry point makes connect(sandbox=NAME) build its
    sandbox; toolrt's own files are not touched."""
    _install(
        installed,
        "toolrt_echo",
        "sandbox.echo = toolrt_echo_backend:BACKEND",
        "toolrt_echo_backend",
        """
        from toolrt.backends import Backend
        from toolrt.adapters.memory import InProcessSandbox

        BACKEND = Backend("sandbox", "echo", lambda parts: InProcessSandbox(isolation=parts.settings.isolation))
        """,
    )
    assert "echo" in registry.backends("sandbox")
    with toolrt.connect("memory", sandbox="echo") as rt:
        assert rt.health()["isolation"] == "none"
        reg = rt.register_tool("agent-a", b.definition())
        assert rt.execute_tool("agent-a", reg.tool_id, {"a": 1, "b": 2}).output == 3
        assert rt.requirements is not None


def test_a_broken_or_misnamed_entry_point_is_skipped(installed: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Another package's import error or a wrong entry does not stop toolrt; it is logged and skipped."""
    _install(
        installed,
        "toolrt_broken",
        "sandbox.broken = toolrt_broken_backend:BACKEND\nsandbox.other = toolrt_misnamed_backend:BACKEND",
        "toolrt_broken_backend",
        "raise ImportError('a dependency of this backend is missing')\n",
    )
    (installed / "toolrt_misnamed_backend.py").write_text(
        "from toolrt.backends import Backend\nBACKEND = Backend('sandbox', 'misnamed', lambda parts: None)\n"
    )
    with caplog.at_level("WARNING", logger="toolrt"):
        found = registry.backends("sandbox")
    assert {"broken", "other", "misnamed"}.isdisjoint(found) and "local" in found
    assert "failed to load" in caplog.text and "not a Backend named <port>.<name>" in caplog.text


def test_an_unknown_backend_name_is_refused_naming_the_known_ones() -> None:
    """A name no backend has fails at connect with the names there are; a malformed one at once."""
    with pytest.raises(SettingsError, match=r"sandbox='gvisor' is not one of aws, inprocess, local, memory"):
        toolrt.connect("memory", sandbox="gvisor")
    with pytest.raises(SettingsError, match="is not a backend name"):
        Settings(sandbox="Not A Name")


def test_connect_takes_port_instances() -> None:
    """connect(sandbox=..., repository=...) runs on the adapters given, as httpx takes transport=."""
    sandbox, repository = EchoSandbox(), InMemoryToolRepository()
    with toolrt.connect("memory", sandbox=sandbox, repository=repository) as rt:
        assert rt.ports.sandbox is sandbox and rt.ports.repository is repository
        reg = rt.register_tool("agent-a", b.definition())
        assert rt.execute_tool("agent-a", reg.tool_id, {"a": 1, "b": 2}).ok
        assert sandbox.requests and repository.get(reg.tool_id).name == reg.tool.name
        # A sandbox given so installs no requirements unless environments= is given too.
        environments = rt.ports.environments
        assert environments is not None and not environments.supports(b.definition().language)


def test_connect_refuses_an_object_that_is_no_port() -> None:
    """Something that is neither a backend name nor the port's adapter is refused, naming the port."""
    with pytest.raises(ValidationError, match="sandbox must be a Sandbox .* or the name of a backend, got object"):
        toolrt.connect("memory", sandbox=object())
    with pytest.raises(ValidationError, match="validator must be a CodeValidator, got int"):
        toolrt.connect("memory", validator=3)


_WITHOUT_BOTO3 = """
import sys
sys.modules["boto3"] = sys.modules["botocore"] = None  # as if the aws extra were not installed
import toolrt
from toolrt import backends
from toolrt.bootstrap import build_container
from toolrt.settings import Settings

settings = Settings(profile="aws")
parts = build_container(settings).adapters.parts()
for port in ("repository", "artifacts", "sandbox", "gateway"):
    try:
        backends.build_backend(port, "aws", parts)
    except toolrt.MissingDependencyError as exc:
        assert exc.extra == "aws", exc
        print(port, "names the extra")
    else:
        raise SystemExit(port + ": built without boto3")
try:
    toolrt.connect("aws")
except toolrt.MissingDependencyError as exc:
    assert exc.extra == "aws", exc
    print("connect names the extra")
"""


def test_every_aws_backend_without_boto3_names_the_extra_to_install() -> None:
    """Each aws backend asks for its clients before it imports the aws adapters: without boto3 the
    error is MissingDependencyError('aws'), not a ModuleNotFoundError from deep inside."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _WITHOUT_BOTO3], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:5] == [
        "repository names the extra",
        "artifacts names the extra",
        "sandbox names the extra",
        "gateway names the extra",
        "connect names the extra",
    ]
