"""The CLI as a new user scripts it: --json anywhere, flags shown as flags, ids never cut, --description."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXE = str(Path(sys.executable).parent / "toolrt")


def toolrt(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "80", "TOOLRT_PROFILE": "local"},
    )


def test_json_is_accepted_after_the_subcommand(tmp_path: Path) -> None:
    """`toolrt list --json` and `toolrt --json list` print the same JSON."""
    after = toolrt(tmp_path, "list", "--json")
    before = toolrt(tmp_path, "--json", "list")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout) == []


def test_flags_render_as_flags_in_help(tmp_path: Path) -> None:
    """--json and --mine show no '<bool>' placeholder in help."""
    assert "<bool>" not in "\n".join(
        line for line in toolrt(tmp_path, "--help").stdout.splitlines() if "--json" in line
    )
    assert "<bool>" not in "\n".join(
        line for line in toolrt(tmp_path, "list", "--help").stdout.splitlines() if "--mine" in line
    )


def test_description_for_a_python_file_without_a_docstring(tmp_path: Path) -> None:
    """A .py without a docstring is refused with a hint naming --description, and accepted with it."""
    tool = tmp_path / "echo.py"
    tool.write_text("def handler(a: int) -> int:\n    return a\n")
    refused = toolrt(tmp_path / "data", "register", str(tool))
    assert refused.returncode == 2 and "--description" in refused.stderr
    done = toolrt(tmp_path / "data", "--json", "register", str(tool), "--description", "Echo a number.")
    assert done.returncode == 0, done.stderr
    shown = toolrt(tmp_path / "data", "--json", "show", "echo")
    assert json.loads(shown.stdout)["description"] == "Echo a number."


def test_tool_ids_are_never_cut_in_the_table(tmp_path: Path) -> None:
    """The list table shows whole tool ids even in 80 columns, so they can be copied."""
    tool = tmp_path / "echo.py"
    tool.write_text(
        'def handler(a: int) -> int:\n    """Echo a number back to the caller, unchanged, as it came."""\n    return a\n'
    )
    reg = toolrt(tmp_path / "data", "--json", "register", str(tool))
    tool_id = json.loads(reg.stdout)["tool_id"]
    assert tool_id in toolrt(tmp_path / "data", "list").stdout


def test_register_a_folder_then_search_and_reuse_from_another_agent(tmp_path: Path) -> None:
    """`toolrt register DIR` registers the tool files in it; another agent finds the public ones with
    `toolrt search`, is told of a duplicate, reuses it on request, and never sees a private tool."""
    data = tmp_path / "data"
    examples = Path(__file__).resolve().parents[2] / "examples"
    done = toolrt(data, "--agent", "alice", "--json", "register", "--visibility", "public", str(examples / "python"))
    assert done.returncode == 0, done.stderr
    assert [r["name"] for r in json.loads(done.stdout)] == ["add", "word_stats", "word_stats_v2"]
    secret = tmp_path / "secret_words.py"
    secret.write_text('def handler(text: str) -> int:\n    """Count secret words in a text."""\n    return 0\n')
    assert toolrt(data, "--agent", "victim", "register", str(secret)).returncode == 0
    found = toolrt(data, "--agent", "bob", "--json", "search", "count the words in a text")
    assert found.returncode == 0, found.stderr
    names = [r["name"] for r in json.loads(found.stdout)]
    assert names and names[0].startswith("word_stats") and "secret_words" not in names
    reused = toolrt(
        data, "--agent", "bob", "--json", "register", "--on-duplicate", "reuse", str(examples / "python" / "add.py")
    )
    assert reused.returncode == 0, reused.stderr
    answer = json.loads(reused.stdout)
    assert answer["reused"] and answer["similar"][0]["kind"] == "exact" and answer["similar"][0]["owner"] == "alice"
    refused = toolrt(data, "--agent", "bob", "register", "--on-duplicate", "error", str(examples / "python" / "add.py"))
    assert refused.returncode == 2 and "duplicates visible tools" in refused.stderr


def test_templates_are_listed_and_filled_in_from_the_command_line(tmp_path: Path) -> None:
    listed = toolrt(tmp_path, "--json", "templates")
    assert listed.returncode == 0, listed.stderr
    assert "unit_converter" in {t["name"] for t in json.loads(listed.stdout)}
    shown = toolrt(tmp_path, "templates", "--show", "unit_converter")
    assert shown.returncode == 0 and "factor" in shown.stdout
    made = toolrt(
        tmp_path, "--agent", "alice", "--json", "from-template", "json_field", "tool_name=order_total", "what=the total"
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["name"] == "order_total"
    bad = toolrt(tmp_path, "--agent", "alice", "from-template", "unit_converter", "factor=1;import os")
    assert bad.returncode == 2 and "does not match" in bad.stderr
    missing = toolrt(tmp_path, "templates", "--show", "nope")
    assert missing.returncode == 2
