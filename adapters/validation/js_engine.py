"""Which JavaScript engine a tool may run on, proved from its code at registration.

QuickJS (``quickjs-ng``) runs standard JavaScript (ES2023) and what the toolrt harness adds: ``console``,
``setTimeout``/``setInterval`` and their ``clear*``, ``module.exports``/``exports``, ``atob``/``btoa``,
``queueMicrotask`` and ``performance.now``. It has none of Node's modules or Node-only globals, no
``Intl`` and no locale data, no web platform APIs (``fetch``, ``URL``, ``TextEncoder``...). A tool
goes to QuickJS only when the checker's facts (from the real AST) show none of those: any ``require``
or ``import``, any use of the names in :data:`NODE_ONLY_GLOBALS`, any locale-dependent method
(:data:`LOCALE_METHODS`: QuickJS ignores the locale where Node applies it), and any computed access
to or aliasing of ``globalThis`` (which could reach any of them) keep it on Node. The choice is made
once, stored with the artifact, and never discovered at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolrt.adapters.validation.policy import Policy
from toolrt.domain import Finding, Severity

__all__ = ["ENGINE_SETTINGS", "LOCALE_METHODS", "NODE_ONLY_GLOBALS", "choose", "setting"]

#: The policy's ``javascript.engine``: ``auto`` (QuickJS where proved safe), ``node`` (always Node),
#: ``quickjs`` (always QuickJS: a tool that needs Node is refused at registration, with a finding).
ENGINE_SETTINGS = ("auto", "node", "quickjs")

#: Globals Node gives a tool that QuickJS does not (the harness's console, timers, module and
#: exports excepted), each with what it is, for the finding.
NODE_ONLY_GLOBALS: dict[str, str] = {
    "require": "Node's module loader",
    "process": "Node's process object",
    "Buffer": "Node's Buffer",
    "global": "Node's global object",
    "__dirname": "Node's module path",
    "__filename": "Node's module path",
    "setImmediate": "a Node timer",
    "clearImmediate": "a Node timer",
    "fetch": "the fetch API",
    "Intl": "Intl (QuickJS has no locale data)",
    "TextEncoder": "TextEncoder",
    "TextDecoder": "TextDecoder",
    "URL": "the URL API",
    "URLSearchParams": "the URL API",
    "structuredClone": "structuredClone",
    "crypto": "the Web Crypto API",
    "AbortController": "AbortController",
    "AbortSignal": "AbortSignal",
    "Blob": "Blob",
    "File": "File",
    "FormData": "FormData",
    "Headers": "the fetch API",
    "Request": "the fetch API",
    "Response": "the fetch API",
    "EventTarget": "EventTarget",
    "Event": "Event",
    "CustomEvent": "CustomEvent",
    "MessageChannel": "MessageChannel",
    "MessagePort": "MessagePort",
    "BroadcastChannel": "BroadcastChannel",
    "WebSocket": "WebSocket",
    "navigator": "navigator",
    "WebAssembly": "WebAssembly",
    "Worker": "Worker",
    "ReadableStream": "web streams",
    "WritableStream": "web streams",
    "TransformStream": "web streams",
    "CompressionStream": "web streams",
    "DecompressionStream": "web streams",
    "XMLHttpRequest": "XMLHttpRequest",
}

#: Methods whose result depends on locale data, which QuickJS does not have.
LOCALE_METHODS = (
    "toLocaleString",
    "toLocaleDateString",
    "toLocaleTimeString",
    "toLocaleUpperCase",
    "toLocaleLowerCase",
    "localeCompare",
)

_GUARDED = ("globalThis", "global", "process", "window", "self")


def setting(policy: Policy) -> str:
    """The policy's engine setting (``javascript.engine``; ``auto`` when absent)."""
    return str(policy.section("javascript").get("engine", "auto"))


def _needs(facts: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """What in the code needs Node: (what, line, column), in source order."""
    found: list[tuple[str, int, int]] = []

    def add(what: str, item: Mapping[str, Any]) -> None:
        found.append((what, int(item.get("line") or 0), int(item.get("column") or 0)))

    for item in facts.get("modules", []):
        name = item.get("name")
        add(f"{item.get('kind', 'import')} of module {name!r}" if name else "a module loaded by a computed name", item)
    for item in facts.get("globals", []):
        name = str(item.get("name"))
        if name in NODE_ONLY_GLOBALS:
            add(f"{name!r} ({NODE_ONLY_GLOBALS[name]})", item)
    for item in facts.get("members", []):
        path = str(item.get("path"))
        root, _, rest = path.partition(".")
        if root in ("globalThis", "global") and rest.split(".")[0].split("[")[0] in NODE_ONLY_GLOBALS:
            add(f"{path!r}", item)
        elif root.split("[")[0] in _GUARDED and "[" in path.split(".")[0]:
            add(f"computed access {path!r} (it could reach any global)", item)
    for item in facts.get("aliases", []):
        add(f"{item.get('name')!r} used as a value (it could reach any global)", item)
    for item in facts.get("renamedExports", []):
        add(f"the export {item.get('name')!r} under another name than its declaration", item)
    for item in facts.get("properties", []):
        if item.get("name") in LOCALE_METHODS:
            add(f".{item.get('name')} (locale-dependent; QuickJS has no locale data)", item)
    return sorted(found, key=lambda f: (f[1], f[2]))


def choose(facts: Mapping[str, Any], policy: Policy) -> tuple[str, list[Finding]]:
    """The engine for code with these checker ``facts`` under ``policy``, and the findings that say why.

    Under ``auto`` the findings are informational (one per use that keeps the tool on Node); under
    ``quickjs`` they are errors, so a tool that could not run there is refused at registration.
    """
    wanted = setting(policy)
    if wanted == "node":
        return "node", []
    needs = _needs(facts)
    if not needs:
        return "quickjs", []
    if wanted == "quickjs":
        return "quickjs", [
            Finding(
                "engine.quickjs.node_api",
                Severity.ERROR,
                f"this runtime runs JavaScript on QuickJS only, which has no {what}",
                line,
                column,
                "write it in standard JavaScript (no Node modules or Node-only globals, no locale data)",
            )
            for what, line, column in needs
        ]
    what, line, column = needs[0]
    more = f" (and {len(needs) - 1} more)" if len(needs) > 1 else ""
    return "node", [
        Finding(
            "engine.node",
            Severity.INFO,
            f"runs on Node.js, not the faster QuickJS engine: it uses {what}{more}",
            line,
            column,
            "standard JavaScript alone (no Node modules or Node-only globals, no locale data) runs on QuickJS",
        )
    ]
