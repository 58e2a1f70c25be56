"""The dependency-injector containers: one provider per port, built by the backend the settings name.

The backends (which adapter a name stands for) are ``toolrt.backends``; the use cases are built by
``toolrt.services``. Adapters are imported inside their factory functions, so that a profile only
needs its own optional dependencies (boto3 for ``aws``, the mcp SDK for ``serve``) and nothing is
done at import time.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import TYPE_CHECKING, Any

from dependency_injector import containers, providers

from toolrt.adapters.embedders import build_embedder
from toolrt.adapters.events import RecordingEventPublisher
from toolrt.adapters.memory import InMemoryMetrics
from toolrt.adapters.system import SystemClock, UuidIdGenerator
from toolrt.adapters.wire_formats import ModelApiFormats
from toolrt.application import RuntimePorts, ToolRuntime
from toolrt.application.requirements import NoEnvironments
from toolrt.backends import PORTS as BACKEND_PORTS
from toolrt.backends import BackendParts, build_backend, build_environments
from toolrt.domain import MissingDependencyError, ValidationError
from toolrt.logs import get_logger
from toolrt.ports import (
    ArtifactStore,
    CodeValidator,
    Embedder,
    EnvironmentBuilder,
    MetricsSink,
    Sandbox,
    ToolGateway,
    ToolRepository,
    Tracer,
)
from toolrt.services import ServicesContainer
from toolrt.settings import Settings

if TYPE_CHECKING:
    from toolrt.adapters.aws.clients import AwsClients

log = get_logger(__name__)


# -- factories for adapters with optional dependencies or settings -------------------------------
def require(module: str, extra: str, feature: str) -> None:
    """Raise :class:`MissingDependencyError` naming ``extra`` when ``module`` cannot be imported."""
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(feature, module, extra)


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
    """One provider per port: the backend the settings name for it (toolrt.backends builds it)."""

    config = providers.Configuration()
    settings = providers.Dependency(instance_of=Settings)
    aws = providers.Container(AwsContainer, settings=settings)
    parts = providers.Singleton(BackendParts, settings=settings, aws_clients=aws.clients.provider)

    repository: providers.Provider[ToolRepository] = providers.Singleton(
        build_backend, "repository", config.repository, parts
    )
    artifacts: providers.Provider[ArtifactStore] = providers.Singleton(
        build_backend, "artifacts", config.artifacts, parts
    )
    sandbox: providers.Provider[Sandbox] = providers.Singleton(build_backend, "sandbox", config.sandbox, parts)
    gateway: providers.Provider[ToolGateway] = providers.Singleton(build_backend, "gateway", config.gateway, parts)
    validator = providers.Singleton(_validator, settings)
    formats = providers.Singleton(ModelApiFormats)
    # Requirements are installed where tools run: the sandbox backend says by what (the local
    # sandbox's pip environments, Code Interpreter sessions); one that says nothing refuses them.
    environments: providers.Provider[EnvironmentBuilder] = providers.Singleton(
        build_environments, config.sandbox, parts
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
    backends = {port: settings.backend(port) for port in BACKEND_PORTS}
    container.config.from_dict({"profile": settings.profile, **backends})
    return container


# The ports connect() also takes as instances, each with what an instance must offer.
_PORT_INSTANCES: dict[str, tuple[type, str]] = {
    "repository": (ToolRepository, "a ToolRepository (every storage port in one object)"),
    "artifacts": (ArtifactStore, "an ArtifactStore"),
    "sandbox": (Sandbox, "a Sandbox (isolation, supports, run, close)"),
    "gateway": (ToolGateway, "a ToolGateway"),
    "validator": (CodeValidator, "a CodeValidator"),
    "environments": (EnvironmentBuilder, "an EnvironmentBuilder"),
}


def _port_instances(given: dict[str, Any]) -> dict[str, Any]:
    """The adapters among ``given`` (taken out of it): a port's value that is not a backend's name."""
    instances: dict[str, Any] = {}
    for port, (protocol, what) in _PORT_INSTANCES.items():
        value = given.get(port)
        if value is None or (isinstance(value, str) and port in BACKEND_PORTS):
            continue
        if not isinstance(value, protocol):
            named = " or the name of a backend" if port in BACKEND_PORTS else ""
            raise ValidationError(f"{port} must be {what}{named}, got {type(value).__name__}")
        instances[port] = given.pop(port)
    return instances


def connect(
    profile: str | None = None, *, embedder: Embedder | None = None, tracer: Tracer | None = None, **settings: Any
) -> ToolRuntime:
    """A ToolRuntime on ``profile`` (``memory``, ``local`` or ``aws``; default: ``TOOLRT_PROFILE`` or local).

    Keyword arguments are :class:`~toolrt.settings.Settings` fields and win over ``TOOLRT_*``
    environment variables. ``toolrt.connect("aws", sandbox="local")`` overrides one port's backend
    by name (``toolrt.backends``: toolrt's own and those installed packages register). A port may
    also be given as an adapter instance, as httpx takes ``transport=``:
    ``toolrt.connect("local", sandbox=MySandbox())``; so may ``repository``, ``artifacts``,
    ``gateway``, ``validator`` and ``environments`` (a sandbox given so installs no requirements
    unless ``environments`` is given too). ``embedder`` (a :class:`~toolrt.ports.Embedder`) makes
    ``search_tools`` hybrid. ``tracer`` (a :class:`~toolrt.ports.Tracer`, such as
    ``OpenTelemetryTracer(provider)``) replaces the one the ``telemetry`` setting chooses.
    """
    if profile is not None:
        settings["profile"] = profile
    instances = _port_instances(settings)
    resolved = Settings.load(settings)
    container = build_container(resolved)
    if "sandbox" in instances and "environments" not in instances:
        instances["environments"] = NoEnvironments(resolved.profile)
    for port, instance in instances.items():
        getattr(container.adapters, port).override(providers.Object(instance))
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
        **{p: type(instances[p]).__name__ if p in instances else resolved.backend(p) for p in BACKEND_PORTS},
    )
    return runtime
