"""Python security rules on the AST: imports, members, builtins and reflection, with aliasing and indirection resolved."""

from __future__ import annotations

import _string
import ast
import functools
import importlib.util
import pkgutil
import string
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from toolrt.adapters.validation.policy import Policy
from toolrt.domain import Finding

_ATTRIBUTE_BUILTINS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
_FORMATTER = string.Formatter()
# Values that behave like modules (a way to every module or to the interpreter) beside real modules.
_MODULE_LIKE = frozenset({"sys.modules", "os.path"})
#: The hint of every finding of the ``network`` category, for a tool whose definition declares no
#: hosts (an HTTP client) and for what no declaration allows (sockets and the like).
DECLARE_NETWORK_HINT = (
    "declare the hosts this tool calls in its definition's network.allow "
    '(for example {"allow": ["api.example.com:443"]}), which the runtime\'s owner must permit'
)
CLIENTS_ONLY_HINT = (
    "call web APIs with an HTTP client (urllib.request, http.client, requests, httpx, aiohttp) and declare "
    "the hosts in the definition's network.allow: nothing else leaves the sandbox"
)


@functools.lru_cache(maxsize=4096)
def names_a_module(qualified: str) -> bool:
    """Whether a dotted name (as imports resolve it) is a module, found without importing anything.

    Standard-library modules are known by name (also when re-exported: ``os.sys``, ``shutil.os``);
    submodules of an installed package are looked up on disk through the package's spec, which
    locates the package without running it.
    """
    if qualified in _MODULE_LIKE or qualified in sys.stdlib_module_names:
        return True
    base, _, last = qualified.rpartition(".")
    if not base:
        return False
    if last in sys.stdlib_module_names and last != base.rpartition(".")[2]:
        # Another module re-exported (``os.sys``); a module's namesake member (``datetime.datetime``,
        # ``time.time``, ``copy.copy``) is a class or function.
        return True
    parts = qualified.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return False
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for part in parts[1:]:
        found = [m for m in pkgutil.iter_modules(locations) if m.name == part]
        if not found:
            return False
        if part == parts[-1]:
            return True
        locations = [str(Path(str(getattr(found[0].module_finder, "path", ""))) / part)] if found[0].ispkg else []
    return False


def _bound_names(body: list[ast.stmt] | ast.expr, args: ast.arguments | None = None) -> frozenset[str]:
    """Names a scope binds (parameters, assignments, imports, defs), not looking into nested scopes."""
    names: set[str] = set()
    declared_global: set[str] = set()
    if args is not None:
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if arg is not None:
                names.add(arg.arg)
    stack: list[ast.AST] = list(body) if isinstance(body, list) else [body]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            stack.extend(node.decorator_list)
            continue
        elif isinstance(node, ast.Lambda):
            continue
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.Global):
            declared_global.update(node.names)
        stack.extend(ast.iter_child_nodes(node))
    return frozenset(names - declared_global)


def _fold_string(node: ast.expr) -> str | None:
    """The value of a string built only from constants (``"sys" + "tem"``, ``"".join([...])``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _fold_string(node.left), _fold_string(node.right)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.JoinedStr):
        parts = [_fold_string(v) if not isinstance(v, ast.FormattedValue) else None for v in node.values]
        return "".join(p for p in parts if p is not None) if all(p is not None for p in parts) else None
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "join"
        and len(node.args) == 1
        and isinstance(node.args[0], (ast.List, ast.Tuple))
    ):
        sep = _fold_string(node.func.value)
        items = [_fold_string(e) for e in node.args[0].elts]
        if sep is not None and all(i is not None for i in items):
            return sep.join(i for i in items if i is not None)
    return None


class _SecurityVisitor(ast.NodeVisitor):
    """One pass over the module that resolves import aliases and reports every policy violation."""

    def __init__(self, policy: Policy, tree: ast.Module, network: bool = False) -> None:
        section = policy.section("python")
        self.policy = policy
        # The HTTP clients a tool may import when its definition declares hosts (network.allow).
        self.network_clients = frozenset(section.get("network_clients", []))
        self.network = network
        self.denied_modules: Mapping[str, str] = section.get("denied_modules", {})
        self.allowed_modules = frozenset(section.get("allowed_modules", []))
        self.only_allowed = bool(section.get("only_allowed_modules", False))
        self.denied_members: Mapping[str, Mapping[str, str]] = section.get("denied_members", {})
        self.denied_builtins: Mapping[str, str] = section.get("denied_builtins", {})
        self.allowed_dunders = frozenset(section.get("allowed_dunders", []))
        self.denied_attributes: Mapping[str, str] = section.get("denied_attributes", {})
        self.findings: list[Finding] = []
        self.aliases: dict[str, str] = {}
        self.scopes: list[ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda] = []
        self._scope_names: dict[int, frozenset[str]] = {}
        self._module_names: frozenset[str] | None = None
        self.tree = tree
        self._seen: set[tuple[str, int, int]] = set()
        self._parents = {id(child): parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        # Names bound by an import statement to a module, wherever the import is (looked up flow-insensitively).
        self.module_aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    name = alias.asname or alias.name.split(".")[0]
                    self.module_aliases[name] = alias.name if alias.asname else name
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name != "*" and names_a_module(f"{node.module}.{alias.name}"):
                        self.module_aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        self._local_names: dict[int, frozenset[str]] = {}

    # -- reporting -------------------------------------------------------------------------

    def report(self, rule: str, category: str, node: ast.AST, message: str, hint: str) -> None:
        severity = self.policy.severity(category)
        if severity is None:
            return
        line, column = getattr(node, "lineno", 0), getattr(node, "col_offset", -1) + 1
        if isinstance(node, ast.Attribute) and node.end_lineno == node.lineno and node.end_col_offset is not None:
            # Point at the attribute name itself, not at the start of the whole ``a.b.c`` chain.
            column = node.end_col_offset - len(node.attr) + 1
        if (rule, line, column) in self._seen:
            return
        self._seen.add((rule, line, column))
        self.findings.append(Finding(rule, severity, f"{message} [{category}]", line, column, hint))

    # -- modules ---------------------------------------------------------------------------

    def _module_category(self, module: str) -> str | None:
        """The category that denies ``module`` (or one of its parents), None when it is allowed."""
        parts = module.split(".")
        prefixes = [".".join(parts[: i + 1]) for i in range(len(parts))]
        if any(p in self.allowed_modules for p in prefixes):
            return None
        for prefix in reversed(prefixes):
            if prefix in self.denied_modules:
                return self.denied_modules[prefix]
        if self.only_allowed:
            return "unlisted"
        return None

    def _check_module(self, module: str, node: ast.AST) -> bool:
        category = self._module_category(module)
        if category is None:
            return False
        client = module.split(".")[0] in self.network_clients
        if category == "network" and client and self.network:
            return False  # an HTTP client of a tool that declares its hosts: the egress proxy decides
        if category == "network":
            hint = DECLARE_NETWORK_HINT if client else CLIENTS_ONLY_HINT
        else:
            hint = (
                "remove the import; tools receive their inputs as parameters and return results, "
                "they do not reach the system or interpreter internals"
            )
        self.report(
            f"security.import.{module.split('.')[0]}",
            category,
            node,
            f"import of module {module!r} is not allowed by the policy",
            hint,
        )
        return True

    def _check_member(self, qualified: str, node: ast.AST) -> None:
        module, _, member = qualified.rpartition(".")
        if not module or module in self.allowed_modules:
            return
        category = self.denied_members.get(module, {}).get(member)
        if category is None:
            # Modules re-export each other (``os.path.os``): ``p.os.system`` is still os.system.
            parts = qualified.split(".")
            for i in range(1, len(parts) - 1):
                found = self.denied_members.get(parts[i], {}).get(parts[i + 1])
                if found is not None and parts[i] not in self.allowed_modules:
                    category, qualified = found, f"{parts[i]}.{parts[i + 1]}"
                    break
        if category is not None:
            self.report(
                f"security.attribute.{qualified}",
                category,
                node,
                f"use of {qualified} is not allowed by the policy",
                CLIENTS_ONLY_HINT
                if category == "network"
                else f"do not use {qualified}; compute the result from the parameters instead",
            )
        elif qualified in self.denied_modules:
            # ``import concurrent`` then ``concurrent.futures.process``: a denied module reached by attribute.
            self._check_module(qualified, node)
        elif member.startswith("_") and not member.startswith("__"):
            # A module's private names include the modules it imported (``random._os``).
            self.report(
                "security.private_attribute",
                "reflection",
                node,
                f"use of the private module attribute {qualified!r} is not allowed by the policy",
                "use the module's public names",
            )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(alias.name, node)
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.aliases[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or not module:
            return
        if self._check_module(module, node):
            return
        for alias in node.names:
            if alias.name == "*":
                if self.denied_members.get(module):
                    self.report(
                        f"security.import.{module.split('.')[0]}",
                        "reflection",
                        node,
                        f"'from {module} import *' brings in names the policy denies",
                        f"import only the names you use: from {module} import name1, name2",
                    )
                continue
            qualified = f"{module}.{alias.name}"
            if not self._check_module(qualified, node):
                self._check_member(qualified, node)
            self.aliases[alias.asname or alias.name] = qualified

    def visit_Assign(self, node: ast.Assign) -> None:
        # ``o = os`` makes ``o.system`` as dangerous as ``os.system``.
        origin = self._resolve(node.value)
        if origin is not None:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.aliases[target.id] = origin
        self.generic_visit(node)

    def _resolve(self, node: ast.expr) -> str | None:
        """The dotted origin of an expression built from imported names (``o.path`` -> ``os.path``)."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._resolve(node.value)
            return f"{base}.{node.attr}" if base is not None else None
        return None

    # -- modules as values ------------------------------------------------------------------

    def _bound_locally(self, name: str) -> bool:
        """Whether an enclosing function binds ``name`` other than by import (a parameter, say)."""
        for scope in self.scopes:
            key = id(scope)
            if key not in self._local_names:
                body: list[ast.stmt] | ast.expr = scope.body
                imported = {
                    (a.asname or a.name).split(".")[0]
                    for n in (body if isinstance(body, list) else [])
                    if isinstance(n, (ast.Import, ast.ImportFrom))
                    for a in n.names
                }
                self._local_names[key] = _bound_names(body, scope.args) - imported
            if name in self._local_names[key]:
                return True
        return False

    def _module_value(self, node: ast.expr) -> str | None:
        """The module that a name or attribute chain evaluates to, if it is one."""
        if isinstance(node, ast.Name):
            if node.id in self.module_aliases and not self._bound_locally(node.id):
                return self.module_aliases[node.id]
            return None
        if isinstance(node, ast.Attribute):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if not isinstance(base, ast.Name) or self._module_value(base) is None:
                return None
            qualified = self._resolve_module_chain(node)
            if qualified is not None and names_a_module(qualified):
                return qualified
        return None

    def _resolve_module_chain(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return self.module_aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._resolve_module_chain(node.value)
            return f"{base}.{node.attr}" if base is not None else None
        return None

    def _check_module_value(self, node: ast.Name | ast.Attribute) -> None:
        """A module may be used only as ``module.attribute``: anything else can smuggle it past these rules."""
        if not isinstance(node.ctx, ast.Load):
            return
        parent = self._parents.get(id(node))
        if isinstance(parent, ast.Attribute) and parent.value is node:
            return
        if (
            isinstance(parent, ast.Call)
            and parent.args
            and parent.args[0] is node
            and self._is_builtin(parent.func, frozenset({"getattr", "hasattr"}))
        ):
            return  # getattr(module, name) is attribute access: its own rule checks the name
        module = self._module_value(node)
        if module is None:
            return
        self.report(
            "security.module_as_value",
            "reflection",
            node,
            f"module {module!r} is used as a value (stored, passed, returned or put in a container)",
            f"use the module only as '{module}.name(...)' where you need it; a module held in a variable, "
            "argument, container or return value hides what the code calls",
        )

    # -- attributes ------------------------------------------------------------------------

    def _check_attribute_name(self, attr: str, node: ast.AST, how: str) -> None:
        if attr.startswith("__") and attr.endswith("__") and len(attr) > 4:
            if attr not in self.allowed_dunders:
                self.report(
                    "security.dunder",
                    "reflection",
                    node,
                    f"{how} dunder attribute {attr!r} reaches interpreter internals",
                    "use the object's public interface; dunder attributes other than "
                    "__init__, __name__, __doc__ and operator methods are not allowed",
                )
            return
        category = self.denied_attributes.get(attr)
        if category is not None:
            reflective = category == "reflection"
            self.report(
                f"security.attribute.{attr}",
                category,
                node,
                f"{how} attribute {attr!r} exposes frames, code objects or globals"
                if reflective
                else f"{how} attribute {attr!r} is not allowed by the policy ({category})",
                "tools must not inspect the interpreter's frames, tracebacks or code objects"
                if reflective
                else "tools compute their result from their parameters; they do not start processes or open connections",
            )

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._check_attribute_name(node.attr, node, "access to")
        self._check_module_value(node)
        base = self._resolve(node.value)
        if base is not None:
            self._check_member(f"{base}.{node.attr}", node)
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        for attr in node.kwd_attrs:
            self._check_attribute_name(attr, node, "pattern matching on")
        self.generic_visit(node)

    # -- names and builtins ----------------------------------------------------------------

    def _shadowed(self, name: str) -> bool:
        for scope in reversed(self.scopes):
            key = id(scope)
            if key not in self._scope_names:
                body = scope.body
                self._scope_names[key] = _bound_names(body, scope.args)
            if name in self._scope_names[key]:
                return True
        if self._module_names is None:
            deleted = {
                t.id
                for n in ast.walk(self.tree)
                if isinstance(n, ast.Delete)
                for t in n.targets
                if isinstance(t, ast.Name)
            }
            # A module-level binding that is later deleted no longer hides the builtin.
            self._module_names = _bound_names(self.tree.body) - deleted
        return name in self._module_names

    def _is_builtin(self, node: ast.expr, names: frozenset[str] | Mapping[str, str]) -> str | None:
        if isinstance(node, ast.Name) and node.id in names and not self._shadowed(node.id):
            return node.id
        return None

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        self._check_module_value(node)
        if name in self.denied_builtins and isinstance(node.ctx, ast.Load) and not self._shadowed(name):
            self.report(
                f"security.builtin.{name}",
                self.denied_builtins[name],
                node,
                f"built-in {name!r} is not allowed by the policy",
                f"do not call or reference {name}(); work on the parameters directly",
            )
        elif name.startswith("__") and name.endswith("__") and name not in self.allowed_dunders:
            self.report(
                "security.dunder",
                "reflection",
                node,
                f"name {name!r} reaches interpreter internals",
                "tools must not use module-level dunder names such as __builtins__ or __loader__",
            )

    def _visit_scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        # Decorators and defaults are evaluated in the enclosing scope.
        if not isinstance(node, ast.Lambda):
            for decorator in node.decorator_list:
                self.visit(decorator)
            if node.returns is not None:
                self.visit(node.returns)
        self.visit(node.args)
        self.scopes.append(node)
        try:
            if isinstance(node, ast.Lambda):
                self.visit(node.body)
            else:
                for stmt in node.body:
                    self.visit(stmt)
        finally:
            self.scopes.pop()

    visit_FunctionDef = _visit_scope
    visit_AsyncFunctionDef = _visit_scope
    visit_Lambda = _visit_scope

    # -- calls -----------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        builtin = self._is_builtin(node.func, _ATTRIBUTE_BUILTINS)
        if builtin is not None and len(node.args) >= 2:
            self._check_attribute_call(builtin, node)
        func = node.func
        if isinstance(func, ast.Attribute):
            if (
                func.attr in ("format", "format_map")
                and isinstance(func.value, ast.Constant)
                and isinstance(func.value.value, str)
            ):
                self._check_format_string(func.value.value, func.value)
            elif func.attr in ("format", "vformat", "get_field") and node.args:
                # string.Formatter().format("{0.__class__}", x) and its get_field("0.__class__", ...).
                first = _fold_string(node.args[0])
                if first is not None:
                    template = "{" + first + "}" if func.attr == "get_field" else first
                    self._check_format_string(template, node)
        self.generic_visit(node)

    def _check_attribute_call(self, builtin: str, node: ast.Call) -> None:
        name = _fold_string(node.args[1])
        how = f"{builtin}() of"
        if name is not None:
            self._check_attribute_name(name, node, how)
            base = self._resolve(node.args[0])
            if base is not None:
                self._check_member(f"{base}.{name}", node)
            return
        if builtin == "hasattr":
            return
        base = self._resolve(node.args[0])
        if base is not None and not self.denied_members.get(base):
            # A computed name on a module with nothing denied (``getattr(math, op)``) is harmless.
            return
        self.report(
            "security.getattr.dynamic",
            "reflection",
            node,
            f"{builtin}() with a computed attribute name can reach any attribute, including denied ones",
            "use a dict that maps the allowed names to values or functions instead",
        )

    def _check_format_string(self, template: str, node: ast.AST) -> None:
        try:
            fields = [f for _, f, _, _ in _FORMATTER.parse(template) if f]
        except ValueError:
            return
        for field in fields:
            for part in _field_parts(field):
                if (part.startswith("__") and part.endswith("__")) or part in self.denied_attributes:
                    self.report(
                        "security.format_string",
                        "reflection",
                        node,
                        f"format string field {{{field}}} reads attribute {part!r}",
                        "format values you computed; do not reach attributes from a format string",
                    )
                    break


def _field_parts(field: str) -> Iterator[str]:
    """Attribute and index names inside a format field (``0.__class__.__mro__[1]``).

    ``_string.formatter_field_name_split`` is the parser ``str.format`` itself uses, so this reads
    exactly the attributes the format call would read.
    """
    try:
        _, rest = _string.formatter_field_name_split(field)
        parts: list[tuple[bool, Any]] = list(rest)
    except ValueError:
        return
    for _is_attr, key in parts:
        if isinstance(key, str):
            yield key


def check_security(tree: ast.Module, policy: Policy, *, network: bool = False) -> list[Finding]:
    """Every security finding in ``tree`` under ``policy``; ``network``: the tool's definition
    declares hosts (``network.allow``), so the policy's ``network_clients`` may be imported."""
    visitor = _SecurityVisitor(policy, tree, network)
    visitor.visit(tree)
    return visitor.findings
