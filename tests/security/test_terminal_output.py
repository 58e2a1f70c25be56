"""Terminal output is inert: whatever a hostile agent puts in the store (its agent id, a tool's
description, what its tool returns, prints or raises), every CLI view shows it as text, never as
rich markup or terminal control sequences, and never crashes on it.

The hostile agent (mallory) writes through the library; the victim reads through the CLI, and the
bytes the CLI wrote are inspected.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.e2e.harness import SharedRuntimes
from tests.fakes import EchoSandbox
from toolrt.adapters.cli.main import build_app
from toolrt.adapters.cli.output import inert, strip_controls
from toolrt.domain import ExecutionFailure, ExecutionMetrics, ExecutionStatus
from toolrt.ports import CancelSignal, SandboxRequest, SandboxResult

# What a terminal acts on: C0 controls but newline (and tab), DEL, C1 controls.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
ADD_CODE = "def handler(a, b):\n    return a + b\n"
HOSTILE_SAMPLES = [
    "evil[/]",
    "[bold red]fake error[/]",
    "[link=https://evil.example]click[/link]",
    "\x1b]0;pwned\x07title",
    "\x1b[2J\x1b[Hcleared",
    "\x9b31mC1 CSI",
    "back\\",
    "nul\x00bell\x07del\x7f",
]


class HostileSandbox(EchoSandbox):
    """Answers each call with what its params ask for: output, stdout, stderr, an error."""

    def run(self, request: SandboxRequest, cancel: CancelSignal | None = None) -> SandboxResult:
        self.requests.append(request)
        text = str(request.params.get("text", ""))
        metrics = ExecutionMetrics(wall_ms=1.0, cpu_ms=0.5, exit_code=0)
        if request.params.get("fail"):
            error = ExecutionFailure(type=text or "Error", message=text, traceback=f"Traceback:\n  {text}\n")
            return SandboxResult(ExecutionStatus.FAILED, error=error, stdout=text, stderr=text, metrics=metrics)
        return SandboxResult(
            ExecutionStatus.SUCCEEDED, output={"said": text}, stdout=text + "\n", stderr=text, metrics=metrics
        )


def _world(owner: str, description: str, said: str) -> SharedRuntimes:
    runtimes = SharedRuntimes(HostileSandbox())
    rt = runtimes.runtime()
    examples = [{"params": {"text": said}, "output": {"said": said + "!"}}]
    definition = {
        "name": "echo",
        "description": description,
        "language": "python",
        "code": ADD_CODE,
        "tags": ["x"],
    }
    hostile = rt.register_tool(owner, definition, "public").tool
    rt.update_tool(owner, hostile.tool_id, {**definition, "description": description + " v2"})
    # Examples that fail: `toolrt test` shows what came back.
    runtimes.sandbox.requests.clear()
    rt.ports.repository.save(  # stored as if they had passed once (the store is the hostile's to fill)
        _with_examples(rt.get_tool(hostile.tool_id), examples)
    )
    victim = rt.register_tool("victim", {**definition, "name": "mine", "description": "The victim's."}, "shared").tool
    rt.execute_tool(owner, victim.tool_id, {"text": said})  # the hostile agent calls the victim's tool
    rt.execute_tool("victim", hostile.tool_id, {"text": said})
    rt.execute_tool("victim", hostile.tool_id, {"text": said, "fail": True})
    return runtimes


def _with_examples(tool: Any, examples: list[dict[str, Any]]) -> Any:
    import attrs

    from toolrt.domain import ToolVersion

    definition = attrs.evolve(tool.definition, examples=examples)
    version = ToolVersion(tool.current_version, definition.code_hash, definition, tool.updated_at)
    others = tuple(v for v in tool.versions if v.number != tool.current_version)
    return attrs.evolve(tool, versions=(*others, version), record_version=tool.record_version + 1)


def _views(runtimes: SharedRuntimes, said: str) -> list[tuple[list[str], Any]]:
    """Every CLI view of the store the victim can open, and what it printed."""
    commands = [
        ["list"],
        ["list", "--all"],
        ["show", "echo"],
        ["-v", "show", "echo"],
        ["versions", "echo"],
        ["history"],
        ["history", "--tool", "mine"],
        ["search", "echo"],
        ["search", "v2"],
        ["-v", "invoke", "echo", f"text={said}"],
        ["-v", "invoke", "echo", f"text={said}", "fail=true"],
        ["invoke", "--stream", "echo", f"text={said}"],
        ["-v", "test", "echo"],
        ["metrics", "echo"],
    ]
    seen = []
    with structlog.testing.capture_logs():
        for args in commands:
            result = CliRunner().invoke(build_app(runtimes), ["--agent", "victim", *args])
            seen.append((args, result))
    return seen


def _check(runtimes: SharedRuntimes, said: str) -> list[str]:
    printed = []
    for args, result in _views(runtimes, said):
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        assert result.exit_code in (0, 1), (args, result.exit_code, result.stdout, result.stderr)
        text = result.stdout + result.stderr
        assert not CONTROL.search(text), (args, [c for c in text if CONTROL.match(c)])
        assert "MarkupError" not in text and "Traceback (most recent call last)" not in text, args
        printed.append(text)
    return printed


def test_hostile_store_values_are_shown_as_text_in_every_view() -> None:
    """An owner ``evil[/]`` (which crashed ``list`` and ``show``), a description holding title and
    screen-clearing sequences (written raw by ``search``), and outputs carrying markup: every view
    prints them literally, stripped of control characters."""
    owner = "evil[/]\x1b]0;owned\x07"
    description = "Helpful. \x1b]0;pwned\x07\x1b[2J[bold red]ALERT[/]"
    said = "[link=https://evil.example]x[/link]\x9b2J"
    printed = "\n".join(_check(_world(owner, description, said), said))
    assert "evil[/]" in printed and "[bold red]ALERT[/]" in printed  # shown as written, minus controls
    assert "[link=https://evil.example]x[/link]2J" in printed


HOSTILE_TEXT = st.one_of(
    st.sampled_from(HOSTILE_SAMPLES),
    st.text(
        alphabet=st.one_of(
            st.sampled_from("[]/\\=:#@ abcXYZ019\n\t"), st.characters(min_codepoint=0, max_codepoint=0x9F)
        ),
        min_size=1,
        max_size=30,
    ),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(owner=HOSTILE_TEXT, description=HOSTILE_TEXT, said=HOSTILE_TEXT)
def test_no_store_value_reaches_the_terminal_as_markup_or_control(owner: str, description: str, said: str) -> None:
    """For any owner, description and output (markup, backslashes, C0/C1 controls), no CLI view
    crashes or writes a control character."""
    if not owner.strip() or "\x00" in said:  # an agent id is never blank; argv holds no NUL
        return
    _check(_world(owner, description, said), said)


def test_inert_escapes_markup_and_strips_controls() -> None:
    """``inert`` is what every markup string built from a store value goes through."""
    from rich.console import Console

    for sample in HOSTILE_SAMPLES:
        console = Console(record=True, width=200, color_system=None)
        console.print(f"[bold]{inert(sample)}[/]")
        assert console.export_text().rstrip("\n") == strip_controls(sample)
