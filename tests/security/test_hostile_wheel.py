"""A hostile wheel: a package built to run code wherever Python might pick it up.

The wheel (served from a local folder, as a package on the index would be) carries every hook a
Python installation runs without being asked: a ``.pth`` file (``site`` executes its ``import``
lines), ``sitecustomize``/``usercustomize``, and modules named like standard ones (``json``,
``string``). Its owner (Mallory) requires it in a public tool. What must hold, seen from outside:

- resolving and installing it runs none of its code on the host (wheels only, no ``site`` pass);
- a tool without requirements (Alice's) never meets any of it;
- even where it is installed, it never stands in for a standard module, and its ``.pth`` never runs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.requirements_world import local_runtime, private_environments
from toolrt.application import ToolRuntime
from toolrt.domain import ExecutionStatus, IsolationLevel

pytestmark = [pytest.mark.bwrap, pytest.mark.slow]

NAME, VERSION = "toolrt-hostile", "1.0"


def _hook(marker: Path, tag: str) -> str:
    """One line of Python that leaves ``tag`` behind everywhere it can: the host marker file when it
    runs on the host, an environment variable and a builtin when it runs in a sandbox."""
    return (
        f"import os, builtins; builtins.TOOLRT_HOSTILE = {tag!r}; os.environ['TOOLRT_HOSTILE'] = {tag!r}; "
        f"os.path.isdir({str(marker.parent)!r}) and open({str(marker)!r}, 'a').write({tag + chr(10)!r})"
    )


def build_wheel(folder: Path, marker: Path) -> Path:
    """The hostile wheel in ``folder``; every hook appends its name to ``marker`` when it can."""
    info = f"{NAME.replace('-', '_')}-{VERSION}.dist-info"
    files = {
        "hostile/__init__.py": _hook(marker, "import") + "\nVALUE = 'hostile'\n",
        "zz_toolrt_hostile.pth": _hook(marker, "pth") + "\n",
        "sitecustomize.py": _hook(marker, "sitecustomize") + "\n",
        "usercustomize.py": _hook(marker, "usercustomize") + "\n",
        "json.py": _hook(marker, "json") + "\ndef dumps(*a, **k):\n    return 'hostile json'\n",
        "string.py": _hook(marker, "string") + "\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: toolrt-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/top_level.txt": "hostile\njson\nsitecustomize\nstring\nusercustomize\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    wheel = folder / f"{NAME.replace('-', '_')}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


PROBE = '''
import builtins, os, sys


def handler() -> dict:
    """What of the hostile wheel this call meets."""
    import json, string
    seen = {
        "json": json.__file__.startswith(sys.base_prefix) and json.dumps([1]) == "[1]",
        "string": string.__file__.startswith(sys.base_prefix),
        "builtin": getattr(builtins, "TOOLRT_HOSTILE", None),
        "env": os.environ.get("TOOLRT_HOSTILE"),
        "customize": sorted(m for m in ("sitecustomize", "usercustomize") if m in sys.modules),
    }
    try:
        import hostile
        seen["hostile"] = hostile.VALUE
    except ImportError:
        seen["hostile"] = None
    return seen
'''


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ToolRuntime, Path]]:
    wheels = tmp_path_factory.mktemp("hostile-wheels")
    marker = tmp_path_factory.mktemp("host-marker") / "ran-on-the-host"
    build_wheel(wheels, marker)
    # pip on the host finds the wheel in that folder only (as it would on an index).
    patch = pytest.MonkeyPatch()
    patch.setenv("PIP_FIND_LINKS", str(wheels))
    patch.setenv("PIP_NO_INDEX", "1")
    with private_environments() as root:
        rt = local_runtime(tmp_path_factory.mktemp("hostile-store"), root, security_checks=False)
        try:
            yield rt, marker
        finally:
            rt.close()
            patch.undo()


def _call(rt: ToolRuntime, agent: str, tool_id: str) -> dict[str, Any]:
    result = rt.execute_tool(agent, tool_id, {})
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert result.metrics.isolation is IsolationLevel.NAMESPACES
    assert isinstance(result.output, dict)
    return result.output


def test_a_hostile_wheel_runs_only_where_a_tool_imports_it(world: tuple[ToolRuntime, Path]) -> None:
    rt, marker = world
    hostile = rt.register_tool(
        "mallory",
        {
            "name": "hostile_probe",
            "description": "Probe.",
            "language": "python",
            "code": PROBE,
            "requirements": [NAME],
        },  # fmt: skip
        visibility="public",
    )
    lock = hostile.tool.definition.lock
    assert lock is not None and lock.names == (NAME,)
    # Resolved and installed on the host: none of its hooks ran here.
    assert not marker.exists(), marker.read_text()
    plain = rt.register_tool(
        "alice", {"name": "plain_probe", "description": "Probe.", "language": "python", "code": PROBE}
    )
    for _ in range(2):  # before and after the hostile zygote has imported its packages
        mallory = _call(rt, "mallory", hostile.tool_id)
        # Where it is installed, the tool imports its package, and nothing else of it stands in.
        assert mallory["hostile"] == "hostile"
        assert mallory["json"] is True and mallory["string"] is True
        alice = _call(rt, "alice", plain.tool_id)
        assert alice == {
            "json": True,
            "string": True,
            "builtin": None,
            "env": None,
            "customize": [],
            "hostile": None,
        }
        # Alice calls Mallory's public tool: it runs with the wheel, in a zygote of Alice's own.
        assert _call(rt, "alice", hostile.tool_id)["hostile"] == "hostile"
        assert _call(rt, "alice", plain.tool_id) == alice
    assert not marker.exists(), marker.read_text()
    assert "TOOLRT_HOSTILE" not in os.environ
