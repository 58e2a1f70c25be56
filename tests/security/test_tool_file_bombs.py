"""Tool files are bounded: a file of nested YAML aliases (a "billion laughs"), a huge file and a
deeply nested one are refused with a clear error before anything grows, and nothing is stored.

A hostile author hands the victim a folder to register (``toolrt register DIR``); the command is
run as the victim would, in a subprocess, and its exit code, its one-line error and the store
are what is checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolrt.adapters.cli.tool_files import MAX_TOOL_FILE_BYTES, load_tool_file
from toolrt.domain import ValidationError

LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{n}: &{n} [{', '.join(['*' + p] * 9)}]" for p, n in zip("abcdefghi", "bcdefghij", strict=True)),
        "name: bomb",
        "description: Expands to billions of strings once walked.",
        "language: python",
        'code: "def handler():\\n    return 1\\n"',
        "input_schema: {type: object, properties: {x: *j}}",
    ]
)


def _register(tmp_path: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "toolrt"
    env = {**os.environ, "TOOLRT_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [str(script), "--profile", "memory", "--agent", "victim", "register", str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_a_billion_laughs_tool_yaml_is_refused_at_once(tmp_path: Path) -> None:
    """The 769-byte kind of file that grew `toolrt register DIR` past 1 GB: refused, naming the
    first alias, exit 2, nothing registered."""
    folder = tmp_path / "gift"
    folder.mkdir()
    (folder / "tool.yaml").write_text(LAUGHS)
    assert len(LAUGHS) < 1024
    done = _register(tmp_path, folder)
    assert done.returncode == 2, done.stderr
    assert "aliases (*name) are not allowed in tool files" in done.stderr
    assert "line 2, column" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        (
            "tool.yaml",
            "name: x\ncode: &c 'def handler(): pass'\ndescription: *c\n",
            r"aliases \(\*name\) are not allowed",
        ),
        ("tool.yaml", "x: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("tool.json", '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ],
)
def test_aliases_and_deep_nesting_are_clear_errors(tmp_path: Path, name: str, text: str, words: str) -> None:
    """Even one alias is refused; nesting past the interpreter's depth is an error, not a crash."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValidationError, match=words):
        load_tool_file(path)


def test_a_tool_file_past_the_size_limit_is_not_read(tmp_path: Path) -> None:
    """A file larger than MAX_TOOL_FILE_BYTES is refused from its size alone, naming the limit."""
    path = tmp_path / "tool.yaml"
    with path.open("w") as f:
        f.write("name: big\ndescription: |\n")
        f.write(("  " + "x" * 1022 + "\n") * (MAX_TOOL_FILE_BYTES // 1024 + 1))
    with pytest.raises(ValidationError, match=f"at most {MAX_TOOL_FILE_BYTES} bytes") as info:
        load_tool_file(path)
    assert info.value.report.findings[0].rule_id == "file.size"
