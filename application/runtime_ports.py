"""RuntimePorts: the adapters a ToolRuntime runs on, one per port."""

from __future__ import annotations

import attrs

from toolrt.ports import (
    ArtifactStore,
    Clock,
    CodeValidator,
    Embedder,
    EnvironmentBuilder,
    EventPublisher,
    IdGenerator,
    MetricsSink,
    Sandbox,
    ToolFormats,
    ToolGateway,
    ToolRepository,
    Tracer,
)


@attrs.frozen
class RuntimePorts:
    """The adapters a runtime runs on (the container builds this per profile)."""

    repository: ToolRepository
    artifacts: ArtifactStore
    validator: CodeValidator
    sandbox: Sandbox
    gateway: ToolGateway
    clock: Clock
    ids: IdGenerator
    metrics: MetricsSink
    events: EventPublisher
    #: Optional: makes search hybrid (lexical and semantic). None searches lexically only.
    embedder: Embedder | None = None
    #: Optional: spans around registration, update and execution (None traces nothing).
    tracer: Tracer | None = None
    #: Optional: installs tools' requirements. None: requirements are refused (RequirementsUnsupportedError).
    environments: EnvironmentBuilder | None = None
    #: Model APIs' wire formats, for ``tool_schemas`` and ``dispatch`` (``toolrt.adapters.wire_formats``).
    formats: ToolFormats = attrs.field(kw_only=True)
