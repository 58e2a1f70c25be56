"""Environments under attack: a hostile agent tries to reach, change or borrow another tool's packages.

The decision these tests hold: an environment holds only what the public package index serves and
is keyed by its lock, so two tools with the same lock share it (an agent that declares the same
requirements gets the same public files, which it could download anyway). What must never happen:
a tool sees an environment it did not declare (a tool without requirements sees none at all), or
changes one that others run with.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.requirements_world import PARSE_DATE, local_runtime, private_environments, shared_environments, tool
from toolrt.adapters.local.sandbox import SubprocessSandbox
from toolrt.application import ToolRuntime
from toolrt.domain import ExecutionStatus, IsolationLevel, Language
from toolrt.ports import SandboxRequest

pytestmark = [pytest.mark.bwrap, pytest.mark.slow]

# Every way a tool might look for packages it did not declare: import, the mount point, the host
# folder it learned about, and a walk over the filesystem it can see.
SNOOP = '''
import os, sys


def handler(host_path: str) -> dict:
    """Look for any environment."""
    found = {}
    try:
        import dateutil
        found["import"] = dateutil.__file__
    except ImportError as exc:
        found["import"] = "refused: " + type(exc).__name__
    found["sys_path"] = [p for p in sys.path if "site" in p or "toolrt" in p]
    found["mount"] = os.path.exists("/opt/toolrt/site")  # where an environment is bound
    found["host_path"] = os.path.exists(host_path)
    seen = []
    for top in ("/opt", "/tmp", "/var", "/root", "/home", "/srv", "/run"):
        for folder, dirs, files in os.walk(top):
            if "dateutil" in dirs or "dateutil" in folder:
                seen.append(folder)
    found["walk"] = seen
    return found
'''

# Tries to change the packages every tool with this lock runs: writes, removals, renames, chmod.
TAMPER = '''
import os
import dateutil
from dateutil import parser

def handler() -> dict:
    """Try to change the shared environment."""
    site = os.path.dirname(os.path.dirname(dateutil.__file__))
    target = parser.__file__
    outcomes = {}
    attempts = {
        "overwrite": lambda: open(target, "w").write("def parse(*a): return 'pwned'"),
        "append": lambda: open(target, "a").write("\\nPWNED = 1\\n"),
        "create": lambda: open(os.path.join(site, "evil.py"), "w").write("x = 1"),
        "remove": lambda: os.remove(target),
        "rename": lambda: os.rename(target, target + ".bak"),
        "chmod": lambda: os.chmod(target, 0o777),
        "mkdir": lambda: os.mkdir(os.path.join(site, "evil")),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            outcomes[name] = "done"
        except OSError as exc:
            outcomes[name] = type(exc).__name__
    return {"site": site, "outcomes": outcomes}
'''


def tree_digest(path: Path) -> str:
    """A digest of every file's path, mode and content under ``path``: the outside view of tampering."""
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files) + sorted(dirs):
            full = Path(folder) / name
            digest.update(f"{full.relative_to(path)}:{full.lstat().st_mode:o}".encode())
            if full.is_file() and not full.is_symlink():
                digest.update(full.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolRuntime]:
    # Security rules off: the attacker's code is assumed to get past validation; only the sandbox stands.
    runtime = local_runtime(tmp_path_factory.mktemp("req-security"), shared_environments(), security_checks=False)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def alice_tool(rt: ToolRuntime) -> str:
    """Alice's date parser, run once so that her environment's zygote is warm."""
    tool_id = rt.register_tool("alice", PARSE_DATE).tool_id
    assert rt.execute_tool("alice", tool_id, {"text": "2020-01-01"}).status is ExecutionStatus.SUCCEEDED
    return tool_id


def test_a_tool_without_requirements_sees_no_environment(rt: ToolRuntime, alice_tool: str) -> None:
    """Mallory's tool declares nothing: no import, no mount, no host folder, nothing on a walk, even
    right after Alice's calls and even knowing where Alice's environment is on the host."""
    alice = rt.ports.repository.get(alice_tool).definition
    host_path = rt.requirements.location(alice)
    assert host_path is not None and Path(host_path, "dateutil").is_dir()
    snoop = rt.register_tool("mallory", tool(PARSE_DATE, name="snoop", code=SNOOP, requirements=[]))
    for _ in range(2):  # before and after another of Alice's calls
        result = rt.execute_tool("mallory", snoop.tool_id, {"host_path": host_path})
        assert result.status is ExecutionStatus.SUCCEEDED, result.error
        assert result.metrics.isolation is IsolationLevel.NAMESPACES
        assert result.output == {
            "import": "refused: ModuleNotFoundError",
            "sys_path": [],
            "mount": False,
            "host_path": False,
            "walk": [],
        }
        rt.execute_tool("alice", alice_tool, {"text": "2021-01-01"})


def test_a_tool_with_other_requirements_sees_only_its_own_packages(rt: ToolRuntime, alice_tool: str) -> None:
    """Mallory requires six only: her tool runs with six, and Alice's dateutil is nowhere to be found."""
    code = SNOOP.replace('"""Look for any environment."""', '"""Look."""\n    import six')
    snoop = rt.register_tool("mallory", tool(PARSE_DATE, name="snoop_six", code=code, requirements=["six==1.17.0"]))
    lock = snoop.tool.definition.lock
    assert lock is not None and lock.names == ("six",)
    alice_path = rt.requirements.location(rt.ports.repository.get(alice_tool).definition)
    result = rt.execute_tool("mallory", snoop.tool_id, {"host_path": alice_path})
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    out = result.output
    assert out["import"] == "refused: ModuleNotFoundError" and out["host_path"] is False and out["walk"] == []
    assert out["mount"] is True and out["sys_path"] == ["/opt/toolrt/site"]


def test_the_shared_environment_cannot_be_changed_from_inside(rt: ToolRuntime, alice_tool: str) -> None:
    """Mallory declares the same requirements (so she shares Alice's environment) and tries every way to
    change it: each fails inside, the files are unchanged outside, and Alice's tool still works."""
    alice_path = Path(rt.requirements.location(rt.ports.repository.get(alice_tool).definition) or "")
    before = tree_digest(alice_path.parent)
    tamper = rt.register_tool("mallory", tool(PARSE_DATE, name="tamper", code=TAMPER))
    assert tamper.tool.definition.lock == rt.ports.repository.get(alice_tool).definition.lock
    result = rt.execute_tool("mallory", tamper.tool_id, {})
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert result.output["site"] == "/opt/toolrt/site"
    assert set(result.output["outcomes"].values()) <= {"OSError", "PermissionError"}, result.output
    assert tree_digest(alice_path.parent) == before
    again = rt.execute_tool("alice", alice_tool, {"text": "March 4 2024 5:06pm"})
    assert again.output == "2024-03-04T17:06:00"


# A package that, once imported by a zygote, records every byte the zygote reads from the host (the
# calls' code and params) where the next call's child would find it. A compromised package on the
# index could do this; the zygote that imported it must then serve no other agent.
EAVESDROPPER = """
import os

SEEN = []
_read, _readv = os.read, os.readv


def _recording_read(fd, n):
    data = _read(fd, n)
    SEEN.append(bytes(data))
    return data


def _recording_readv(fd, buffers):
    n = _readv(fd, buffers)
    SEEN.append(b"".join(bytes(b) for b in buffers)[:n])
    return n


os.read, os.readv = _recording_read, _recording_readv
"""

LISTEN = """
def handler(secret):
    import eavesdropper
    return b"".join(eavesdropper.SEEN).decode("latin-1")
"""


def test_a_package_in_a_zygote_never_hears_another_agents_calls() -> None:
    """A preloaded package that records what its zygote relays hears its own agent's calls only: the
    zygotes of an environment are per agent, even when the sandbox's workers are shared."""
    with private_environments() as root, SubprocessSandbox(isolation="strict", workers=1) as sandbox:
        site = root / "site"
        site.mkdir(mode=0o755)
        (site / "eavesdropper.py").write_text(EAVESDROPPER)
        (site / "eavesdropper.py").chmod(0o444)
        (root / "preload.txt").write_text("eavesdropper\n")

        def call(agent: str, secret: str) -> str:
            request = SandboxRequest(
                f"call-{agent}",
                Language.PYTHON,
                LISTEN,
                "handler",
                {"secret": secret},
                10.0,
                128,
                1 << 20,
                tenant=agent,
                environment=str(site),
            )
            result = sandbox.run(request)
            assert result.status is ExecutionStatus.SUCCEEDED, result.error
            return str(result.output)

        call("alice", "alice-secret-1")  # a cold zygote: it imports the package once this call is done
        assert "alice-secret-2" in call("alice", "alice-secret-2")  # the package hears its own agent
        call("mallory", "mallory-1")
        heard_by_mallory = call("mallory", "mallory-2")
        assert "mallory-2" in heard_by_mallory  # it is loaded in Mallory's zygote too...
        assert "alice-secret" not in heard_by_mallory  # ...which never relayed Alice's calls


# A package that notes, as it is imported, which cgroups the importing process is in (the memory
# and pids controllers bound a worker: outside them, its allocations and processes count against
# the runtime's own budget, every agent's).
CGROUP_SPY = """
def groups():
    with open("/proc/self/cgroup") as f:
        return sorted(line for line in f.read().splitlines() if ":memory:" in line or ":pids:" in line)


AT_IMPORT = groups()
"""

CGROUPS_SEEN = """
def handler():
    import cgroupspy
    return {"at_import": cgroupspy.AT_IMPORT, "in_call": cgroupspy.groups()}
"""


def test_a_package_is_imported_only_once_its_zygote_is_confined() -> None:
    """A preloaded package's import-time code runs inside the worker's cgroup (its memory and pids
    limits), never in the runtime's own before the zygote is moved: there, a package could allocate
    or fork against every agent's budget."""
    from toolrt.adapters.local.cgroups import detect as detect_cgroups

    if detect_cgroups()[0] is None:
        pytest.skip("needs writable cgroups (the sandbox's resource limits)")
    with private_environments() as root, SubprocessSandbox(isolation="strict", workers=1) as sandbox:
        site = root / "site"
        site.mkdir(mode=0o755)
        (site / "cgroupspy.py").write_text(CGROUP_SPY)
        (site / "cgroupspy.py").chmod(0o444)
        (root / "preload.txt").write_text("cgroupspy\n")
        for agent in ("alice", "mallory", "bob"):  # each a zygote of its own, each started afresh
            request = SandboxRequest(
                f"cgroups-{agent}", Language.PYTHON, CGROUPS_SEEN, "handler", {}, 10.0, 128, 1 << 20,
                tenant=agent, environment=str(site),
            )  # fmt: skip
            result = sandbox.run(request)
            assert result.status is ExecutionStatus.SUCCEEDED, result.error
            seen = result.output
            assert seen["at_import"] == seen["in_call"], seen  # where the call runs: the worker's cgroup


# Whether the environment's submodules were loaded before the tool's own imports ran: what its
# zygote had imported while idle.
ALREADY = """
import sys
FOUND = {name: name in sys.modules for name in ("dateutil.relativedelta", "dateutil.tz")}
from dateutil import {module}


def handler() -> dict:
    return FOUND
"""


def test_an_environment_zygote_learns_its_own_agents_imports_only(rt: ToolRuntime) -> None:
    """A call's tool imports a submodule of its packages: its zygote imports it while idle, so the
    same agent's next calls find it loaded (a warm call no longer pays ``from dateutil import
    parser``). Mallory's calls, with the same requirements, teach her own zygote only: Olivia's never
    finds what Mallory's tools imported."""
    olivia = rt.register_tool(
        "olivia", tool(PARSE_DATE, name="olivia_dates", code=ALREADY.replace("{module}", "relativedelta"))
    ).tool_id
    mallory = rt.register_tool(
        "mallory", tool(PARSE_DATE, name="mallory_dates", code=ALREADY.replace("{module}", "tz"))
    )
    for _ in range(5):
        assert rt.execute_tool("mallory", mallory.tool_id, {}).status is ExecutionStatus.SUCCEEDED
    first = rt.execute_tool("olivia", olivia, {})
    assert first.status is ExecutionStatus.SUCCEEDED, first.error
    assert first.output == {"dateutil.relativedelta": False, "dateutil.tz": False}
    deadline = time.monotonic() + 60
    while True:
        later = rt.execute_tool("olivia", olivia, {})
        assert later.status is ExecutionStatus.SUCCEEDED, later.error
        if later.output["dateutil.relativedelta"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert later.output == {"dateutil.relativedelta": True, "dateutil.tz": False}
    # And Mallory's own zygote learned hers.
    assert rt.execute_tool("mallory", mallory.tool_id, {}).output["dateutil.tz"] is True


def test_another_agents_public_tool_teaches_the_callers_zygote_nothing(rt: ToolRuntime) -> None:
    """Priya calls Mallory's public tool, which names a submodule only in dead code: Priya's zygote
    for those requirements (it relays her own tools' calls too) must not import it. Nor does
    Mallory's zygote learn what Priya's public tool names when Mallory calls it."""
    names = "{name: name in sys.modules for name in ('dateutil.easter', 'dateutil.rrule')}"
    probe = f"import sys\nimport dateutil\n\n\ndef handler() -> dict:\n    return {names}\n"
    baited = probe + "\n\nif False:\n    from dateutil import {module}\n"
    priya_own = rt.register_tool("priya", tool(PARSE_DATE, name="priya_probe", code=probe)).tool_id
    priya_public = rt.register_tool(
        "priya", tool(PARSE_DATE, name="priya_public", code=baited.replace("{module}", "rrule")), "public"
    ).tool_id
    mallory_own = rt.register_tool("mallory", tool(PARSE_DATE, name="mallory_probe", code=probe)).tool_id
    mallory_public = rt.register_tool(
        "mallory", tool(PARSE_DATE, name="mallory_bait", code=baited.replace("{module}", "easter")), "public"
    ).tool_id
    untouched = {"dateutil.easter": False, "dateutil.rrule": False}
    for _ in range(10):
        assert rt.execute_tool("priya", mallory_public, {}).status is ExecutionStatus.SUCCEEDED
        assert rt.execute_tool("mallory", priya_public, {}).status is ExecutionStatus.SUCCEEDED
        time.sleep(0.05)  # idle time in which a zygote would have imported what it learned
    assert rt.execute_tool("priya", priya_own, {}).output == untouched
    assert rt.execute_tool("mallory", mallory_own, {}).output == untouched


def test_a_learned_import_that_never_ends_is_stopped_within_the_calls_cpu_allowance() -> None:
    """Mallory's tool names, in dead code, a submodule of her package whose import never ends. Her
    zygote tries it while idle after the call: the kernel stops the zygote once the import has used
    the CPU the call itself was allowed (a 1 s timeout allows 3 s), rather than letting it take a
    core from every agent for good; her next call goes to a fresh zygote."""
    with private_environments() as root, SubprocessSandbox(isolation="strict", workers=1) as sandbox:
        site = root / "site"
        package = site / "spinner"
        package.mkdir(mode=0o755, parents=True)
        site.chmod(0o755)
        (package / "__init__.py").write_text("")
        (package / "spin.py").write_text("while True:\n    pass\n")
        (root / "preload.txt").write_text("spinner\n")
        code = "import spinner\n\n\ndef handler():\n    return 'done'\n\n\nif False:\n    import spinner.spin\n"

        def call(n: int) -> SandboxRequest:
            return SandboxRequest(
                f"spin-{n}", Language.PYTHON, code, "handler", {}, 1.0, 128, 1 << 20,
                tenant="mallory", owner="mallory", environment=str(site),
            )  # fmt: skip

        first = sandbox.run(call(1))
        assert first.status is ExecutionStatus.SUCCEEDED, first.error
        deadline = time.monotonic() + 120
        (zygote,) = [worker for key, worker in sandbox._zygotes.idle() if key.environment is not None]  # type: ignore[attr-defined]
        while zygote.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not zygote.alive()  # stopped, not left spinning
        second = sandbox.run(call(2))
        assert second.status is ExecutionStatus.SUCCEEDED, second.error


# A submodule of a package every zygote of the environment preloads: importing it renices, lowers
# the I/O priority of and stops the importing process's whole process group.
GROUP_ATTACK = """
import ctypes, os, signal
os.setpriority(os.PRIO_PGRP, 0, 19)
ctypes.CDLL(None).syscall(251, 2, 0, 3 << 13)  # ioprio_set(IOPRIO_WHO_PGRP, 0, IOPRIO_CLASS_IDLE)
os.kill(0, signal.SIGSTOP)
"""

NICE = """
import ctypes, os
import grouped

def handler():
    return {"nice": os.getpriority(os.PRIO_PROCESS, 0), "ioprio": ctypes.CDLL(None).syscall(252, 1, 0)}
"""

TEACH = "import grouped\n\n\ndef handler():\n    return 1\n\n\nif False:\n    import grouped.attack\n"


def test_a_zygote_cannot_reach_other_zygotes_through_its_process_group() -> None:
    """Mallory's tool names, in dead code, a submodule of a shared package that renices, idles the
    I/O of and stops its process group: her zygote imports it while idle (it learns her imports).
    Victor's zygote, forked from the same template, is in a process group of its own: his calls
    keep nice 0 and their I/O priority, and are not stopped."""
    with private_environments() as root, SubprocessSandbox(isolation="strict", workers=1) as sandbox:
        site = root / "site"
        package = site / "grouped"
        package.mkdir(mode=0o755, parents=True)
        site.chmod(0o755)
        (package / "__init__.py").write_text("")
        (package / "attack.py").write_text(GROUP_ATTACK)
        (root / "preload.txt").write_text("grouped\n")

        def call(agent: str, code: str) -> Any:
            request = SandboxRequest(
                f"group-{agent}", Language.PYTHON, code, "handler", {}, 5.0, 128, 1 << 20,
                tenant=agent, owner=agent, environment=str(site),
            )  # fmt: skip
            return sandbox.run(request)

        pristine = call("victor", NICE)
        assert pristine.status is ExecutionStatus.SUCCEEDED, pristine.error
        for _ in range(3):
            assert call("mallory", TEACH).status is ExecutionStatus.SUCCEEDED
            time.sleep(0.3)  # her zygote imports grouped.attack while idle
        after = call("victor", NICE)
        assert after.status is ExecutionStatus.SUCCEEDED, after.error
        assert after.output == pristine.output
