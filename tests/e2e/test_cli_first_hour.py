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


SLEEPY = '''import time


def handler(seconds: float) -> float:
    """Sleep for a while.

    Args:
        seconds: how long.
    """
    time.sleep(seconds)
    return seconds
'''


def test_invoke_takes_this_calls_timeout_and_memory(tmp_path: Path) -> None:
    """`toolrt invoke --timeout 1 --memory 64` runs the call under those limits: a tool sleeping
    longer ends timed_out; a limit above the configured maximum is refused and nothing runs."""
    tool = tmp_path / "sleepy.py"
    tool.write_text(SLEEPY)
    data = tmp_path / "data"
    assert toolrt(data, "register", str(tool)).returncode == 0
    slow = toolrt(data, "--json", "invoke", "sleepy", "seconds=30", "--timeout", "1", "--memory", "64")
    assert slow.returncode == 1 and json.loads(slow.stdout)["status"] == "timed_out"
    quick = toolrt(data, "--json", "invoke", "sleepy", "seconds=0", "--timeout", "5")
    assert quick.returncode == 0 and json.loads(quick.stdout)["output"] == 0
    over = toolrt(data, "invoke", "sleepy", "seconds=0", "--timeout", "100000")
    assert over.returncode == 2 and "LimitExceededError" in over.stderr


def test_not_found_names_the_acting_agent(tmp_path: Path) -> None:
    """A tool another agent cannot see reads 'not found' naming the agent the command acted as (the
    CLI's default is 'cli'): the same words as for a tool that does not exist."""
    tool = tmp_path / "sleepy.py"
    tool.write_text(SLEEPY)
    assert toolrt(tmp_path / "data", "--agent", "alice", "register", str(tool)).returncode == 0
    hidden = toolrt(tmp_path / "data", "invoke", "sleepy", "seconds=0")
    missing = toolrt(tmp_path / "data", "invoke", "nothing_here", "seconds=0")
    assert hidden.returncode == missing.returncode == 2
    assert "agent 'cli'" in hidden.stderr
    assert hidden.stderr.replace("sleepy", "X") == missing.stderr.replace("nothing_here", "X")


def test_a_tool_file_shows_every_problem_and_a_syntax_error_its_line_and_hint(tmp_path: Path) -> None:
    """Without -v, every schema error of a tool.yaml is printed on its own line with its JSON path,
    and a Python file with a syntax error quotes the line and gives the validator's hint."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: 1bad\nlanguage: cobol\ncode: x\nlimits: {timeout_s: -1}\nfoo: 2\n")
    done = toolrt(tmp_path / "data", "register", str(bad))
    assert done.returncode == 2
    for where in ("at $: 'description'", "'foo' was unexpected", "at $.language", "at $.limits.timeout_s", "at $.name"):
        assert where in done.stderr
    broken = tmp_path / "broken.py"
    broken.write_text('def handler(a: int) -> int:\n    """Echo."""\n    return a +\n')
    syntax = toolrt(tmp_path / "data", "register", str(broken))
    assert syntax.returncode == 2
    assert "line 3" in syntax.stderr and "'return a +'" in syntax.stderr and "hint: fix the syntax" in syntax.stderr


def test_help_names_values_instead_of_type_placeholders(tmp_path: Path) -> None:
    """No help page shows typer's <bool>, <int> or <str> placeholders; values read as names."""
    pages = [("--help",), ("invoke", "--help"), ("register", "--help"), ("teams", "add", "--help"), ("gc", "--help")]
    for page in pages:
        text = toolrt(tmp_path, *page).stdout
        assert text and not any(p in text for p in ("<bool>", "<int>", "<str>", "<float>")), (page, text)
    assert "SECONDS" in toolrt(tmp_path, "invoke", "--help").stdout


def test_the_dashboard_answers_at_the_root(tmp_path: Path) -> None:
    """`toolrt dashboard` sends a browser opening http://127.0.0.1:PORT/ to the page, not to a 404."""
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [EXE, "--data-dir", str(tmp_path / "data"), "dashboard", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "TOOLRT_PROFILE": "local"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                    assert page.status == 200 and page.url.endswith("/dashboard")
                    assert b"<html" in page.read().lower()
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_an_older_node_names_the_js_extra_and_runs_no_javascript(tmp_path: Path) -> None:
    """With only an older system Node.js (here a stand-in answering --version with v18), a TypeScript
    or JavaScript tool is refused at registration naming pip install 'toolrt[js]', not with a syntax
    hint, and doctor says the same: nothing runs JavaScript on a Node toolrt does not support."""
    old = tmp_path / "node"
    old.write_text('#!/bin/sh\n[ "$1" = --version ] && { echo v18.19.0; exit 0; }\necho "not Node 24" >&2\nexit 1\n')
    old.chmod(0o755)
    examples = Path(__file__).resolve().parents[2] / "examples"
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "TOOLRT_PROFILE": "local", "TOOLRT_NODE": str(old)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [EXE, "--data-dir", str(tmp_path / "data"), *args], capture_output=True, text=True, timeout=120, env=env
        )

    for tool_file in ("typescript/temperature.json", "javascript/slugify.yaml"):
        refused = run("register", str(examples / tool_file))
        assert refused.returncode == 2, refused.stderr
        assert "pip install 'toolrt[js]'" in refused.stderr and "older than 24" in refused.stderr
        assert "fix the syntax" not in refused.stderr
    doctor = run("doctor")
    assert "older than 24" in doctor.stdout + doctor.stderr
