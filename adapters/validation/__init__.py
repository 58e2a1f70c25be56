"""Code validators: syntax, security and compliance rules for Python, JavaScript and TypeScript.

``build_validator(policy, security_checks=...)`` returns a :class:`PolicyCodeValidator`, the
``CodeValidator`` port's implementation. Policies are data (``default_policy.json``); a file or a
mapping overrides the default key by key. Each category (subprocess, network, filesystem,
dynamic_code, ffi, reflection, process, unlisted) maps to a severity: ``error`` blocks registration,
``warning`` is stored and returned, ``off`` drops the finding.

Rule ids (stable; ``<...>`` is filled in from the code or the policy):

====================================  ========  ===================================================
rule id                               language  what it reports
====================================  ========  ===================================================
syntax.python                         py        code that ``ast.parse``/``compile`` reject
syntax.python.warning                 py        warning: compiler warnings (invalid escapes, ...)
syntax.javascript                     js        code that acorn (Node's own parser) rejects
syntax.typescript                     ts        invalid TypeScript, or invalid JS after type erasure
syntax.typescript.not_erasable        ts        enums, namespaces, parameter properties, ...
security.import.<module>              py js ts  import/require of a denied module (top-level name)
security.import.dynamic               js ts     require/import() with a computed name; require as value
security.attribute.<module>.<name>    py        a denied module member, however it is reached
                                                (``from os import system as s``, ``o = os; o.system``,
                                                ``getattr(os, "sys" + "tem")``)
security.attribute.<name>             py        frame/traceback/code attributes (``f_back``, ``tb_frame``,
                                                ``gi_frame``, ``f_globals``, ...)
security.builtin.<name>               py        denied built-ins (``eval``, ``exec``, ``__import__``,
                                                ``open``, ``globals``, ...), unless shadowed locally
security.dunder                       py        dunder attributes or names outside the allowed list
                                                (``__class__``, ``__subclasses__``, ``__globals__``,
                                                ``__builtins__``), also in getattr and match patterns
security.getattr.dynamic              py        getattr/setattr/delattr with a computed name
security.format_string                py        ``"{0.__class__}".format(x)`` style attribute reads
security.global.<name>                js ts     denied globals (``eval``, ``Function``, ``fetch``, ...)
security.member.<path>                js ts     denied members (``process.binding``, ``process.dlopen``)
security.dynamic_access               js ts     ``globalThis[expr]``-style computed access
security.function_constructor         js ts     ``(function(){}).constructor``, ``x.constructor.constructor``
security.unavailable                  js ts     Node has no parser for the security rules
compliance.entrypoint.missing         all       no top-level function (or export) of that name
compliance.entrypoint.not_function    all       the name exists but is a class or a value
compliance.entrypoint.unverified      js ts     warning: the entrypoint is the result of a call
compliance.schema.param_mismatch      py        signature and input_schema disagree (names, required)
compliance.schema.invalid             all       input/output schema is not valid JSON Schema 2020-12
compliance.size.bytes                 all       code larger than ``limits.max_code_bytes``
compliance.size.lines                 all       more lines than ``limits.max_lines``
validator.internal                    all       the validator itself failed (a bug; never silent)
====================================  ========  ===================================================

Bandit is not used: on the benchmark's 110-line tool one Bandit scan took about 20 ms p50 against
4 ms for this whole validator and a 5 ms budget (it builds a manager, loads its plugins and parses
the file again per scan; ``benchmarks/validation.py`` times it when Bandit is installed), and the
rules above already cover the import, call and reflection patterns it would flag in tool code.

JavaScript and TypeScript are parsed by acorn, the parser Node ships for its REPL (loaded with
``--expose-internals``), so the rules see a real ESTree AST with exact positions and nothing is
installed from npm; TypeScript first goes through ``module.stripTypeScriptTypes``, which rejects
syntax that cannot be erased and keeps every position. A Node without acorn still gets a V8
syntax check, and security is then reported as unavailable (an error), never silently skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolrt.adapters.validation.node_checker import CheckerUnavailable, NodeChecker
from toolrt.adapters.validation.policy import Policy, PolicyError, load_policy
from toolrt.adapters.validation.validator import PolicyCodeValidator
from toolrt.logs import get_logger

log = get_logger(__name__)

__all__ = [
    "CheckerUnavailable",
    "NodeChecker",
    "Policy",
    "PolicyCodeValidator",
    "PolicyError",
    "build_validator",
    "load_policy",
]


def build_validator(
    policy: str | Mapping[str, Any] | None = "default",
    *,
    security_checks: bool = True,
    node_checker: NodeChecker | None = None,
) -> PolicyCodeValidator:
    """A validator for ``policy``: ``"default"``, a path to a JSON policy file, or a mapping of overrides.

    ``security_checks=False`` skips the security rules (syntax and compliance always run); it is
    part of the policy version and logged as a warning. Raises :class:`PolicyError` for a bad policy.
    """
    effective = load_policy(policy, security_checks=security_checks)
    if not security_checks:
        log.warning(
            "code validation runs without security rules",
            policy_version=effective.version,
            reason="security_checks=False; only syntax and compliance are checked",
        )
    return PolicyCodeValidator(effective, node_checker=node_checker)
