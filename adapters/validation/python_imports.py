"""Python imports the sandbox cannot satisfy: neither standard library nor provided by the tool's requirements.

A tool runs with the standard library and, when it has requirements, the packages of its lock and
nothing else (the host's site-packages are never visible). An import of anything else would fail
on every call, so it is an error at registration, pointing at the line and naming the requirement
to add. An import guarded by ``try: ... except ImportError`` (or ``ModuleNotFoundError``, or
``Exception``) is the tool's own fallback and is left alone; relative imports fail anyway (a tool is
one module) and are left to the interpreter.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Collection

from toolrt.adapters.validation.policy import Policy
from toolrt.domain import Finding

# Import names whose distribution is called otherwise, for the hint ("add `python-dateutil`").
_DISTRIBUTIONS = {
    "bs4": "beautifulsoup4",
    "cv2": "opencv-python-headless",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "jwt": "PyJWT",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "yaml": "PyYAML",
    "Crypto": "pycryptodome",
    "docx": "python-docx",
    "magic": "python-magic",
}
_GUARDS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def distribution_hint(module: str) -> str:
    """The requirement that most likely provides top-level ``module``."""
    return _DISTRIBUTIONS.get(module, module)


def _guarded(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """Whether ``node`` sits in the body of a ``try`` that catches a failed import."""
    child: ast.AST = node
    parent = parents.get(id(node))
    while parent is not None:
        if isinstance(parent, ast.Try | ast.TryStar) and any(child is stmt for stmt in parent.body):
            for handler in parent.handlers:
                if handler.type is None:
                    return True
                names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
                if any(isinstance(n, ast.Name) and n.id in _GUARDS for n in names):
                    return True
        child, parent = parent, parents.get(id(parent))
    return False


def check_imports(tree: ast.Module, policy: Policy, provided: Collection[str]) -> list[Finding]:
    """An ``imports.unavailable`` finding (category ``unavailable``) for each import of a top-level
    module that is neither in ``sys.stdlib_module_names`` nor in ``provided``."""
    severity = policy.severity("unavailable")
    if severity is None:
        return []
    available = set(provided)
    parents = {id(child): parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    findings: list[Finding] = []
    seen: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            modules = [node.module]
        else:
            continue
        for module in modules:
            top = module.split(".", 1)[0]
            if top in sys.stdlib_module_names or top in available or top in seen or _guarded(node, parents):
                continue
            seen.add(top)
            requirement = distribution_hint(top)
            where = (
                "the tool's requirements provide " + ", ".join(sorted(available))
                if available
                else "the tool has no requirements"
            )
            findings.append(
                Finding(
                    f"imports.unavailable.{top}",
                    severity,
                    f"module {top!r} is not available: it is not in the standard library and {where} [unavailable]",
                    node.lineno,
                    node.col_offset + 1,
                    f"add `{requirement}` to requirements (for example requirements: [{requirement!r}])",
                )
            )
    findings.sort(key=lambda f: (f.line, f.column))
    return findings
