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


def test_no_module_imports_itself_through_others() -> None:
    """No import circle anywhere in the package, counting imports inside functions and under
    ``TYPE_CHECKING``: a circle ties modules that then change together and load in a fragile order.
    Each circle found is named as its chain of imports."""
    import grimp

    graph = grimp.build_graph("toolrt")
    circles: list[str] = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported > module:  # each circle once, from its smallest module
                continue
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None and (imported != module):
                circles.append(" -> ".join((module, *back)))
    assert circles == []
