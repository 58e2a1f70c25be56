"""What a zygote holds when it forks a call: nothing that makes two calls alike, nothing shared with another zygote.

An environment zygote imports its packages while idle (third-party code), and every call's child is
a copy of it. Two families of things must hold, seen from the calls' results:

- **Fork detection works.** Libraries that keep random state detect a fork by a change of pid
  (OpenSSL's DRBG, Python's ``tempfile`` names) or by fork hooks (the ``random`` module): a call's
  child must not have the pid of the process it was forked from, or every call of a pool replays
  the same "random" bytes (``requests`` and ``aiohttp`` create an SSL context, and with it
  OpenSSL's generator, at import).
- **Zygotes share no writable place.** Zygotes forked from one template (one per environment, for
  every agent that uses it) must not reach the template's own files or each other's: a package
  writing anywhere it can (a relative path first) in one agent's zygote leaves nothing for another's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.requirements_world import local_runtime, private_environments
from tests.security.test_hostile_wheel import write_wheel
from toolrt.application import ToolRuntime
from toolrt.domain import ExecutionStatus

pytestmark = [pytest.mark.bwrap, pytest.mark.slow]

# Imported by every zygote of the environment while idle (third-party code, before any call). It does
# what common packages do at import: make an SSL context (requests 2.32+, aiohttp: OpenSSL's generator
# starts), start a tempfile name sequence, use the random module; and it writes a file in every
# folder it can write to (its working folder first), then looks for files other zygotes left.
PROBE_PACKAGE = """
import os, random, ssl, tempfile

CONTEXT = ssl.create_default_context()
NAMES = tempfile._get_candidate_names()
FIRST_NAME = next(NAMES)
FIRST_RANDOM = random.random()
MARK = "left-by-a-zygote-"
OWN = MARK + os.urandom(8).hex()


def _folders():
    yield "."
    for folder, dirs, _ in os.walk("/"):
        if folder in ("/proc", "/sys"):
            dirs[:] = []
            continue
        yield folder


# Written everywhere first, looked for after: of two zygotes that share a folder, importing at the
# same time or not, the one that looks last finds the other's file.
WROTE = []
for folder in list(_folders()):
    try:
        with open(os.path.join(folder, OWN), "x") as f:
            f.write("here")
        WROTE.append(folder)
    except OSError:
        pass
SEEN = []
for folder in _folders():
    try:
        SEEN += [os.path.join(folder, name) for name in os.listdir(folder) if name.startswith(MARK) and name != OWN]
    except OSError:
        pass
"""

TOOL = """
import random, ssl, tempfile

import zygote_probe


def handler() -> dict:
    return {
        "ssl": ssl.RAND_bytes(16).hex(),
        "tempfile": tempfile.mktemp(),
        "names": next(zygote_probe.NAMES),
        "random": random.getrandbits(64),
        "seen": zygote_probe.SEEN,
        "wrote": zygote_probe.WROTE,
    }
"""

# What each call draws: no two calls, of one pool or of two agents, may draw the same.
SOURCES = ("ssl", "tempfile", "names", "random")


@pytest.fixture
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolRuntime]:
    folder = tmp_path_factory.mktemp("inherited-state-wheels")
    write_wheel(folder, "toolrt-zygote-probe", {"zygote_probe/__init__.py": PROBE_PACKAGE}, "zygote_probe\n")
    patch = pytest.MonkeyPatch()
    patch.setenv("PIP_FIND_LINKS", str(folder))
    patch.setenv("PIP_NO_INDEX", "1")
    try:
        with private_environments() as root:
            runtime = local_runtime(tmp_path_factory.mktemp("inherited-state-store"), root, security_checks=False)
            try:
                yield runtime
            finally:
                runtime.close()
    finally:
        patch.undo()


def _tool(rt: ToolRuntime, agent: str, name: str) -> str:
    definition = {
        "name": name,
        "description": "Random bytes and temporary names.",
        "language": "python",
        "code": TOOL,
        "requirements": ["toolrt-zygote-probe"],
    }
    return rt.register_tool(agent, definition).tool_id


def test_no_two_calls_draw_the_same_random_values(rt: ToolRuntime) -> None:
    """Victor's calls (one pool, one zygote: each call may serve another end user) and Mallory's each
    draw random bytes, temporary names and random numbers of their own from every generator the
    zygote's package started before forking them (OpenSSL's, tempfile's, the random module's)."""
    victor, mallory = _tool(rt, "victor", "random_probe"), _tool(rt, "mallory", "random_probe")
    outputs = []
    for agent, tool_id in (("victor", victor), ("mallory", mallory)) * 3:
        result = rt.execute_tool(agent, tool_id, {})
        assert result.status is ExecutionStatus.SUCCEEDED, result.error
        outputs.append(result.output)
    for source in SOURCES:
        drawn = [o[source] for o in outputs]
        assert len(set(drawn)) == len(drawn), (source, drawn)


def test_a_plain_zygote_starts_no_generator_that_tells_a_fork_by_its_pid(rt: ToolRuntime) -> None:
    """A zygote without an environment is pid 1, like its calls' children and its template: nothing
    they import before a call (the template's warm-up) may start OpenSSL's generator or tempfile's
    names, or every call would draw the same values (the zygotes that import packages are pid 2)."""
    code = "import sys\n\ndef handler() -> list:\n    return [m for m in ('_ssl', 'tempfile') if m in sys.modules]\n"
    definition = {"name": "plain_probe", "description": "Modules loaded.", "language": "python", "code": code}
    for agent in ("victor", "mallory"):
        tool_id = rt.register_tool(agent, definition).tool_id
        result = rt.execute_tool(agent, tool_id, {})
        assert result.status is ExecutionStatus.SUCCEEDED, result.error
        assert result.output == [], result.output


def test_a_package_in_one_agents_zygote_leaves_nothing_for_another_agents(rt: ToolRuntime) -> None:
    """The package writes a file in every folder it can (its working folder first) whenever a zygote
    imports it, having looked for such files first. Mallory's and Victor's zygotes (and the pristine
    ones made ahead) all import it; none finds a file another one wrote, wherever it could write."""
    mallory, victor = _tool(rt, "mallory", "folder_probe"), _tool(rt, "victor", "folder_probe")
    for agent, tool_id in (("mallory", mallory), ("victor", victor)) * 2:
        result = rt.execute_tool(agent, tool_id, {})
        assert result.status is ExecutionStatus.SUCCEEDED, result.error
        assert result.output["wrote"], result.output  # it could write somewhere: its own /tmp at least
        assert result.output["seen"] == [], (agent, result.output)
