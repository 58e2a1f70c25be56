"""The toolrt CLI: commands, --json output, exit codes, on the memory adapters with the fake sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner, Result

from tests.e2e.harness import EXAMPLES, SharedRuntimes
from toolrt.adapters.cli.lookup import parse_params
from toolrt.adapters.cli.main import build_app
from toolrt.domain import ValidationError


@pytest.fixture
def runtimes() -> SharedRuntimes:
    return SharedRuntimes()


def cli(runtimes: SharedRuntimes, *args: str) -> Result:
    with structlog.testing.capture_logs():
        return CliRunner().invoke(build_app(runtimes), list(args))


def cli_json(runtimes: SharedRuntimes, *args: str) -> Any:
    result = cli(runtimes, "--json", *args)
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_register_python_file_names_and_describes_the_tool(runtimes: SharedRuntimes) -> None:
    """A Python file registers under its stem, described by its entrypoint's docstring summary."""
    reg = cli_json(runtimes, "register", str(EXAMPLES / "python" / "add.py"))
    assert reg["ok"] and reg["name"] == "add" and reg["version"] == 1 and reg["cache_hit"] is False
    shown = cli_json(runtimes, "show", "add")
    assert shown["description"] == "Add two numbers and return their sum."
    assert shown["definition"]["entrypoint"] == "handler" and shown["definition"]["language"] == "python"


def test_register_several_files_then_the_same_code_again_is_a_cache_hit(runtimes: SharedRuntimes) -> None:
    """Several files register at once; the same code as a public tool, registered by another agent,
    reuses the stored artifact (a private tool's code would be validated again: it must not show)."""
    files = [
        str(EXAMPLES / "python" / "add.py"),
        str(EXAMPLES / "javascript" / "slugify.yaml"),
        str(EXAMPLES / "typescript" / "temperature.json"),
    ]
    results = cli_json(runtimes, "register", *files)
    assert [r["name"] for r in results] == ["add", "slugify", "temperature"]
    assert all(r["ok"] for r in results)
    again = cli_json(runtimes, "--agent", "someone-else", "register", files[1])  # slugify is public
    assert again["cache_hit"] is True
    unseen = cli_json(runtimes, "--agent", "someone-else", "register", files[0])  # add is private
    assert unseen["cache_hit"] is False
    listed = cli_json(runtimes, "list")
    assert {t["name"]: t["visibility"] for t in listed} == {
        "add": "private",
        "slugify": "public",
        "temperature": "public",
    }


def test_invoke_with_key_value_and_json_params(runtimes: SharedRuntimes) -> None:
    """invoke passes key=value pairs (JSON values parsed) or one JSON object to the tool."""
    cli_json(runtimes, "register", str(EXAMPLES / "python" / "add.py"))
    run = cli_json(runtimes, "invoke", "add", "a=2", "b=3.5")
    assert run["status"] == "succeeded" and run["output"] == {"echo": {"a": 2, "b": 3.5}}
    run = cli_json(runtimes, "invoke", "add", '{"a": 1, "b": 2}')
    assert run["output"] == {"echo": {"a": 1, "b": 2}}
    plain = cli(runtimes, "invoke", "add", "a=1")
    assert plain.exit_code == 0 and json.loads(plain.stdout) == {"echo": {"a": 1}}
    listed = cli_json(runtimes, "list")  # listings show usage, so agents can prefer tools that work
    assert [t["usage"] for t in listed] == [{"executions": 3, "distinct_callers": 1, "success_rate": 1.0}]
    assert "100%" in cli(runtimes, "list").stdout


def test_teams_are_managed_from_the_cli(runtimes: SharedRuntimes) -> None:
    """teams add/remove/list change membership; --visibility team:NAME needs it."""
    refused = cli(runtimes, "register", str(EXAMPLES / "python" / "add.py"), "--visibility", "team:red")
    assert refused.exit_code == 2 and "toolrt teams add red cli" in refused.stdout + refused.stderr
    assert cli_json(runtimes, "teams", "add", "red", "cli", "ann") == {
        "team": "red",
        "added": ["cli", "ann"],
        "members": ["ann", "cli"],
    }
    reg = cli_json(runtimes, "register", str(EXAMPLES / "python" / "add.py"), "--visibility", "team:red")
    assert reg["tool_id"] and not reg["cache_hit"]
    assert [t["visibility"] for t in cli_json(runtimes, "--agent", "ann", "list")] == ["team:red"]
    assert cli_json(runtimes, "teams", "remove", "red", "ann")["members"] == ["cli"]
    assert cli_json(runtimes, "--agent", "ann", "list") == []
    assert cli_json(runtimes, "teams", "list") == {"teams": {"red": ["cli"]}}
    bad = cli(runtimes, "register", str(EXAMPLES / "python" / "add.py"), "--visibility", "team:no way")
    assert bad.exit_code == 2


def test_update_versions_rollback_and_deregister(runtimes: SharedRuntimes) -> None:
    """An update creates version 2, rollback restores 1, deregister --purge removes the tool."""
    cli_json(runtimes, "register", str(EXAMPLES / "python" / "word_stats.py"))
    upd = cli_json(runtimes, "update", str(EXAMPLES / "python" / "word_stats_v2.py"), "--name", "word_stats")
    assert upd["version"] == 2 and upd["new_version"] and upd["new_code"]
    history = cli_json(runtimes, "versions", "word_stats")
    assert [(v["version"], v["current"]) for v in history["versions"]] == [(1, False), (2, True)]
    back = cli_json(runtimes, "rollback", "word_stats", "1")
    assert back["version"] == 1
    vis = cli_json(runtimes, "update", "--tool", "word_stats", "--visibility", "public")
    assert vis["visibility"] == "public" and vis["new_version"] is False
    gone = cli_json(runtimes, "deregister", "word_stats", "--purge")
    assert gone["purged"] is True and gone["problems"] == []
    assert cli_json(runtimes, "list") == []


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("invoke", "missing"), 2, "tool 'missing' not found"),
        (("invoke", "add", "not-a-pair"), 2, "is not key=value"),
        (("register", "nowhere.py"), 2, "tool file 'nowhere.py' not found"),
        (("rollback", "add", "9"), 2, "not found"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    runtimes: SharedRuntimes, args: tuple[str, ...], code: int, words: str
) -> None:
    """Mistakes in the input exit with 2 and one clear line on stderr."""
    cli_json(runtimes, "register", str(EXAMPLES / "python" / "add.py"))
    result = cli(runtimes, *args)
    assert result.exit_code == code
    assert words in result.stderr and result.stderr.strip().count("\n") == 0


def test_ownership_is_a_user_error(runtimes: SharedRuntimes) -> None:
    """Another agent may not update a public tool it does not own: exit code 2."""
    cli_json(runtimes, "register", str(EXAMPLES / "javascript" / "slugify.yaml"))
    result = cli(runtimes, "--agent", "mallory", "update", "--tool", "slugify", "--visibility", "private")
    assert result.exit_code == 2 and "may not update" in result.stderr


def test_validation_findings_with_verbose_and_in_json(runtimes: SharedRuntimes, tmp_path: Path) -> None:
    """A rejected tool exits 2 listing its error findings; -v lists every finding, --json carries them as data."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""Uses the forbidden word."""\n\ndef handler(x: int) -> int:\n    """Return x."""\n    return x  # forbidden\n'
    )
    quiet = cli(runtimes, "register", str(bad))
    assert quiet.exit_code == 2 and "[error] security.fake: line 1, col 1: uses the forbidden word" in quiet.stderr
    loud = cli(runtimes, "-v", "register", str(bad))
    assert "[error] security.fake: line 1, col 1: uses the forbidden word" in loud.stderr
    data = cli(runtimes, "--json", "register", str(bad))
    payload = json.loads(data.stdout)
    assert data.exit_code == 2 and payload["ok"] is False
    assert (
        payload["error"]["type"] == "ValidationError" and payload["error"]["findings"][0]["rule_id"] == "security.fake"
    )


def test_failed_execution_exits_1(runtimes: SharedRuntimes) -> None:
    """A tool that fails when it runs is a failure (exit 1), not a user error."""
    from toolrt.domain import ExecutionFailure, ExecutionStatus
    from toolrt.ports import SandboxResult

    cli_json(runtimes, "register", str(EXAMPLES / "python" / "add.py"))
    runtimes.sandbox.run = lambda request, cancel=None: SandboxResult(  # type: ignore[method-assign]
        ExecutionStatus.FAILED, error=ExecutionFailure("ZeroDivisionError", "division by zero")
    )  # type: ignore[method-assign]
    result = cli(runtimes, "invoke", "add", "a=1", "b=0")
    assert result.exit_code == 1 and "ZeroDivisionError: division by zero" in result.stderr


def test_global_options_reach_the_runtime_factory(runtimes: SharedRuntimes, tmp_path: Path) -> None:
    """--profile and --data-dir are what the CLI asks toolrt.connect for."""
    cli_json(runtimes, "--profile", "memory", "--data-dir", str(tmp_path), "list")
    assert runtimes.calls[-1] == ("memory", {"data_dir": tmp_path})


def test_demo_twice_reuses_the_first_runs_tools(runtimes: SharedRuntimes) -> None:
    """The demo registers, runs, shares and updates; a second run finds its tools instead of failing."""
    first = cli_json(runtimes, "demo")
    actions = [(s["action"], s["agent"], s["tool"]) for s in first["steps"]]
    assert ("register", "demo-alice", "slugify") in actions and ("register", "demo-alice", "temperature") in actions
    bob = next(s for s in first["steps"] if s["action"] == "register" and s["agent"] == "demo-bob")
    assert bob["cache_hit"] is True
    update = next(s for s in first["steps"] if s["action"] == "update")
    assert update["version"] == 2 and update["tool"] == "word_stats"
    assert first["ok"] and first["metrics"]["artifact_cache_hits"] >= 1
    second = cli_json(runtimes, "demo")
    assert [s["action"] for s in second["steps"] if s["action"] in ("found", "register")] == ["found"] * 5
    assert second["ok"] and {s["language"] for s in second["steps"]} == {"python", "javascript", "typescript"}


def test_doctor_reports_every_check(runtimes: SharedRuntimes, tmp_path: Path) -> None:
    """doctor checks Python, the data dir, SQLite, the sandbox, node and the runtime."""
    result = cli(runtimes, "--json", "--data-dir", str(tmp_path / "data"), "doctor")
    report = json.loads(result.stdout)
    names = {c["name"].split(":")[0] for c in report["checks"]}
    assert {"python", "profile", "data dir", "sqlite", "sandbox", "node", "runtime"} <= names
    assert result.exit_code == (0 if report["ok"] else 1)
    assert (tmp_path / "data").is_dir()


def test_params_parsing() -> None:
    """key=value values parse as JSON when they can, else stay strings; bad input is a ValidationError."""
    assert parse_params(["n=3", "name=Ada", "xs=[1,2]", "flag=true", 's="3"']) == {
        "n": 3,
        "name": "Ada",
        "xs": [1, 2],
        "flag": True,
        "s": "3",
    }
    assert parse_params(['{"a": {"b": 1}}']) == {"a": {"b": 1}}
    with pytest.raises(ValidationError, match="not valid JSON"):
        parse_params(["{oops"])
    with pytest.raises(ValidationError, match="given twice"):
        parse_params(["a=1", "a=2"])


def test_entry_point_runs_as_a_real_process(tmp_path: Path) -> None:
    """The installed toolrt script starts, prints help, and lists tools as JSON on the memory profile."""
    script = Path(sys.executable).parent / "toolrt"
    env = {**os.environ, "TOOLRT_DATA_DIR": str(tmp_path)}
    shown = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert shown.returncode == 0 and "register" in shown.stdout and "serve" in shown.stdout
    pytest.importorskip(
        "toolrt.adapters.local.sandbox", reason="toolrt list builds a runtime, which needs the local sandbox module"
    )
    listed = subprocess.run(
        [str(script), "--json", "--profile", "memory", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_errors_name_the_tool_file_and_keep_bracketed_text(tmp_path: Path) -> None:
    """A definition error found after the file was read names the file, and '[error]' is printed as text."""
    tool = tmp_path / "lim.yaml"
    tool.write_text(
        'name: lim\ndescription: d\nlanguage: python\ncode: "def handler(a):\\n    return a\\n"\n'
        "input_schema:\n  type: object\n  properties:\n    a:\n      type: nonsense\n"
    )
    result = CliRunner().invoke(build_app(SharedRuntimes()), ["register", str(tool)])
    assert result.exit_code == 2
    assert str(tool) in result.stderr and "[error] definition.input_schema" in result.stderr


def test_traffic_promote_and_metrics_from_the_cli(runtimes: SharedRuntimes, tmp_path: Path) -> None:
    """traffic sets and shows a split, promote ends it, metrics counts calls per version."""
    source = tmp_path / "double.py"
    source.write_text('def handler(x: int) -> int:\n    """Double x."""\n    return 2 * x\n')
    cli_json(runtimes, "register", str(source))
    source.write_text('def handler(x: int) -> int:\n    """Double x."""\n    return x + x\n')
    cli_json(runtimes, "update", str(source), "--name", "double")
    split = cli_json(runtimes, "traffic", "double", "1=70", "2=30", "--guard-min-calls", "5")
    assert split["traffic"] == {"1": 70, "2": 30}
    assert cli(runtimes, "traffic", "double", "1=70", "2=40").exit_code == 2
    assert cli(runtimes, "--agent", "mallory", "traffic", "double", "2=100").exit_code == 2
    for _ in range(4):
        cli_json(runtimes, "invoke", "double", "x=2")
    cli_json(runtimes, "invoke", "double", "x=2", "--version", "2")
    metrics = cli_json(runtimes, "metrics", "double")
    assert sum(v["executions"] for v in metrics["versions"]) == 5 and metrics["traffic"] == {"1": 70, "2": 30}
    promoted = cli_json(runtimes, "promote", "double", "1")
    assert promoted["version"] == 1
    assert cli_json(runtimes, "traffic", "double")["traffic"] == {}
    table = cli(runtimes, "metrics", "double").stdout
    assert "in force" in table and "p95" in table


def test_cli_logs_render_toolrt_events_as_text_or_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's stderr logs read as one line per event, its fields as key=value (or JSON), inert."""
    import io
    import json
    import logging

    from toolrt.adapters.cli import logs as cli_logs
    from toolrt.logs import get_logger

    for fmt in cli_logs.LOG_FORMATS:
        stream = io.StringIO()
        cli_logs.configure(logging.INFO, fmt)
        handler = next(h for h in logging.getLogger("toolrt").handlers if getattr(h, "toolrt_cli", False))
        monkeypatch.setattr(handler, "stream", stream)
        get_logger("tests.cli").bind(agent_id="a\x1b]0;pwned\x07").info("tool executed", status="succeeded")
        line = stream.getvalue().strip()
        assert "\n" not in line and "\x1b" not in line and "\x07" not in line
        if fmt == "json":
            record = json.loads(line)
            assert record["event"] == "tool executed" and record["status"] == "succeeded"
            assert record["level"] == "info" and record["logger"] == "toolrt.tests.cli"
        else:
            assert "tool executed" in line and "status=succeeded" in line and "[info" in line
    logger = logging.getLogger("toolrt")
    for handler in [h for h in logger.handlers if getattr(h, "toolrt_cli", False)]:
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def test_an_unknown_log_format_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """TOOLRT_LOG_FORMAT names one of the formats or the CLI says which ones exist."""
    from toolrt.adapters.cli import logs as cli_logs

    monkeypatch.setenv("TOOLRT_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="text, json"):
        cli_logs.log_format()


def test_show_json_gives_the_definition_as_a_tool_file_takes_it(runtimes: SharedRuntimes, tmp_path: Path) -> None:
    """`toolrt show --json NAME` prints the definition as users write it: saved to a file, it
    registers (as another agent) and updates (as the owner) to the same definition."""
    tool = tmp_path / "tool.yaml"
    tool.write_text(
        "name: greet\n"
        "description: Greet someone by name.\n"
        "language: python\n"
        "entrypoint: main\n"
        "code: |\n  def main(who: str) -> dict:\n      return {'echo': {'who': who}}\n"
        "input_schema: {type: object, properties: {who: {type: string, description: Who to greet.}}, required: [who]}\n"
        "output_schema: {type: object}\n"
        "limits: {timeout_s: 5, memory_mb: 128}\n"
        "tags: [demo, greeting]\n"
        "examples: [{params: {who: ada}, output: {echo: {who: ada}}}]\n"
    )
    cli_json(runtimes, "--agent", "alice", "register", str(tool))
    shown = cli_json(runtimes, "--agent", "alice", "show", "greet")
    definition = shown["definition"]
    assert definition["code"].startswith("def main(who: str)") and "code_hash" not in definition
    assert shown["code_hash"] and shown["versions"] and shown["status_report"]  # the rest of the view is kept
    saved = tmp_path / "greet.json"
    saved.write_text(json.dumps(definition))
    cli_json(runtimes, "--agent", "bob", "register", str(saved))
    assert cli_json(runtimes, "--agent", "bob", "show", "greet")["definition"] == definition
    cli_json(runtimes, "--agent", "alice", "update", str(saved))
    again = cli_json(runtimes, "--agent", "alice", "show", "greet")
    assert again["definition"] == definition and again["version"] == shown["version"]


def test_registering_a_name_the_agent_already_has_says_how_to_update_it(runtimes: SharedRuntimes) -> None:
    """Registering a file again (the README, then the command-line guide) is refused with the next
    step: `toolrt update FILE`, or --on-duplicate update; alone and in a batch."""
    add = str(EXAMPLES / "python" / "add.py")
    cli_json(runtimes, "register", add)
    alone = cli(runtimes, "register", add)
    assert alone.exit_code == 2
    (line,) = alone.stderr.splitlines()
    assert "already has an active tool named 'add'" in line and f"toolrt update {add}" in line
    assert "--on-duplicate update" in line
    batch = cli(runtimes, "register", add, str(EXAMPLES / "python" / "word_stats.py"))
    assert batch.exit_code == 2 and f"toolrt update {add}" in batch.stderr
    shown = cli(runtimes, "--json", "register", add, str(EXAMPLES / "python" / "word_stats.py"))
    assert f"toolrt update {add}" in json.loads(shown.stdout)[0]["error"]["hint"]


def test_a_batch_registration_off_a_terminal_prints_no_progress_residue(runtimes: SharedRuntimes) -> None:
    """Off a terminal (a script, a pipe) several files register without the progress bar's blank line."""
    done = cli(runtimes, "register", str(EXAMPLES / "python" / "add.py"), str(EXAMPLES / "python" / "word_stats.py"))
    assert done.exit_code == 0, done.stderr
    assert not done.stderr.startswith("\n"), repr(done.stderr)


def test_a_folder_of_folders_names_where_the_tool_files_are(runtimes: SharedRuntimes, tmp_path: Path) -> None:
    """`toolrt register examples` (the folder `toolrt examples` fills, tools one level down) names
    the folder and the subfolders to give instead of only saying nothing was found."""
    for sub in ("python", "javascript"):
        (tmp_path / "examples" / sub).mkdir(parents=True)
    (tmp_path / "examples" / "README.md").write_text("samples\n")
    (tmp_path / "examples" / "python" / "add.py").write_text((EXAMPLES / "python" / "add.py").read_text())
    (tmp_path / "examples" / "javascript" / "slugify.yaml").write_text("name: slugify\n")
    done = cli(runtimes, "register", str(tmp_path / "examples"))
    assert done.exit_code == 2
    (line,) = done.stderr.splitlines()
    assert f"no tool files found in {tmp_path / 'examples'}; subfolders are not searched: give " in line
    assert line.endswith(f"give {tmp_path / 'examples' / 'javascript'} {tmp_path / 'examples' / 'python'}")
