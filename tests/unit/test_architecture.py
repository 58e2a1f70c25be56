"""The layer rules hold: import-linter's contracts (declared in pyproject.toml) are all kept."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    """bootstrap > adapters > application > ports > domain; adapter families independent; pure core."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is part of the dev extra"
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_module_imports_the_folders_as_top_level_packages() -> None:
    """Code imports toolrt.domain, never domain: a top-level `domain` would clash in a user's application."""
    import re

    pattern = re.compile(r"^\s*(?:from|import)\s+(?:domain|ports|application|adapters|contracts|examples)\b", re.M)
    files = [
        path
        for folder in ("domain", "ports", "application", "adapters", "contracts", "tests", "benchmarks")
        for path in (ROOT / folder).rglob("*.py")
    ]
    files += list((ROOT / "toolrt").glob("*.py"))  # its subfolders are links to the folders above
    offenders = [str(path.relative_to(ROOT)) for path in files if pattern.search(path.read_text(encoding="utf-8"))]
    assert files and offenders == []


def test_driving_adapters_use_the_facade_only() -> None:
    """The CLI and the MCP server (and what serves pages) reach the core through ``ToolRuntime``'s
    public methods: no ``.ports`` and no underscore attribute of a runtime, so that what they show
    is what any embedding application may ask for, under the same visibility rules."""
    import ast

    offenders: list[str] = []
    for folder in ("cli", "mcp", "dashboard"):
        for path in (ROOT / "adapters" / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr == "ports":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
