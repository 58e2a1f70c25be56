"""The dependency-injector containers: one provider per port, a Selector per profile.

Adapters are imported inside their factory functions, so that a profile only needs its own optional
dependencies (boto3 for ``aws``, the mcp SDK for ``serve``) and nothing is done at import time.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dependency_injector import containers, providers

from toolrt.adapters.embedders import build_embedder
from toolrt.adapters.events import RecordingEventPublisher
from toolrt.adapters.memory import InMemoryArtifactStore, InMemoryMetrics, InMemoryToolRepository, InProcessGateway
from toolrt.adapters.system import SystemClock, UuidIdGenerator
from toolrt.adapters.wire_formats import ModelApiFormats
from toolrt.application import RuntimePorts, ToolRuntime
from toolrt.application.requirements import NoEnvironments
from toolrt.domain import ExecutionError, IsolationLevel, Language, MissingDependencyError, ValidationError
from toolrt.logs import get_logger
from toolrt.ports import (
    ArtifactStore,
    CancelSignal,
    CodeValidator,
    Embedder,
    EnvironmentBuilder,
    MetricsSink,
    Sandbox,
    SandboxRequest,
    SandboxResult,
    ToolGateway,
    ToolRepository,
    Tracer,
)
from toolrt.services import ServicesContainer
from toolrt.settings import Settings, SettingsError

if TYPE_CHECKING:
    from toolrt.adapters.aws.clients import AwsClients

log = get_logger(__name__)


# -- factories for adapters with optional dependencies or settings -------------------------------
def require(module: str, extra: str, feature: str) -> None:
    """Raise :class:`MissingDependencyError` naming ``extra`` when ``module`` cannot be imported."""
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(feature, module, extra)


def _sqlite_repository(settings: Settings) -> ToolRepository:
    from toolrt.adapters.local.sqlite_repository import SqliteToolRepository

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteToolRepository(settings.data_dir / "toolrt.sqlite", record_sync_s=settings.execution_record_sync_s)


def _file_artifacts(settings: Settings) -> ArtifactStore:
    from toolrt.adapters.local.file_artifacts import FileArtifactStore

    return FileArtifactStore(settings.data_dir / "artifacts")


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


def _subprocess_sandbox(settings: Settings) -> Sandbox:
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


def _pip_environments(settings: Settings) -> EnvironmentBuilder:
    from toolrt.adapters.local.environments import LocalEnvironments, default_environments_dir

    root = settings.environments_dir or default_environments_dir(settings.data_dir)
    return LocalEnvironments(
        root, cache_bytes=settings.environment_cache_mb * 1024 * 1024, index_hosts=settings.index_hosts
    )


def _code_interpreter_environments(settings: Settings) -> EnvironmentBuilder:
    # Locks resolve with the local adapter's pip driver (for the interpreter's Python when it is
    # named); the wheels go to Code Interpreter sessions, which install them.
    from toolrt.adapters.aws.environments import CodeInterpreterEnvironments, interpreter_target
    from toolrt.adapters.local.environments import PipEnvironments, default_environments_dir

    root = settings.environments_dir or default_environments_dir(settings.data_dir)
    target, platform = (
        interpreter_target(settings.code_interpreter_python) if settings.code_interpreter_python else ((), None)
    )
    resolver = PipEnvironments(
        root / "code-interpreter" / "resolver", target=target, platform=platform, index_hosts=settings.index_hosts
    )
    return CodeInterpreterEnvironments(resolver, root, cache_bytes=settings.environment_cache_mb * 1024 * 1024)


def _no_environments(settings: Settings) -> EnvironmentBuilder:
    return NoEnvironments(settings.profile)


def _inprocess_sandbox(settings: Settings) -> Sandbox:
    from toolrt.adapters.memory import InProcessSandbox

    return InProcessSandbox(isolation=settings.isolation)


def _validator(settings: Settings) -> CodeValidator:
    from toolrt.adapters.validation import build_validator

    if not settings.security_checks:
        log.warning("security checks are off: only syntax and compliance rules apply to new code")
    return build_validator(settings.validation_policy, security_checks=settings.security_checks)


def _aws_clients(settings: Settings) -> AwsClients:
    require("boto3", "aws", "the aws backends (DynamoDB, S3, AgentCore)")
    from toolrt.adapters.aws import make_clients

    # Code Interpreter calls are read for longer than the longest tool may run.
    return make_clients(
        settings.aws_region, settings.aws_endpoint_url, invoke_read_timeout_s=settings.max_timeout_s + 60.0
    )


def _dynamodb_repository(settings: Settings, clients: AwsClients) -> ToolRepository:
    from toolrt.adapters.aws import DynamoDbToolRepository

    return DynamoDbToolRepository(clients.dynamodb, settings.dynamodb_table)


def _s3_artifacts(settings: Settings, clients: AwsClients) -> ArtifactStore:
    from toolrt.adapters.aws import S3ArtifactStore

    return S3ArtifactStore(clients.s3, settings.s3_bucket)


def _agentcore_gateway(settings: Settings, clients: AwsClients) -> ToolGateway:
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


def _code_interpreter(settings: Settings, clients: AwsClients) -> Sandbox:
    from toolrt.adapters.aws.sandbox import AgentCoreCodeInterpreterSandbox

    return AgentCoreCodeInterpreterSandbox(
        clients.agentcore,
        settings.code_interpreter_id,
        egress=settings.code_interpreter_egress,
        endpoint_url=settings.aws_endpoint_url,
    )


def _local_gateway(settings: Settings) -> ToolGateway:
    # The MCP server reads published tools from this in-process registry and hears its changes.
    return InProcessGateway()


def _cloudwatch_metrics(settings: Settings) -> MetricsSink:
    require("boto3", "aws", "CloudWatch metrics")
    from toolrt.adapters.aws.metrics import CloudWatchEmfMetrics, emf_wanted

    # A library does not write to its application's stderr unasked: embedded-metric-format lines only
    # where CloudWatch Logs turns them into metrics (inside Lambda), or when the settings ask.
    if not emf_wanted(settings.metrics_emf):
        return InMemoryMetrics()
    # stderr, so that stdout stays the CLI's and MCP's own. The sink keeps the same in-process
    # snapshot as the memory one (rt.metrics()).
    return CloudWatchEmfMetrics(write=lambda line: print(line, file=sys.stderr, flush=True))


def _telemetry_on(settings: Settings) -> bool:
    from toolrt.adapters.telemetry import opentelemetry_available

    if settings.telemetry == "off":
        return False
    return settings.telemetry == "opentelemetry" or opentelemetry_available()


def _tracer(settings: Settings) -> Tracer | None:
    if not _telemetry_on(settings):
        return None
    from toolrt.adapters.telemetry import OpenTelemetryTracer

    return OpenTelemetryTracer()  # MissingDependencyError (extra "otel") when required and absent


def _observed_metrics(settings: Settings, sink: MetricsSink) -> MetricsSink:
    if not _telemetry_on(settings):
        return sink
    from toolrt.adapters.telemetry import OpenTelemetryMetrics

    return OpenTelemetryMetrics(sink)


# -- containers ------------------------------------------------------------------------------
class SystemContainer(containers.DeclarativeContainer):
    """Time, ids, metrics and events; metrics go to CloudWatch as well on the aws profile."""

    config = providers.Configuration()
    settings = providers.Dependency(instance_of=Settings)
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(UuidIdGenerator)
    profile_metrics: providers.Provider[MetricsSink] = providers.Selector(
        config.profile,
        memory=providers.Singleton(InMemoryMetrics),
        local=providers.Singleton(InMemoryMetrics),
        aws=providers.Singleton(_cloudwatch_metrics, settings),
    )
    # OpenTelemetry instruments as well, when telemetry is on (see Settings.telemetry).
    metrics: providers.Provider[MetricsSink] = providers.Singleton(_observed_metrics, settings, profile_metrics)
    tracer: providers.Provider[Tracer | None] = providers.Singleton(_tracer, settings)
    events = providers.Singleton(RecordingEventPublisher)


class AwsContainer(containers.DeclarativeContainer):
    """boto3 clients, built only when an AWS adapter is selected."""

    settings = providers.Dependency(instance_of=Settings)
    clients = providers.Singleton(_aws_clients, settings)


class AdaptersContainer(containers.DeclarativeContainer):
    """One Selector per port, keyed by the backend the settings choose for it."""

    config = providers.Configuration()
    settings = providers.Dependency(instance_of=Settings)
    aws = providers.Container(AwsContainer, settings=settings)

    repository: providers.Provider[ToolRepository] = providers.Selector(
        config.repository,
        memory=providers.Singleton(InMemoryToolRepository),
        local=providers.Singleton(_sqlite_repository, settings),
        aws=providers.Singleton(_dynamodb_repository, settings, aws.clients),
    )
    artifacts: providers.Provider[ArtifactStore] = providers.Selector(
        config.artifacts,
        memory=providers.Singleton(InMemoryArtifactStore),
        local=providers.Singleton(_file_artifacts, settings),
        aws=providers.Singleton(_s3_artifacts, settings, aws.clients),
    )
    sandbox: providers.Provider[Sandbox] = providers.Selector(
        config.sandbox,
        memory=providers.Singleton(_subprocess_sandbox, settings),
        local=providers.Singleton(_subprocess_sandbox, settings),
        inprocess=providers.Singleton(_inprocess_sandbox, settings),
        aws=providers.Singleton(_code_interpreter, settings, aws.clients),
    )
    gateway: providers.Provider[ToolGateway] = providers.Selector(
        config.gateway,
        memory=providers.Singleton(InProcessGateway),
        local=providers.Singleton(_local_gateway, settings),
        aws=providers.Singleton(_agentcore_gateway, settings, aws.clients),
    )
    validator = providers.Singleton(_validator, settings)
    formats = providers.Singleton(ModelApiFormats)
    # Requirements are installed where tools run: the local sandbox's pip environments, or Code
    # Interpreter sessions (from wheels downloaded here). The memory profile (a test harness with no
    # data folder) refuses them, naming the local profile.
    environments: providers.Provider[EnvironmentBuilder] = providers.Selector(
        config.sandbox,
        memory=providers.Singleton(_no_environments, settings),
        local=providers.Singleton(_pip_environments, settings),
        inprocess=providers.Singleton(_no_environments, settings),
        aws=providers.Singleton(_code_interpreter_environments, settings),
    )


class RuntimeContainer(containers.DeclarativeContainer):
    """The whole application: settings in, a ToolRuntime out."""

    config = providers.Configuration()
    settings = providers.Dependency(instance_of=Settings)
    system = providers.Container(SystemContainer, settings=settings, config=config)
    adapters = providers.Container(AdaptersContainer, settings=settings, config=config)
    # No embedder by default: search is lexical; search_embedder="minilm" or connect(embedder=...)
    # makes it hybrid.
    embedder: providers.Provider[Embedder | None] = providers.Singleton(
        build_embedder, settings.provided.search_embedder
    )

    ports = providers.Singleton(
        RuntimePorts,
        repository=adapters.repository,
        artifacts=adapters.artifacts,
        validator=adapters.validator,
        sandbox=adapters.sandbox,
        gateway=adapters.gateway,
        clock=system.clock,
        ids=system.ids,
        metrics=system.metrics,
        events=system.events,
        embedder=embedder,
        tracer=system.tracer,
        environments=adapters.environments,
        formats=adapters.formats,
    )
    policy = providers.Singleton(Settings.execution_policy, settings)
    gc_policy = providers.Singleton(Settings.gc_policy, settings)
    # The use cases, built on these ports (toolrt.services: the facade only delegates to them).
    services = providers.Container(
        ServicesContainer, ports=ports, policy=policy, gc_policy=gc_policy, profile=settings.provided.profile
    )
    runtime: providers.Provider[ToolRuntime] = services.runtime


def build_container(settings: Settings) -> RuntimeContainer:
    """A container wired for ``settings``: each port's backend is the profile's or its override."""
    container = RuntimeContainer(settings=settings)
    backends = {port: settings.backend(port) for port in ("repository", "artifacts", "sandbox", "gateway")}
    container.config.from_dict({"profile": settings.profile, **backends})
    return container


def connect(
    profile: str | None = None, *, embedder: Embedder | None = None, tracer: Tracer | None = None, **settings: Any
) -> ToolRuntime:
    """A ToolRuntime on ``profile`` (``memory``, ``local`` or ``aws``; default: ``TOOLRT_PROFILE`` or local).

    Keyword arguments are :class:`~toolrt.settings.Settings` fields and win over ``TOOLRT_*``
    environment variables. ``toolrt.connect("aws", sandbox="local")`` overrides one port's backend.
    ``embedder`` (a :class:`~toolrt.ports.Embedder`) makes ``search_tools`` hybrid. ``tracer`` (a
    :class:`~toolrt.ports.Tracer`, such as ``OpenTelemetryTracer(provider)``) replaces the one the
    ``telemetry`` setting chooses.
    """
    if profile is not None:
        settings["profile"] = profile
    resolved = Settings.load(settings)
    container = build_container(resolved)
    if embedder is not None:
        if not isinstance(embedder, Embedder):
            raise ValidationError(
                f"embedder must have a 'model' name and an 'embed(texts)' method, got {type(embedder).__name__}"
            )
        container.embedder.override(providers.Object(embedder))
    if tracer is not None:
        if not isinstance(tracer, Tracer):
            raise ValidationError(f"tracer must have a 'span(name, attributes)' method, got {type(tracer).__name__}")
        container.system.tracer.override(providers.Object(tracer))
    runtime: ToolRuntime = container.runtime()
    log.debug(
        "toolrt connected",
        profile=resolved.profile,
        **{p: resolved.backend(p) for p in ("repository", "artifacts", "sandbox", "gateway")},
    )
    return runtime
