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

from tests.requirements_world import local_runtime, private_environments, refused_past_16_mb
from toolrt.application import ToolRuntime
from toolrt.domain import ExecutionStatus, IsolationLevel, RequirementError

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
    return write_wheel(
        folder,
        NAME,
        {
            "hostile/__init__.py": _hook(marker, "import") + "\nVALUE = 'hostile'\n",
            "zz_toolrt_hostile.pth": _hook(marker, "pth") + "\n",
            "sitecustomize.py": _hook(marker, "sitecustomize") + "\n",
            "usercustomize.py": _hook(marker, "usercustomize") + "\n",
            "json.py": _hook(marker, "json") + "\ndef dumps(*a, **k):\n    return 'hostile json'\n",
            "string.py": _hook(marker, "string") + "\n",
        },
        "hostile\njson\nsitecustomize\nstring\nusercustomize\n",
    )


def write_wheel(
    folder: Path, name: str, files: dict[str, str | bytes], top_level: str, requires: list[str] | None = None
) -> Path:
    """A pure-Python wheel of ``name`` (version VERSION) holding ``files`` and depending on ``requires``."""
    info = f"{name.replace('-', '_')}-{VERSION}.dist-info"
    files = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {VERSION}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires or ()),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: toolrt-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/top_level.txt": top_level,
    }
    record = []
    for path, text in files.items():
        data = text.encode() if isinstance(text, str) else text
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    wheel = folder / f"{name.replace('-', '_')}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
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
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The folder pip on the host finds wheels in (it alone, as an index would be), and the host marker."""
    folder = tmp_path_factory.mktemp("hostile-wheels")
    marker = tmp_path_factory.mktemp("host-marker") / "ran-on-the-host"
    build_wheel(folder, marker)
    patch = pytest.MonkeyPatch()
    patch.setenv("PIP_FIND_LINKS", str(folder))
    patch.setenv("PIP_NO_INDEX", "1")
    try:
        yield folder, marker
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, wheels: tuple[Path, Path]) -> Iterator[tuple[ToolRuntime, Path]]:
    with private_environments() as root:
        rt = local_runtime(tmp_path_factory.mktemp("hostile-store"), root, security_checks=False)
        try:
            yield rt, wheels[1]
        finally:
            rt.close()


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


BOMB_MB = 48
SECRET = "pip-host-secret-51c2"


def test_a_compressed_bomb_is_refused_before_it_is_unpacked_on_the_host(
    tmp_path_factory: pytest.TempPathFactory, wheels: tuple[Path, Path]
) -> None:
    """A wheel of a few kilobytes that unpacks to 48 MB, against a 16 MB environment limit: refused as
    too large, without the host ever writing it out. A bigger one would fill the host's disk (every
    agent's runtime) before a size check made after the install could say no.

    Seen from outside: the host's processes (pip among them) may write no file over 24 MB here.
    """
    folder, _ = wheels
    write_wheel(folder, "toolrt-bomb", {"bomb/__init__.py": "", "bomb/zeros.bin": bytes(BOMB_MB << 20)}, "bomb\n")
    assert sum(w.stat().st_size for w in folder.glob("toolrt_bomb-*.whl")) < 1 << 20
    with private_environments() as root:
        error, _ = refused_past_16_mb(
            tmp_path_factory.mktemp("bomb-store"),
            root,
            {
                "name": "bomb",
                "description": "Unpacks.",
                "language": "python",
                "code": "import bomb\n\ndef handler() -> int:\n    return 1\n",
                "requirements": ["toolrt-bomb"],
            },
        )
        assert error.reason == "too_large", error
        assert "16 MB" in str(error.report)
        assert [p for p in root.rglob("zeros.bin")] == []


def test_a_wheel_larger_than_the_limit_is_never_downloaded_whole(
    tmp_path_factory: pytest.TempPathFactory, wheels: tuple[Path, Path]
) -> None:
    """A 48 MB wheel that does not compress, against a 16 MB environment limit: pip's download stops
    at the limit and the registration is refused as too large. A wheel of gigabytes would otherwise
    land whole on the host's disk, at every registration, before any size check could say no.

    Seen from outside: the host's processes may write no file over 24 MB here.
    """
    folder, _ = wheels
    noise = os.urandom(BOMB_MB << 20)
    write_wheel(folder, "toolrt-huge", {"huge/__init__.py": "", "huge/noise.bin": noise}, "huge\n")
    assert min(w.stat().st_size for w in folder.glob("toolrt_huge-*.whl")) > 40 << 20
    with private_environments() as root:
        error, listed = refused_past_16_mb(
            tmp_path_factory.mktemp("huge-store"),
            root,
            {
                "name": "huge",
                "description": "Big.",
                "language": "python",
                "code": "import huge\n\ndef handler() -> int:\n    return 1\n",
                "requirements": ["toolrt-huge"],
            },
        )
        assert listed == []
        assert error.reason == "too_large", error.report
        assert "16 MB" in str(error.report)


def test_a_dependency_on_a_host_file_is_refused_as_a_direct_reference(
    tmp_path: Path, wheels: tuple[Path, Path]
) -> None:
    """A package on the index that depends on ``leak @ file:///<a wheel on the host>`` (or on any
    URL): refused by the name of the package that asked for it, as not a package of the index,
    before anything of it is installed."""
    folder, _ = wheels
    host = tmp_path / "host-only"
    host.mkdir()
    leak = write_wheel(host, "toolrt-leak", {"toolrt_leak/__init__.py": f"SECRET = {SECRET!r}\n"}, "toolrt_leak\n")
    write_wheel(
        folder,
        "toolrt-urldep",
        {"toolrt_urldep/__init__.py": ""},
        "toolrt_urldep\n",
        requires=[f"toolrt-leak @ {leak.as_uri()}"],
    )
    with private_environments() as root:
        rt = local_runtime(tmp_path / "store", root)
        try:
            with pytest.raises(RequirementError) as refused:
                rt.register_tool(
                    "mallory",
                    {
                        "name": "urldep",
                        "description": "Depends on a file.",
                        "language": "python",
                        "code": "import toolrt_urldep\n\ndef handler() -> int:\n    return 1\n",
                        "requirements": ["toolrt-urldep"],
                    },  # fmt: skip
                )
        finally:
            rt.close()
        assert refused.value.reason == "denied" and refused.value.requirement == "toolrt-urldep", refused.value
        assert "toolrt-leak" in str(refused.value) or "toolrt_leak" in str(refused.value)
        assert not any(SECRET.encode() in p.read_bytes() for p in root.rglob("*") if p.is_file())
