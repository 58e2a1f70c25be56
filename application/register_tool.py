"""RegisterTool: bring a new tool in, validated, stored once, recorded and published."""

from __future__ import annotations

import time

import attrs

from toolrt.application._artifacts import CodeIntake, check_schemas
from toolrt.application._tools import refusals_counted, tool_span_attributes
from toolrt.application.access import check_sharing, deciding_teams
from toolrt.application.checks import check_agent
from toolrt.application.duplicates import ON_DUPLICATE, DuplicateFinder, DuplicateKind, SimilarTool
from toolrt.application.examples import ExampleRunner
from toolrt.application.policy import ExecutionPolicy
from toolrt.application.requirements import NoEnvironments, Requirements
from toolrt.application.schema_advice import with_schema_advice
from toolrt.application.update_tool import UpdateTool, UpdateToolRequest
from toolrt.domain import (
    ArtifactReused,
    CodeHash,
    ConflictError,
    RegistrationError,
    Tool,
    ToolDefinition,
    ToolRegistered,
    ValidationError,
    ValidationReport,
    Visibility,
    check_new_tool_name,
)
from toolrt.logs import get_logger
from toolrt.ports import (
    ArtifactStore,
    Clock,
    CodeValidator,
    EventPublisher,
    IdGenerator,
    MetricsSink,
    NoTracer,
    Teams,
    ToolGateway,
    ToolQuery,
    ToolRecords,
    Tracer,
)

log = get_logger(__name__)


@attrs.frozen
class RegisterToolRequest:
    """An agent asks for ``definition`` to become a tool it owns."""

    agent_id: str
    definition: ToolDefinition
    visibility: Visibility = attrs.field(default=Visibility.PRIVATE, converter=Visibility)
    # A validation policy chosen by the runtime's owner for this registration (never by the agent).
    validator: CodeValidator | None = None
    # What to do when a visible tool already does the same (see RegisterTool): create, warn, reuse, error.
    on_duplicate: str = attrs.field(default="warn")
    # The team a ``team`` tool is shared with (the agent must belong to it); None otherwise.
    team: str | None = None

    @on_duplicate.validator
    def _check_on_duplicate(self, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in ON_DUPLICATE:
            raise ValidationError(f"on_duplicate must be one of {', '.join(ON_DUPLICATE)}, got {value!r}")


@attrs.frozen(hash=False)
class Registration:
    """The outcome: the new tool, its code hash, whether validation was skipped, and the report.

    ``similar`` lists the visible tools that already do the same (exact, structural or semantic
    matches). ``reused`` is True when ``on_duplicate="reuse"`` returned one of them instead of
    creating a tool: ``tool`` is then that existing tool, owned by whoever registered it; and when
    ``on_duplicate="update"`` found the agent's own tool of that name with the same definition.
    ``updated`` is True when ``on_duplicate="update"`` gave that tool a new version (``version``).
    """

    tool: Tool
    code_hash: CodeHash
    cache_hit: bool
    report: ValidationReport
    warnings: tuple[str, ...] = ()
    similar: tuple[SimilarTool, ...] = ()
    reused: bool = False
    updated: bool = False

    @property
    def tool_id(self) -> str:
        """The tool's id."""
        return self.tool.tool_id

    @property
    def version(self) -> int:
        """The version in force: 1 for a new tool."""
        return self.tool.current_version


class RegisterTool:
    """Register a tool.

    Business rules:
    - the definition's structure and its JSON Schemas are checked before anything is stored;
    - the name may not hold ``__``, reserved for owner-qualified names (``toolrt.domain.naming``);
    - a ``network`` declaration naming a host the owner's egress policy does not permit is refused
      (EgressDeniedError) before anything is stored;
    - ``requirements`` are resolved to a lock and their environment built (see ``Requirements``);
      the lock is part of the code hash; a requirement that cannot be met is a RequirementError
      naming it, and nothing is stored;
    - code is hashed; stored code validated under the current policy is reused and *not* validated
      again (a cache hit); new code is validated and blocks registration on any error finding;
    - an agent cannot have two active tools with one name (ConflictError);
    - the tool record is created, then published to the gateway; if publishing fails, the record
      and any artifact this call created are removed and RegistrationError is raised: nothing stays;
    - visible tools doing the same are looked for first (``DuplicateFinder``) unless
      ``on_duplicate="create"``: ``warn`` (the default) registers and lists them; ``reuse`` returns an
      exact or structural match with the same language and input schema instead of creating a
      tool (counted as ``duplicates_avoided``); ``error`` refuses with ConflictError on such a match;
    - ``on_duplicate="update"`` makes registering idempotent for the agent's own tools: when it has an
      active tool of that name, the same definition (and visibility) returns that tool unchanged and
      a different one becomes its new version (:class:`UpdateTool`'s rules); otherwise a new tool is
      registered as with ``warn``. Two registrations racing for one name end as one tool.
    """

    def __init__(
        self,
        *,
        tools: ToolRecords,
        intake: CodeIntake,
        teams: Teams,
        artifacts: ArtifactStore,
        gateway: ToolGateway,
        clock: Clock,
        ids: IdGenerator,
        metrics: MetricsSink,
        events: EventPublisher,
        policy: ExecutionPolicy,
        examples: ExampleRunner | None = None,
        duplicates: DuplicateFinder | None = None,
        tracer: Tracer | None = None,
        requirements: Requirements | None = None,
        updater: UpdateTool | None = None,
    ) -> None:
        self._tracer = tracer or NoTracer()
        self._requirements = requirements or Requirements(NoEnvironments("custom"), policy)
        self._updater = updater
        self._tools = tools
        self._teams = teams
        self._artifacts = artifacts
        self._duplicates = duplicates
        self._examples = examples
        self._gateway = gateway
        self._clock = clock
        self._ids = ids
        self._metrics = metrics
        self._events = events
        self._policy = policy
        self._intake = intake

    def execute(self, request: RegisterToolRequest) -> Registration:
        started = time.perf_counter()
        definition = request.definition
        bound = log.bind(agent_id=request.agent_id, tool_name=definition.name)
        attributes = tool_span_attributes(request.agent_id, definition.name, definition.language.value)
        with (
            self._tracer.span("toolrt.register_tool", attributes) as span,
            refusals_counted(self._metrics, bound, "registrations", "register"),
        ):
            registration = self._register(request)
            span.set_attribute("toolrt.tool.id", registration.tool_id)
            span.set_attribute("toolrt.tool.version", registration.version)
            span.set_attribute("toolrt.cache_hit", registration.cache_hit)
            span.set_attribute("toolrt.reused", registration.reused)
        elapsed = (time.perf_counter() - started) * 1000
        self._metrics.increment("registrations", outcome="success")
        self._metrics.observe("registration_ms", elapsed, cache="hit" if registration.cache_hit else "miss")
        bound.info(
            "tool registered",
            tool_id=registration.tool_id,
            code_hash=registration.code_hash.short,
            cache_hit=registration.cache_hit,
            reused=registration.reused,
            similar=len(registration.similar),
            ms=round(elapsed, 3),
        )
        return registration

    def _own_tool(self, request: RegisterToolRequest) -> Tool | None:
        found = self._tools.list(ToolQuery(owner=request.agent_id, name=request.definition.name, limit=1))
        return found[0] if found else None

    def _update_own(self, request: RegisterToolRequest, tool: Tool) -> Registration:
        if self._updater is None:
            raise ValidationError("on_duplicate='update' is not available on this runtime")
        update = self._updater.execute(
            UpdateToolRequest(
                request.agent_id, tool.tool_id, request.definition, request.visibility, request.validator, request.team
            )
        )
        changed = update.new_version or update.tool.visibility_label != tool.visibility_label
        return Registration(
            tool=update.tool,
            code_hash=update.tool.code_hash,
            cache_hit=update.cache_hit or not update.new_code,
            report=update.report,
            warnings=() if changed else (f"{tool.name!r} is already registered with this definition",),
            reused=not changed,
            updated=update.new_version,
        )

    def _similar(self, request: RegisterToolRequest) -> tuple[SimilarTool, ...]:
        if request.on_duplicate in ("create", "update") or self._duplicates is None:
            return ()
        similar = tuple(self._duplicates.find(request.agent_id, request.definition))
        for match in similar:
            self._metrics.increment("duplicates_found", kind=match.kind.value)
        return similar

    def _reusable(self, request: RegisterToolRequest, similar: tuple[SimilarTool, ...]) -> Registration | None:
        same_code = [s for s in similar if s.kind is not DuplicateKind.SEMANTIC]
        if request.on_duplicate == "error" and same_code:
            listed = "; ".join(s.describe() for s in same_code)
            raise ConflictError(
                f"tool {request.definition.name!r} duplicates visible tools: {listed}. Use one of them, "
                "or register with on_duplicate='create' (or 'warn') to make your own anyway"
            )
        if request.on_duplicate != "reuse":
            return None
        definition = request.definition
        for match in same_code:
            tool = self._tools.get(match.tool_id)
            if (
                tool.is_active
                and tool.can_discover(request.agent_id, deciding_teams(self._teams, tool, request.agent_id))
                and tool.definition.language is definition.language
                and tool.definition.input_schema == definition.input_schema
            ):
                artifact = self._artifacts.get(tool.code_hash)
                self._metrics.increment("duplicates_avoided", kind=match.kind.value)
                return Registration(
                    tool=tool,
                    code_hash=tool.code_hash,
                    cache_hit=True,
                    report=artifact.report if artifact is not None else ValidationReport(),
                    warnings=(f"reused {match.describe()}",),
                    similar=similar,
                    reused=True,
                )
        return None

    def _register(self, request: RegisterToolRequest) -> Registration:
        check_agent(request.agent_id)
        check_new_tool_name(request.definition.name)  # before any validation or example runs
        check_sharing(self._teams, request.agent_id, request.team)
        if request.on_duplicate == "update":
            own = self._own_tool(request)
            if own is not None:
                return self._update_own(request, own)
            try:
                return self._create(request)
            except ConflictError:
                # Another registration of the same script took the name meanwhile: update that one.
                own = self._own_tool(request)
                if own is None:
                    raise
                return self._update_own(request, own)
        return self._create(request)

    def _create(self, request: RegisterToolRequest) -> Registration:
        definition = request.definition
        check_schemas(definition)
        self._policy.check_network(definition)
        definition = self._requirements.resolve(definition)
        request = attrs.evolve(request, definition=definition)
        similar = self._similar(request)
        reused = self._reusable(request, similar)
        if reused is not None:
            return reused
        prepared = self._intake.prepare(definition, request.validator, request.agent_id)
        if self._examples is not None:
            try:
                self._examples.check(definition, request.agent_id)
            except Exception:
                if prepared.created:
                    self._intake.release_if_unreferenced(prepared.artifact.code_hash)
                raise
        now = self._clock.now()
        tool = Tool.create(
            tool_id=self._ids.new_id("tool"),
            owner=request.agent_id,
            definition=definition,
            now=now,
            visibility=request.visibility,
            team=request.team,
        )
        try:
            self._tools.add(tool)
        except Exception:
            if prepared.created:
                self._intake.release_if_unreferenced(prepared.artifact.code_hash)
            raise
        try:
            # A concurrent deregistration may have removed the artifact between lookup and reference.
            self._intake.ensure_present(prepared.artifact)
        except Exception:
            self._roll_back(tool, None, prepared.created)
            raise
        published = self._publish(tool, prepared.created)
        if prepared.cache_hit:
            self._events.publish(ArtifactReused(now, str(tool.code_hash), tool.tool_id))
        self._events.publish(
            ToolRegistered(now, tool.tool_id, request.agent_id, tool.name, str(tool.code_hash), prepared.cache_hit)
        )
        warnings = list(self._policy.capped(definition.limits))
        if similar:
            warnings.append("visible tools already do this: " + "; ".join(s.describe() for s in similar))
        return Registration(
            tool=published,
            code_hash=tool.code_hash,
            cache_hit=prepared.cache_hit,
            report=with_schema_advice(prepared.artifact.report, definition),
            warnings=tuple(warnings),
            similar=similar,
        )

    def _publish(self, tool: Tool, artifact_created: bool) -> Tool:
        ref: str | None = None
        try:
            ref = self._gateway.register(tool)
            published = tool.with_gateway_ref(ref, self._clock.now())
            self._tools.save(published)
            return published
        except Exception as exc:
            self._roll_back(tool, ref, artifact_created)
            step = "gateway.register" if ref is None else "repository.save"
            error = RegistrationError(
                f"publishing tool {tool.name!r} failed at {step}; registration rolled back: {exc}",
                tool_name=tool.name,
                step=step,
                retryable=bool(getattr(exc, "retryable", False)),
            )
            raise error from exc

    def _roll_back(self, tool: Tool, ref: str | None, artifact_created: bool) -> None:
        bound = log.bind(tool_id=tool.tool_id, agent_id=tool.owner)
        if ref is not None:
            try:
                self._gateway.deregister(tool.with_gateway_ref(ref, self._clock.now()))
            except Exception as exc:  # keep rolling back; report what stayed behind
                bound.warning("rollback: gateway deregistration failed", error=str(exc))
        try:
            self._tools.delete(tool.tool_id)
        except Exception as exc:
            bound.warning("rollback: tool record removal failed", error=str(exc))
        if artifact_created:
            try:
                self._intake.release_if_unreferenced(tool.code_hash)
            except Exception as exc:
                bound.warning("rollback: artifact removal failed", error=str(exc))
