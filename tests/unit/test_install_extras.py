"""A missing optional part says which extra to install; nothing needed at run time imports test code."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import toolrt
from tests.e2e.harness import SharedRuntimes
from toolrt.adapters.cli.context import Cli
from toolrt.adapters.cli.main import build_app


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``importlib.util.find_spec`` report ``modules`` as not installed."""
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name.split(".")[0] in modules else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_connect_aws_without_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """connect('aws') without boto3 raises MissingDependencyError naming toolrt[aws], a ToolRuntimeError."""
    _hide(monkeypatch, "boto3")
    with pytest.raises(toolrt.MissingDependencyError) as caught:
        toolrt.connect("aws", gateway_id="g", gateway_lambda_arn="arn:aws:lambda:us-east-1:1:function:f")
    assert isinstance(caught.value, toolrt.ToolRuntimeError)
    assert caught.value.extra == "aws" and "pip install 'toolrt[aws]'" in str(caught.value)


def test_serve_without_the_mcp_sdk_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """`toolrt serve` without the mcp extra exits 2 with one line that says what to install."""
    _hide(monkeypatch, "mcp")
    result = CliRunner().invoke(build_app(SharedRuntimes()), ["serve"])
    assert result.exit_code == 2
    assert "pip install 'toolrt[mcp]'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_import_error_of_an_optional_module_names_its_extra() -> None:
    """Whatever command meets a missing optional module, the CLI names the extra instead of a traceback."""
    cli = Cli(connect=SharedRuntimes())
    with pytest.raises(typer.Exit) as caught, cli.guard():
        raise ModuleNotFoundError("No module named 'boto3'", name="boto3")
    assert caught.value.exit_code == 2


def test_run_time_code_imports_no_test_code() -> None:
    """Loading the tool-file schema (toolrt.contracts) pulls in no pytest; the suites still load on demand."""
    script = textwrap.dedent("""
        import sys
        from toolrt.adapters.cli.tool_files import tool_file_schema
        assert tool_file_schema()["type"] == "object"
        import toolrt.contracts
        assert "pytest" not in sys.modules, "run-time code imported pytest"
        from toolrt.contracts import SandboxContract
        assert "pytest" in sys.modules and SandboxContract.__name__ == "SandboxContract"
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_demo_with_a_missing_examples_folder_says_how_and_creates_nothing(tmp_path: Path) -> None:
    """A wrong --examples is one line with the hint outside the quoted path, and no store is left behind."""
    exe = Path(sys.executable).parent / "toolrt"
    data = tmp_path / "data"
    done = subprocess.run(
        [str(exe), "--data-dir", str(data), "demo", "--examples", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"examples folder '{tmp_path / 'nope'}' not found; pass --examples DIR" in done.stderr
    assert not data.exists()


def test_the_demo_finds_its_samples_as_package_data() -> None:
    """The sample tools ship inside the package, so `toolrt demo` needs no source checkout."""
    from toolrt.adapters.cli.demo import SAMPLES, default_examples_dir

    folder = default_examples_dir()
    assert folder is not None
    assert all((folder / relative).is_file() for relative, _ in SAMPLES)


def test_an_installed_mcp_release_without_a_module_says_so_not_that_mcp_is_missing() -> None:
    """An mcp SDK that is installed but lacks a module toolrt imports is named with the real import
    error and the releases toolrt runs on, never as 'mcp is not installed'."""
    import io

    from rich.console import Console

    from toolrt.adapters.mcp.sdk import SUPPORTED_PIN

    err = io.StringIO()
    cli = Cli(connect=SharedRuntimes(), err=Console(file=err, width=400))
    with pytest.raises(typer.Exit) as caught, cli.guard():
        raise ModuleNotFoundError("No module named 'mcp.server.context'", name="mcp.server.context")
    assert caught.value.exit_code == 2
    line = err.getvalue()
    assert "mcp.server.context" in line and SUPPORTED_PIN in line and "not installed" not in line


def test_the_unusable_release_message_names_the_version_the_error_and_the_fix() -> None:
    """The one line names the installed release, the import that failed and the pip command."""
    from toolrt.adapters.cli.context import _unusable_release
    from toolrt.adapters.mcp.sdk import SUPPORTED_PIN, installed_version

    error = ModuleNotFoundError("No module named 'mcp.server.context'", name="mcp.server.context")
    text = _unusable_release("mcp", "mcp", error)
    assert f"mcp {installed_version()}" in text and "mcp.server.context" in text
    assert SUPPORTED_PIN in text and "not installed" not in text
