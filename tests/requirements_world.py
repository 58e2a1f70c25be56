"""The world of the requirements tests: real pip against the package index, real bubblewrap.

Downloads stay small and happen once a session: environments are built under one folder shared by
every pytest worker of the run (the per-lock file lock makes concurrent builders safe, which the
tests rely on), and pip keeps its own download cache between runs.
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import toolrt
from toolrt.application import ToolRuntime

DATEUTIL = ["python-dateutil>=2.8"]
NUMPY = ["numpy>=1.26,<3"]

PARSE_DATE: dict[str, Any] = {
    "name": "parse_date",
    "description": "Parse a date written in any common form into ISO 8601.",
    "language": "python",
    "code": (
        "from dateutil import parser\n\n\n"
        "def handler(text: str) -> str:\n"
        '    """Parse a date."""\n'
        "    return parser.parse(text).isoformat()\n"
    ),
    "requirements": DATEUTIL,
}

ARRAY_STATS = {
    "name": "array_stats",
    "description": "Mean and standard deviation of a list of numbers.",
    "language": "python",
    "code": (
        "import numpy as np\n\n\n"
        "def handler(values: list[float]) -> dict:\n"
        '    """Mean and deviation."""\n'
        "    a = np.asarray(values, dtype=float)\n"
        "    return {'mean': float(a.mean()), 'std': float(a.std()), 'numpy': np.__version__}\n"
    ),
    "requirements": NUMPY,
}


def shared_environments() -> Path:
    """One environments folder shared by the xdist workers and kept between runs, like pip's cache.

    Under the system's temporary folder rather than pytest's (closed to others): as root, the
    sandbox runs as nobody and must reach it. Environments are keyed by their lock's content, so
    one built by an earlier run is exactly what this run would build.
    """
    path = Path(tempfile.gettempdir()) / f"toolrt-test-environments-{os.getuid()}"
    path.mkdir(mode=0o755, exist_ok=True)
    return path


@contextmanager
def private_environments() -> Iterator[Path]:
    """An empty environments folder of a test's own (the sandbox user can reach it), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="toolrt-test-envs-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for folder, _, _ in os.walk(path):
            os.chmod(folder, 0o755)
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def host_writes_capped(megabytes: int) -> Iterator[None]:
    """No process of this test's (pip and npm among them) may write a file over ``megabytes``
    meanwhile: what a size limit must refuse is then seen never to have been written out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (megabytes << 20, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def local_runtime(data_dir: Path, environments: Path, **settings: Any) -> ToolRuntime:
    """A local-profile runtime in ``data_dir`` whose environments live in ``environments``."""
    return toolrt.connect(
        "local",
        data_dir=data_dir,
        environments_dir=environments,
        isolation="strict",
        sandbox_workers=1,
        **settings,
    )


def tool(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a tool definition with some fields changed."""
    return {**base, **changes}


def aws_sandbox_runtime(tmp_path: Path, **settings: Any) -> tuple[ToolRuntime, Any]:
    """A memory-profile runtime on the aws sandbox, its environments under ``tmp_path``, and the fake
    Code Interpreter (``tests.unit.aws.fake_agentcore``) its client now talks to."""
    from tests.unit.aws.fake_agentcore import FakeCodeInterpreter

    rt = toolrt.connect(
        "memory",
        sandbox="aws",
        aws_region="us-east-1",
        data_dir=str(tmp_path),
        environments_dir=str(tmp_path / "environments"),
        # The tools here read where modules came from (__file__, sys.modules), which the static
        # security rules refuse to agents; the sandbox, not those rules, is under test.
        security_checks=False,
        **settings,
    )
    fake = FakeCodeInterpreter(rt.ports.sandbox._client)  # type: ignore[attr-defined]
    return rt, fake


def refused_past_16_mb(store: Path, environments: Path, definition: dict[str, Any]) -> tuple[Any, list[Any]]:
    """Mallory registers ``definition`` on a runtime whose environments may hold 16 MB, while the
    host's processes may write no file over 24 MB: the RequirementError it is refused with, and
    the tools Mallory has afterwards."""
    import pytest

    from toolrt.domain import RequirementError

    rt = local_runtime(store, environments, max_environment_mb=16)
    try:
        with host_writes_capped(24), pytest.raises(RequirementError) as refused:
            rt.register_tool("mallory", definition)
        return refused.value, list(rt.list_tools("mallory"))
    finally:
        rt.close()
