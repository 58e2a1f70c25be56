"""Backends: a name mapped to the factory of one port's adapter, in one place, open to other packages.

``connect(profile, repository=..., artifacts=..., sandbox=..., gateway=...)`` and the ``TOOLRT_*``
settings of the same names choose a backend per port by name; the profile's name is the default.
toolrt's own backends are listed here (:data:`BUILTIN`). Another distribution adds one without
touching toolrt, through the ``toolrt.backends`` entry-point group of its ``pyproject.toml``::

    [project.entry-points."toolrt.backends"]
    "sandbox.gvisor" = "toolrt_gvisor:BACKEND"

where ``BACKEND`` is a :class:`Backend` (``Backend("sandbox", "gvisor", build)``); the entry's name
is ``<port>.<name>``. ``toolrt.connect(sandbox="gvisor")`` then builds it, and a sandbox that says
it isolates (``isolating=True``) gets toolrt's isolation suite run against it
(``toolrt.contracts.SandboxIsolationContract``). An instance instead of a name
(``connect(sandbox=MySandbox())``) needs no registration at all.

Adapters are imported inside the factories, so that a profile only needs its own optional
dependencies (boto3 for ``aws``) and nothing is done at import time.
"""

from __future__ import annotations

import functools
import importlib.metadata
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from toolrt.application.requirements import NoEnvironments
from toolrt.domain import ExecutionError, IsolationLevel, Language
from toolrt.logs import get_logger
from toolrt.ports import (
    ArtifactStore,
    CancelSignal,
    EnvironmentBuilder,
    Sandbox,
    SandboxRequest,
    SandboxResult,
    ToolGateway,
    ToolRepository,
)
from toolrt.settings import Settings, SettingsError

if TYPE_CHECKING:
    from toolrt.adapters.aws.clients import AwsClients

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "PORTS",
    "Backend",
    "BackendParts",
    "DeferredSandbox",
    "backends",
    "build_backend",
    "build_environments",
    "find_backend",
]

log = get_logger(__name__)

#: The ports a backend is chosen for by name.
PORTS = ("repository", "artifacts", "sandbox", "gateway")
#: The entry-point group other distributions register backends in.
ENTRY_POINT_GROUP = "toolrt.backends"


@attrs.frozen
class BackendParts:
    """What a backend's factory builds on: the settings, and what the adapters of one runtime share."""

    settings: Settings
    #: The AWS clients (boto3), made at the first call and shared by every aws backend.
    aws_clients: Callable[[], AwsClients]


@attrs.frozen
class Backend:
    """One way to provide one port: ``build(parts)`` makes the adapter."""

    port: str = attrs.field(validator=attrs.validators.in_(PORTS))
    name: str = attrs.field(validator=attrs.validators.matches_re(r"[a-z][a-z0-9_-]{0,31}"))
    build: Callable[[BackendParts], Any]
    #: A sandbox only: it isolates tools from the host and from each other, and promises to pass
    #: toolrt's isolation suite (which toolrt's tests run against every such backend).
    isolating: bool = False
    #: A sandbox only: what installs tools' requirements where it runs them (None: they are refused).
    environments: Callable[[BackendParts], EnvironmentBuilder] | None = None


# -- toolrt's own backends -------------------------------------------------------------------
def _sqlite_repository(parts: BackendParts) -> ToolRepository:
    from toolrt.adapters.local.sqlite_repository import SqliteToolRepository

    settings = parts.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteToolRepository(settings.data_dir / "toolrt.sqlite", record_sync_s=settings.execution_record_sync_s)


def _memory_repository(parts: BackendParts) -> ToolRepository:
    from toolrt.adapters.memory import InMemoryToolRepository

    return InMemoryToolRepository()


def _dynamodb_repository(parts: BackendParts) -> ToolRepository:
    clients = parts.aws_clients()  # first: without boto3 it says which extra to install
    from toolrt.adapters.aws import DynamoDbToolRepository

    return DynamoDbToolRepository(clients.dynamodb, parts.settings.dynamodb_table)


def _memory_artifacts(parts: BackendParts) -> ArtifactStore:
    from toolrt.adapters.memory import InMemoryArtifactStore

    return InMemoryArtifactStore()


def _file_artifacts(parts: BackendParts) -> ArtifactStore:
    from toolrt.adapters.local.file_artifacts import FileArtifactStore

    return FileArtifactStore(parts.settings.data_dir / "artifacts")


def _s3_artifacts(parts: BackendParts) -> ArtifactStore:
    clients = parts.aws_clients()  # first: without boto3 it says which extra to install
    from toolrt.adapters.aws import S3ArtifactStore

    return S3ArtifactStore(clients.s3, parts.settings.s3_bucket)


class DeferredSandbox:
    """A sandbox built at its first use, so that a runtime that never runs a tool (``toolrt list``,
    a registration without examples) does not probe the machine or warm workers for nothing."""

    def __init__(self, build: Callable[[], Sandbox]) -> None:
        self._build = build
        self._sandbox: Sandbox | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def built(self) -> Sandbox:
        """The sandbox, built now if it was not yet."""
        with self._lock:
            if self._closed:
                raise ExecutionError("the sandbox is closed")
            if self._sandbox is None:
                self._sandbox = self._build()
            return self._sandbox

    @property
    def isolation(self) -> IsolationLevel:
        return self.built.isolation

    def supports(self, language: Language) -> bool:
        return self.built.supports(language)

    def run(self, request: SandboxRequest, cancel: CancelSignal | None = None) -> SandboxResult:
        return self.built.run(request, cancel)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            sandbox.close()

    def __getattr__(self, name: str) -> Any:
        # What else the sandbox offers (doctor's guards and engines, say) is the built one's.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.built, name)


def _subprocess_sandbox(parts: BackendParts) -> Sandbox:
    settings = parts.settings

    def build() -> Sandbox:
        from toolrt.adapters.local.sandbox import SubprocessSandbox

        return SubprocessSandbox(
            isolation=settings.isolation,
            workers=settings.sandbox_workers,
            tenancy=settings.sandbox_tenancy,
            js_engine=settings.sandbox_js_engine,
            max_zygotes=settings.sandbox_max_zygotes,
            zygote_memory_mb=settings.sandbox_zygote_memory_mb,
            zygote_idle_s=settings.sandbox_zygote_idle_s,
        )

    # isolation="strict" promises to refuse at once where the machine cannot isolate: built now.
    return build() if settings.isolation == "strict" else DeferredSandbox(build)


def _inprocess_sandbox(parts: BackendParts) -> Sandbox:
    from toolrt.adapters.memory import InProcessSandbox

    return InProcessSandbox(isolation=parts.settings.isolation)


def _code_interpreter(parts: BackendParts) -> Sandbox:
    clients = parts.aws_clients()  # first: without boto3 it says which extra to install
    from toolrt.adapters.aws.sandbox import AgentCoreCodeInterpreterSandbox

    settings = parts.settings
    return AgentCoreCodeInterpreterSandbox(
        clients.agentcore,
        settings.code_interpreter_id,
        egress=settings.code_interpreter_egress,
        endpoint_url=settings.aws_endpoint_url,
    )


def _pip_environments(parts: BackendParts) -> EnvironmentBuilder:
    from toolrt.adapters.local.environments import LocalEnvironments, default_environments_dir

    settings = parts.settings
    root = settings.environments_dir or default_environments_dir(settings.data_dir)
    return LocalEnvironments(
        root, cache_bytes=settings.environment_cache_mb * 1024 * 1024, index_hosts=settings.index_hosts
    )


def _code_interpreter_environments(parts: BackendParts) -> EnvironmentBuilder:
    # Locks resolve with the local adapter's pip driver (for the interpreter's Python when it is
    # named); the wheels go to Code Interpreter sessions, which install them.
    from toolrt.adapters.aws.environments import CodeInterpreterEnvironments, interpreter_target
    from toolrt.adapters.local.environments import PipEnvironments, default_environments_dir

    settings = parts.settings
    root = settings.environments_dir or default_environments_dir(settings.data_dir)
    target, platform = (
        interpreter_target(settings.code_interpreter_python) if settings.code_interpreter_python else ((), None)
    )
    resolver = PipEnvironments(
        root / "code-interpreter" / "resolver", target=target, platform=platform, index_hosts=settings.index_hosts
    )
    return CodeInterpreterEnvironments(resolver, root, cache_bytes=settings.environment_cache_mb * 1024 * 1024)


def _memory_gateway(parts: BackendParts) -> ToolGateway:
    from toolrt.adapters.memory import InProcessGateway

    # The MCP server reads published tools from this in-process registry and hears its changes.
    return InProcessGateway()


def _agentcore_gateway(parts: BackendParts) -> ToolGateway:
    settings, clients = parts.settings, parts.aws_clients()  # first: without boto3, names the extra
    from toolrt.adapters.aws import AgentCoreGateway
    from toolrt.adapters.aws.provision import find_gateway_id, find_router_arn

    gateway_id = settings.gateway_id or find_gateway_id(clients.agentcore_control, settings.gateway_name)
    lambda_arn = settings.gateway_lambda_arn or find_router_arn(clients.client("lambda"), settings.router_function)
    if not gateway_id or not lambda_arn:
        missing = f"gateway {settings.gateway_name!r}" if not gateway_id else f"function {settings.router_function!r}"
        raise SettingsError(
            f"the aws gateway: no {missing} in {settings.aws_region}; `toolrt aws provision` creates it "
            "(or name existing ones with TOOLRT_GATEWAY_NAME / TOOLRT_ROUTER_FUNCTION, or give "
            "TOOLRT_GATEWAY_ID and TOOLRT_GATEWAY_LAMBDA_ARN)"
        )
    # An emulator (moto) leaves updated targets UPDATING for ever: do not wait for READY there.
    ready_timeout_s = 0.0 if settings.aws_endpoint_url else 120.0
    leases = None
    if settings.backend("repository") == "aws":
        from toolrt.adapters.aws.leases import DynamoDbLeases

        # Shards are rewritten whole: processes sharing the gateway take turns through the table.
        leases = DynamoDbLeases(clients.dynamodb, settings.dynamodb_table)
    return AgentCoreGateway(
        clients.agentcore_control, gateway_id, lambda_arn, ready_timeout_s=ready_timeout_s, leases=leases
    )


#: toolrt's own backends. ``memory`` runs tools in the local sandbox too: a test harness whose
#: tools really run, isolated, with nothing written to disk.
BUILTIN: tuple[Backend, ...] = (
    Backend("repository", "memory", _memory_repository),
    Backend("repository", "local", _sqlite_repository),
    Backend("repository", "aws", _dynamodb_repository),
    Backend("artifacts", "memory", _memory_artifacts),
    Backend("artifacts", "local", _file_artifacts),
    Backend("artifacts", "aws", _s3_artifacts),
    Backend("sandbox", "local", _subprocess_sandbox, isolating=True, environments=_pip_environments),
    Backend("sandbox", "memory", _subprocess_sandbox, isolating=True),
    # Python tools in this very process: trusted test code only (isolation "none").
    Backend("sandbox", "inprocess", _inprocess_sandbox),
    # Isolation is AgentCore's (remote); the suite needs a local host to look from, so it is not claimed.
    Backend("sandbox", "aws", _code_interpreter, environments=_code_interpreter_environments),
    Backend("gateway", "memory", _memory_gateway),
    Backend("gateway", "local", _memory_gateway),
    Backend("gateway", "aws", _agentcore_gateway),
)


# -- the registry ----------------------------------------------------------------------------
@functools.cache
def _installed() -> tuple[Backend, ...]:
    """The backends other distributions register (loaded once; a broken one is skipped, logged)."""
    found: list[Backend] = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            backend = entry.load()
        except Exception as exc:  # another package's import error must not stop toolrt
            log.warning("a toolrt backend failed to load", entry=entry.name, error=f"{type(exc).__name__}: {exc}")
            continue
        if not isinstance(backend, Backend) or entry.name != f"{backend.port}.{backend.name}":
            log.warning(
                "a toolrt.backends entry point is not a Backend named <port>.<name>",
                entry=entry.name,
                value=type(backend).__name__,
            )
            continue
        found.append(backend)
    return tuple(found)


def backends(port: str) -> Mapping[str, Backend]:
    """Every backend of ``port`` by name: toolrt's own, then those installed packages add
    (an installed one does not replace a built-in of the same name)."""
    if port not in PORTS:
        raise ValueError(f"port must be one of {', '.join(PORTS)}, got {port!r}")
    chosen: dict[str, Backend] = {}
    for backend in (*BUILTIN, *_installed()):
        if backend.port == port:
            chosen.setdefault(backend.name, backend)
    return chosen


def find_backend(port: str, name: str) -> Backend:
    """The backend ``name`` of ``port``; SettingsError naming the known ones otherwise."""
    known = backends(port)
    backend = known.get(name)
    if backend is None:
        raise SettingsError(
            f"{port}={name!r} is not one of {', '.join(sorted(known))} (a package may add one through "
            f"the {ENTRY_POINT_GROUP!r} entry points; none installed is named so)"
        )
    return backend


def build_backend(port: str, name: str, parts: BackendParts) -> Any:
    """The adapter of ``port`` that backend ``name`` builds."""
    return find_backend(port, name).build(parts)


def build_environments(sandbox: str, parts: BackendParts) -> EnvironmentBuilder:
    """What installs requirements for sandbox backend ``sandbox``; one that installs nothing refuses
    requirements, naming the profile."""
    make = find_backend("sandbox", sandbox).environments
    if make is None:
        return NoEnvironments(parts.settings.profile)
    return make(parts)
