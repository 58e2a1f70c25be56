"""UpdateTool: a new version of a tool, or new visibility; the old version stays in force on failure."""

from __future__ import annotations

import attrs

from toolrt.application._artifacts import CodeIntake, check_schemas
from toolrt.application._tools import active_owned_tool, refusals_counted, save_and_sync
from toolrt.application.access import check_sharing
from toolrt.application.examples import ExampleRunner
from toolrt.application.policy import ExecutionPolicy
from toolrt.application.requirements import NoEnvironments, Requirements
from toolrt.application.schema_advice import with_schema_advice
from toolrt.domain import (
    Tool,
    ToolDefinition,
    ToolUpdated,
    ValidationError,
    ValidationReport,
    Visibility,
    check_new_tool_name,
)
from toolrt.logs import get_logger
from toolrt.ports import (
    AttributeValue,
    Clock,
    CodeValidator,
    EventPublisher,
    MetricsSink,
    NoTracer,
    Teams,
    ToolGateway,
    ToolRecords,
    Tracer,
)

log = get_logger(__name__)


def _to_visibility(value: object) -> Visibility | None:
    return None if value is None else Visibility(value)


@attrs.frozen
class UpdateToolRequest:
    """The owner asks for a new definition and/or a new visibility."""

    agent_id: str
    tool_id: str
    definition: ToolDefinition | None = None
    visibility: Visibility | None = attrs.field(default=None, converter=_to_visibility)
    # A validation policy chosen by the runtime's owner for this update (never by the agent).
    validator: CodeValidator | None = None
    # The team, when the new visibility is ``team`` (the agent must belong to it).
    team: str | None = None


@attrs.frozen(hash=False)
class ToolUpdate:
    """The tool after the update; ``new_version`` is False when nothing in the definition changed."""

    tool: Tool
    new_version: bool
    new_code: bool
    cache_hit: bool
    report: ValidationReport

    @property
    def version(self) -> int:
        """The version now in force."""
        return self.tool.current_version


Update = ToolUpdate
"""The earlier name of :class:`ToolUpdate`, kept so that code written against it still imports."""


class UpdateTool:
    """Update a tool.

    Business rules:
    - only the owner may update, and only an active tool;
    - a definition that differs from the current one becomes a new version; an identical one
      changes nothing;
    - only code not already validated under the current policy is validated;
    - a new name may not hold the reserved ``__`` (``toolrt.domain.naming``);
    - a new visibility and a new definition given together are one change of the record;
    - a ``network`` declaration the owner's egress policy does not permit is refused (EgressDeniedError);
    - requirements are resolved to a lock, unless an earlier version asked for the same ones (its lock
      is taken); a requirement that cannot be met is a RequirementError and the version stays;
    - the gateway is told about the new version; if that fails, the previous version is put back in
      force, artifacts created for the new code are released, and RegistrationError is raised.
    """

    def __init__(
        self,
        *,
        tools: ToolRecords,
        intake: CodeIntake,
        teams: Teams,
        gateway: ToolGateway,
        clock: Clock,
        metrics: MetricsSink,
        events: EventPublisher,
        examples: ExampleRunner | None = None,
        policy: ExecutionPolicy | None = None,
        tracer: Tracer | None = None,
        requirements: Requirements | None = None,
    ) -> None:
        self._tracer = tracer or NoTracer()
        self._tools = tools
        self._teams = teams
        self._policy = policy or ExecutionPolicy()
        self._requirements = requirements or Requirements(NoEnvironments("custom"), self._policy)
        self._examples = examples
        self._gateway = gateway
        self._clock = clock
        self._metrics = metrics
        self._events = events
        self._intake = intake

    def execute(self, request: UpdateToolRequest) -> ToolUpdate:
        bound = log.bind(agent_id=request.agent_id, tool_id=request.tool_id)
        attributes: dict[str, AttributeValue] = {"toolrt.agent.id": request.agent_id, "toolrt.tool.id": request.tool_id}
        with (
            self._tracer.span("toolrt.update_tool", attributes) as span,
            refusals_counted(self._metrics, bound, "updates", "update"),
        ):
            update = self._update(request)
            span.set_attribute("toolrt.tool.version", update.version)
            span.set_attribute("toolrt.new_version", update.new_version)
            span.set_attribute("toolrt.cache_hit", update.cache_hit)
        self._metrics.increment("updates", outcome="success" if update.new_version else "unchanged")
        bound.info("tool updated", version=update.version, new_code=update.new_code)
        return update

    def _update(self, request: UpdateToolRequest) -> ToolUpdate:
        if request.definition is None and request.visibility is None:
            raise ValidationError("an update needs a definition, a visibility, or both")
        before = active_owned_tool(self._tools, self._teams, request.agent_id, request.tool_id, "update")
        if request.definition is not None and request.definition.name != before.name:
            check_new_tool_name(request.definition.name)  # a rename: before anything is resolved or run
        now = self._clock.now()
        after = before
        if request.visibility is not None and (request.visibility, request.team) != (before.visibility, before.team):
            check_sharing(self._teams, request.agent_id, request.team)
            after = after.with_visibility(request.visibility, now, request.team)
        definition = request.definition
        if definition is not None:
            # Same requirements as a version already kept: its lock, so an unchanged definition stays one.
            definition = self._requirements.resolve(definition, (v.definition for v in reversed(before.versions)))
        if definition is None or definition == before.definition:
            if after is before:
                return ToolUpdate(before, False, False, False, ValidationReport())
            stored = save_and_sync(self._tools, self._gateway, self._clock, before, after)
            return ToolUpdate(stored, False, False, False, ValidationReport())

        check_schemas(definition)
        self._policy.check_network(definition)
        new_code = definition.code_hash not in before.code_hashes
        # Refuses past the version limit (or a reserved new name), before any write. A new
        # visibility and a new version are one change of the record: one record version on.
        after = attrs.evolve(after.with_version(definition, now), record_version=before.record_version + 1)
        prepared = self._intake.prepare(definition, request.validator, request.agent_id)
        if self._examples is not None:
            try:
                self._examples.check(definition, request.agent_id)
            except Exception:
                if prepared.created:
                    self._intake.release_if_unreferenced(definition.code_hash)
                raise
        try:
            stored = save_and_sync(self._tools, self._gateway, self._clock, before, after)
        except Exception:
            if prepared.created:
                self._intake.release_if_unreferenced(definition.code_hash)
            raise
        try:
            self._intake.ensure_present(prepared.artifact)
        except Exception as exc:  # the update stands: executions use the version's own code
            log.warning(
                "could not re-check the new version's artifact; `toolrt doctor` restores it",
                tool_id=before.tool_id,
                error=str(exc),
            )
        self._events.publish(ToolUpdated(now, before.tool_id, request.agent_id, stored.current_version, new_code))
        report = with_schema_advice(prepared.artifact.report, definition)
        return ToolUpdate(stored, True, new_code, prepared.cache_hit, report)
