"""Tool files are bounded: a file of nested YAML aliases (a "billion laughs"), a huge file and a
deeply nested one are refused with a clear error before anything grows, and nothing is stored.

A hostile author hands the victim a folder to register (``toolrt register DIR``); the command is
run as the victim would, in a subprocess, and its exit code, its one-line error and the store
are what is checked.
"""

from __future__ import annotations

import json
import os
import resource
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


#: The address space the victim's `toolrt register` may use: plenty for the CLI, far less than
#: reading any file past the size limit whole would take.
_ADDRESS_SPACE = 1536 * 1024 * 1024


def _bounded_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_ADDRESS_SPACE, _ADDRESS_SPACE))


def _register(tmp_path: Path, folder: Path, *more: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "toolrt"
    env = {**os.environ, "TOOLRT_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [str(script), "--profile", "memory", "--agent", "victim", *more, "register", str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        preexec_fn=_bounded_memory,
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
    assert "line 2, col 8" in done.stderr and "Traceback" not in done.stderr


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


def test_a_folder_of_hostile_tool_files_is_refused_file_by_file(tmp_path: Path) -> None:
    """`toolrt register DIR` reads no file of the folder past the limits, not even to find which
    code files a tool.yaml names: a bomb, a deeply nested file, a 3 GiB tool.yaml and a tool.yaml
    naming a 3 GiB code file each get one line naming the file, the good tool beside them is
    registered, and the command exits 2 within a memory limit far below those files' size."""
    folder = tmp_path / "gift"
    folder.mkdir()
    (folder / "bomb.yaml").write_text(LAUGHS)
    (folder / "deep.yaml").write_text("x: " + "[" * 5000 + "]" * 5000 + "\n")
    with (folder / "huge.yaml").open("wb") as f:
        f.truncate(3 * 1024**3)  # sparse: costs no disk, but reading it whole would take 3 GiB
    (folder / "code.yaml").write_text(
        "name: code\ndescription: Names a code file too big to read.\nlanguage: python\n"
        "code_file: code.py\ninput_schema: {type: object}\n"
    )
    with (folder / "code.py").open("wb") as f:
        f.truncate(3 * 1024**3)
    (folder / "add.py").write_text(
        'def handler(a: int, b: int) -> int:\n    """Add two numbers."""\n    return a + b\n'
    )
    done = _register(tmp_path, folder, "--json")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    results = {Path(r["file"]).name: r for r in json.loads(done.stdout)}
    assert sorted(results) == ["add.py", "bomb.yaml", "code.yaml", "deep.yaml", "huge.yaml"]
    assert results["add.py"]["ok"]
    expected = {
        "bomb.yaml": "aliases (*name) are not allowed in tool files",
        "deep.yaml": "nested too deeply",
        "huge.yaml": f"a tool file may be at most {MAX_TOOL_FILE_BYTES} bytes",
        "code.yaml": f"may be at most {MAX_TOOL_FILE_BYTES} bytes",
    }
    for name, words in expected.items():
        message = results[name]["error"]["message"]
        assert results[name]["exit_code"] == 2 and words in message, (name, message)
        assert message.startswith(str(folder / name)) and "\n" not in message, message
    shown = _register(tmp_path / "again", folder)
    assert shown.returncode == 2 and "Traceback" not in shown.stderr, shown.stderr
    for name, words in expected.items():
        (line,) = [line for line in shown.stderr.splitlines() if line.startswith("error") and name in line]
        assert line.count(str(folder / name)) == 1 and line.count(words) == 1, line
