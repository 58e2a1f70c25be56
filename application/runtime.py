"""The ToolRuntime facade: every use case behind one object, for embedding toolrt in an application."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import attrs

from toolrt.application.access import deciding_teams, may_execute, may_see
from toolrt.application.checks import check_agent
from toolrt.application.collect_garbage import (
    CollectGarbageRequest,
    GarbageCollection,
)
from toolrt.application.definitions import DefinitionLike, to_definition
from toolrt.application.deregister_tool import DeregisterToolRequest, Deregistration
from toolrt.application.duplicates import ON_DUPLICATE
from toolrt.application.examples import ExampleResult
from toolrt.application.execute_tool import ExecuteToolRequest
from toolrt.application.fleet_metrics import (
    FleetMetrics,
    ToolActivitySeries,
    tool_activity,
)
from toolrt.application.functions import function_definition
from toolrt.application.queries import ToolStatusReport
from toolrt.application.register_tool import RegisterToolRequest, Registration
from toolrt.application.register_tools import BatchItem
from toolrt.application.repair_store import RepairReport, RepairRequest
from toolrt.application.rollback_tool import RollbackToolRequest
from toolrt.application.search_tools import SearchResult
from toolrt.application.services import RuntimeServices
from toolrt.application.tool_names import exported_names
from toolrt.application.tool_templates import ToolTemplate
from toolrt.application.traffic import ToolMetrics
from toolrt.application.update_tool import ToolUpdate, UpdateToolRequest
from toolrt.domain import (
    DomainEvent,
    Execution,
    ExecutionStatus,
    Finding,
    NotFoundError,
    OwnershipError,
    Severity,
    TeamMembershipChanged,
    Tool,
    ToolDefinition,
    ToolRuntimeError,
    ToolStatus,
    ToolVersion,
    TrafficGuard,
    ValidationError,
    ValidationReport,
    Visibility,
    check_team_name,
    may_show_plain,
    parse_visibility,
)
from toolrt.logs import get_logger
from toolrt.ports import (
    CodeValidator,
    EnvironmentInfo,
    ExecutionQuery,
    OutputCallback,
    PruneReport,
    ToolCall,
    ToolQuery,
    ToolUsage,
)

log = get_logger(__name__)


@attrs.frozen
class ExecutionPage:
    """A page of execution history: ``items`` newest first, and the cursor of the next page (or None)."""

    items: tuple[Execution, ...]
    next_cursor: str | None


def _parse_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    stamp, sep, execution_id = str(cursor).partition("|")
    try:
        if not sep or not execution_id:
            raise ValueError("no separator")
        return datetime.fromisoformat(stamp), execution_id
    except ValueError:
        raise ValidationError(f"cursor {cursor!r} is not one list_executions gave; start again without it") from None


class ToolRuntime:
    """Register, update, execute and withdraw tools; the one object an embedding application needs.

    Build it with ``toolrt.connect(...)``; close it (or use ``with``) to stop sandboxes and pools.
    """

    def __init__(self, services: RuntimeServices) -> None:
        """A runtime over ``services``, the use cases the composition root built
        (``toolrt.connect``, or ``toolrt.services.build_runtime`` over ports a caller made)."""
        self.ports = services.ports
        self.policy = services.policy
        self.gc_policy = services.gc_policy
        self.profile = services.profile
        #: Requirements: resolves them at registration and finds each call's environment. Its
        #: ``on_progress`` receives a line while an environment builds (the CLI prints it).
        self.requirements = services.requirements
        self.templates = services.templates
        self._counters = services.counters
        self._events = services.events
        self._examples = services.examples
        self._search = services.search
        self._register = services.register
        self._register_many = services.register_many
        self._update = services.update
        self._deregister = services.deregister
        self._rollback = services.rollback
        self._traffic = services.traffic
        self._execute = services.execute
        self._background = services.background
        self._status = services.status
        self._list = services.list
        self._versions = services.versions
        self._gc = services.collect_garbage
        self._fleet = services.fleet
        self._repair = services.repair
        self._closed = False

    # -- writing -------------------------------------------------------------------------------
    def register_tool(
        self,
        agent_id: str,
        definition: DefinitionLike,
        visibility: Visibility | str = Visibility.PRIVATE,
        *,
        validator: CodeValidator | None = None,
        on_duplicate: str = "warn",
    ) -> Registration:
        """Register a new tool owned by ``agent_id``. See :class:`RegisterTool` for the rules.

        ``on_duplicate`` says what to do when a tool the agent may discover already does the same:
        ``warn`` (default: register, and list them in ``.similar`` and ``.warnings``), ``create``
        (do not look), ``reuse`` (return the existing tool, ``.reused`` is True) or ``error``
        (ConflictError). ``update`` looks at the agent's own tool of the same name instead: the same
        definition returns it (``.reused``), a changed one becomes its new version (``.updated``).

        ``validator`` applies another validation policy to this registration (for example
        ``toolrt.adapters.validation.build_validator({...})``). It is the embedding application's
        choice: the CLI and the MCP server never let an agent pass one.
        """
        parsed = to_definition(definition, validator or self.ports.validator)
        chosen, team = parse_visibility(visibility)
        return self._register.execute(RegisterToolRequest(agent_id, parsed, chosen, validator, on_duplicate, team))

    def list_templates(self) -> list[ToolTemplate]:
        """The tool templates agents may start from (shipped, plus those added with :meth:`add_template`)."""
        return self.templates.list()

    def add_template(self, template: ToolTemplate | Mapping[str, Any], *, replace: bool = False) -> ToolTemplate:
        """Add a template for every agent of this runtime (the runtime owner's call, never an agent's).
        A mapping is read as the JSON form of the shipped templates. Kept for this runtime's life."""
        parsed = template if isinstance(template, ToolTemplate) else ToolTemplate.from_dict(template)
        self.templates.add(parsed, replace=replace)
        return parsed

    def create_from_template(
        self,
        agent_id: str,
        template: str,
        values: Mapping[str, Any],
        visibility: Visibility | str = Visibility.PRIVATE,
        *,
        on_duplicate: str = "warn",
    ) -> Registration:
        """Register ``agent_id``'s own tool from a template filled with ``values``: a normal
        registration (validation cache, duplicate check, visibility). See ``toolrt.application.tool_templates``."""
        definition = self.templates.get(template).instantiate(values)
        return self.register_tool(agent_id, definition, visibility, on_duplicate=on_duplicate)

    def register_tools(
        self,
        agent_id: str,
        definitions: Sequence[DefinitionLike],
        visibility: Visibility | str = Visibility.PRIVATE,
        *,
        atomic: bool = False,
        on_duplicate: str = "create",
        validator: CodeValidator | None = None,
    ) -> list[BatchItem]:
        """Register many tools for ``agent_id`` at once: one :class:`BatchItem` per definition, in order,
        each with ``.registration`` or ``.error``. ``atomic=True`` keeps all or nothing. Code shared by
        several definitions is validated once. See :class:`RegisterTools` for the rules.
        """
        chosen, team = parse_visibility(visibility)
        if on_duplicate not in ON_DUPLICATE or on_duplicate == "update":
            choices = ", ".join(c for c in ON_DUPLICATE if c != "update")
            raise ValidationError(
                f"on_duplicate must be one of {choices} for a batch, got {on_duplicate!r} "
                "(register_tool takes on_duplicate='update', one tool at a time)"
            )
        if isinstance(definitions, (str, bytes, Mapping)) or not isinstance(definitions, Sequence):
            raise ValidationError("definitions must be a list of tool definitions")
        requests: list[RegisterToolRequest | ToolRuntimeError] = []
        for definition in definitions:
            try:
                parsed = to_definition(definition, validator or self.ports.validator)
                requests.append(RegisterToolRequest(agent_id, parsed, chosen, validator, on_duplicate, team))
            except ToolRuntimeError as exc:
                requests.append(exc)
        return self._register_many.execute(requests, atomic=atomic)

    def register_function(
        self,
        agent_id: str,
        fn: Callable[..., Any],
        visibility: Visibility | str = Visibility.PRIVATE,
        *,
        name: str | None = None,
        description: str | None = None,
        requirements: Sequence[str] = (),
        on_duplicate: str = "update",
    ) -> Registration:
        """Register a Python function of this program as a tool, from its own source.

        The input schema comes from its type hints and docstring, the description from the
        docstring's summary (or ``description``), the name from the function (or ``name``). The
        function must stand alone: see :func:`toolrt.application.functions.function_definition`.
        ``requirements``: the packages it imports (``["numpy>=1.26"]``), installed where the profile can.
        ``on_duplicate`` as in :meth:`register_tool`; ``update`` (the default) makes running the
        program again harmless: the agent's tool of that name is returned as it is, or gets a new
        version when the function changed.
        """
        definition = function_definition(fn, name=name, description=description)
        if requirements:
            definition["requirements"] = list(requirements)
        return self.register_tool(agent_id, definition, visibility, on_duplicate=on_duplicate)

    def tool(
        self,
        agent_id: str,
        visibility: Visibility | str = Visibility.PRIVATE,
        *,
        name: str | None = None,
        description: str | None = None,
        requirements: Sequence[str] = (),
        on_duplicate: str = "update",
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A decorator registering the function as ``agent_id``'s tool (:meth:`register_function`,
        whose ``on_duplicate="update"`` default makes a second run of the program find its tools).

        The function is returned unchanged (still callable in-process); its registration is on
        ``fn.toolrt_registration``.
        """

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            reg = self.register_function(
                agent_id,
                fn,
                visibility,
                name=name,
                description=description,
                requirements=requirements,
                on_duplicate=on_duplicate,
            )
            fn.toolrt_registration = reg  # type: ignore[attr-defined]
            return fn

        return register

    def update_tool(
        self,
        agent_id: str,
        tool_id: str,
        definition: DefinitionLike | None = None,
        visibility: Visibility | str | None = None,
        *,
        validator: CodeValidator | None = None,
    ) -> ToolUpdate:
        """Give a tool a new version and/or visibility. See :class:`UpdateTool`; ``validator`` as
        in :meth:`register_tool`."""
        parsed = None if definition is None else to_definition(definition, validator or self.ports.validator)
        chosen, team = (None, None) if visibility is None else parse_visibility(visibility)
        return self._update.execute(UpdateToolRequest(agent_id, tool_id, parsed, chosen, validator, team))

    def deregister_tool(self, agent_id: str, tool_id: str, purge: bool = False) -> Deregistration:
        """Withdraw a tool; ``purge`` deletes its record too. See :class:`DeregisterTool`."""
        return self._deregister.execute(DeregisterToolRequest(agent_id, tool_id, purge))

    def collect_garbage(
        self,
        *,
        older_than: timedelta | str | float | None = None,
        keep_versions: int | None = None,
        grace_s: float | None = None,
        dry_run: bool = True,
        keep_executions: int | None = None,
    ) -> GarbageCollection:
        """Remove artifacts no tool references, finished execution records older than ``older_than``
        (``"30d"``, ``"12h"``, a ``timedelta`` or seconds) and versions of inactive tools beyond
        ``keep_versions``; by default (``dry_run=True``) only report what would go. ``keep_executions``
        also bounds the history by count: the newest that many finished records stay. Omitted values
        come from the settings (``gc_retention``, ``gc_keep_versions``, ``gc_grace_s``,
        ``gc_keep_executions``).

        The runtime owner's call, never an agent's (the MCP server does not offer it). Bad values are
        a ``ValidationError`` and nothing changes. See :class:`CollectGarbage` for the rules.
        """
        defaults = self.gc_policy
        return self._gc.execute(
            CollectGarbageRequest(
                defaults.execution_retention if older_than is None else older_than,
                defaults.keep_versions if keep_versions is None else keep_versions,
                defaults.grace_s if grace_s is None else grace_s,
                dry_run,
                defaults.keep_executions if keep_executions is None else keep_executions,
            )
        )

    def environments(self) -> list[EnvironmentInfo]:
        """The environments of tools' requirements on hand, least recently used first (``toolrt env list``)."""
        return self.requirements.builder.environments()

    def referenced_locks(self) -> frozenset[str]:
        """Digests of the locks stored artifacts run with: the environments a prune keeps."""
        keep = set()
        for code_hash in self.ports.artifacts.hashes():
            artifact = self.ports.artifacts.get(code_hash)
            if artifact is not None and artifact.lock is not None:
                keep.add(artifact.lock.digest)
        return frozenset(keep)

    def prune_environments(self, *, max_mb: int | None = None, dry_run: bool = False) -> PruneReport:
        """Remove environments no stored artifact runs with; then, while all of them together exceed
        ``max_mb`` (default: the policy's ``environment_cache_mb``), the least recently used others
        (rebuilt from their lock when next needed). The runtime owner's call (``toolrt env prune``)."""
        limit = self.policy.environment_cache_mb if max_mb is None else max_mb
        return self.requirements.builder.prune(self.referenced_locks(), limit * 1024 * 1024, dry_run=dry_run)

    def rollback_tool(self, agent_id: str, tool_id: str, version: int) -> Tool:
        """Put ``version`` of a tool back in force. See :class:`RollbackTool`."""
        return self._rollback.execute(RollbackToolRequest(agent_id, tool_id, version))

    # -- executing -----------------------------------------------------------------------------
    def execute_tool(
        self,
        agent_id: str,
        tool: str,
        params: Mapping[str, Any] | None = None,
        version: int | None = None,
        *,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
        on_output: OutputCallback | None = None,
        sticky_key: str | None = None,
    ) -> Execution:
        """Run a tool now and return the finished execution. See :class:`ExecuteTool`.

        ``tool`` is a tool id or a name the agent can resolve (:meth:`resolve_tool`: its own tool
        first, then a public one; an ambiguous name is a ValidationError listing the ids).
        ``timeout_s`` and ``memory_mb`` replace the tool's own limits for this call; asking for
        more than the configured maxima is a LimitExceededError (nothing runs).
        ``on_output(stream, text)`` receives the tool's stdout and stderr (``stream`` is
        ``"stdout"`` or ``"stderr"``) as it prints on the local sandbox, and at the end of the call
        elsewhere; in all, exactly the text the execution records. It runs in a worker thread and
        should return quickly; an exception it raises is logged and stops further calls to it.
        Under a traffic split (:meth:`set_traffic`), an un-pinned call runs the version the weights
        pick; calls with one ``sticky_key`` (a user, a conversation) always pick the same one.
        """
        return self._by_ref(
            self._execute.execute,
            agent_id,
            tool,
            _params(params),
            version,
            timeout_s,
            memory_mb,
            on_output,
            sticky_key,
        )

    # -- releasing versions ----------------------------------------------------------------------
    def set_traffic(
        self,
        agent_id: str,
        tool: str,
        weights: Mapping[int, int] | None,
        *,
        guard: TrafficGuard | Mapping[str, Any] | None = None,
    ) -> Tool:
        """Route un-pinned calls of ``agent_id``'s tool between versions, e.g. ``{1: 90, 2: 10}``
        (whole percentages summing to 100, the version in force among them); ``None`` or ``{}``
        sends them all to the version in force again. ``guard`` (a :class:`TrafficGuard` or
        ``{"margin": 0.1, "min_calls": 20}``) ends the split when a candidate fails more often.
        See :class:`TrafficControl`."""
        found = self._tool_by_ref(agent_id, tool)
        chosen = TrafficGuard(**guard) if isinstance(guard, Mapping) else guard
        return self._traffic.set_traffic(agent_id, found.tool_id, weights, chosen)

    def promote(self, agent_id: str, tool: str, version: int) -> Tool:
        """Put ``version`` of ``agent_id``'s tool in force and end any split."""
        return self._traffic.promote(agent_id, self._tool_by_ref(agent_id, tool).tool_id, version)

    def tool_metrics(self, tool: str, agent_id: str | None = None) -> ToolMetrics:
        """Per-version metrics (calls, outcomes, error types, p50/p95 wall time) from the store's
        execution records; with ``agent_id``, only of a tool that agent may see."""
        if agent_id is None:
            return self._traffic.tool_metrics(tool)
        return self._traffic.tool_metrics(self._tool_by_ref(agent_id, tool).tool_id, agent_id)

    def test_tool(self, agent_id: str, tool: str, version: int | None = None) -> list[ExampleResult]:
        """Run a tool's examples now (the current version's, or ``version``'s) and report each.

        ``tool`` is an id or a name as for :meth:`execute_tool`; the agent must be allowed to run
        the tool. Nothing is recorded: this is a check, not an execution.
        """
        check_agent(agent_id)
        found = self._tool_by_ref(agent_id, tool)
        if not may_execute(self.ports.repository, found, agent_id):
            raise OwnershipError(agent_id, found.tool_id, "test")
        chosen = found.version(version) if version is not None else found.current
        return self._examples.run(chosen.definition, agent_id, tool=found.tool_id, owner=found.owner)

    def list_executions(
        self,
        agent_id: str | None,
        *,
        tool: str | None = None,
        version: int | None = None,
        status: ExecutionStatus | str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ExecutionPage:
        """The execution history ``agent_id`` may see, newest first, a page at a time.

        An agent sees its own calls and every call of the tools it owns, never another agent's
        calls of another agent's tools. ``tool`` (an id or a name) narrows to one tool: all its
        calls when the agent owns it, else the agent's own calls of it. Pass the page's
        ``next_cursor`` as ``cursor`` for the next page.

        ``agent_id=None`` is the runtime owner's view (as for :meth:`list_tools`): every call, of
        every agent. Nothing an agent reaches passes None (the MCP server always names the agent;
        the dashboard answers operator tokens only).
        """
        chosen = _enum(ExecutionStatus, status, "status") if status is not None else None
        before = _parse_cursor(cursor)
        if agent_id is None:
            owner_query = ExecutionQuery(
                tool_id=None if tool is None else self.ports.repository.get(tool).tool_id,
                version=version,
                status=chosen,
                since=since,
                before=before,
                limit=limit,
            )
            return _page(list(self.ports.repository.list_executions(owner_query)), limit)
        check_agent(agent_id)
        caller: str | None = agent_id
        tool_ids: frozenset[str] | None = frozenset(
            t.tool_id for t in self.ports.repository.list(ToolQuery(owner=agent_id, status=None, limit=100_000))
        )
        tool_id = None
        if tool is not None:
            found = self._tool_by_ref(agent_id, tool)
            tool_id = found.tool_id
            if found.owner == agent_id:
                caller, tool_ids = None, None
            else:
                tool_ids = None
        query = ExecutionQuery(
            caller=caller,
            tool_ids=tool_ids,
            tool_id=tool_id,
            version=version,
            status=chosen,
            since=since,
            before=before,
            limit=limit,
        )
        return _page(list(self.ports.repository.list_executions(query)), limit)

    def tool_activity(
        self, tool: str, window: timedelta | str | float = "1h", agent_id: str | None = None
    ) -> ToolActivitySeries:
        """One tool's finished calls over the last ``window`` (as :meth:`fleet_metrics` reads
        windows): executions per minute per version, outcomes, error types and wall-time
        percentiles, aggregated by the store. With ``agent_id``, only of a tool that agent may see
        (aggregates only, as :meth:`tool_metrics`)."""
        found = self._tool_by_ref(agent_id, tool) if agent_id is not None else self.ports.repository.get(tool)
        if agent_id is not None and not may_see(self.ports.repository, found, agent_id):
            raise NotFoundError("tool", tool)
        return tool_activity(self.ports.repository, self.ports.clock, found.tool_id, window)

    def subscribe(self, event_type: type[DomainEvent], handler: Callable[[DomainEvent], None]) -> Callable[[], None]:
        """Call ``handler(event)`` after every later change of ``event_type`` is stored; returns a
        function that unsubscribes. Event types are in ``toolrt.domain.events`` (``ToolRegistered``,
        ``ToolUpdated``, ``ToolExecuted``, ...; ``DomainEvent`` for all). Handlers run in the thread
        that made the change and should be quick; one that raises is logged, never propagated.
        Events carry ids, never params or outputs: a subscriber learns that something happened.
        """
        return self._events.subscribe(event_type, handler)

    def change_marker(self) -> object | None:
        """A cheap value that differs after any process on this runtime's store added, changed or
        deleted a tool, or changed a team (executions do not count); None when the store cannot
        tell (memory, DynamoDB). Poll it to learn of other processes' changes; this process's own
        are events (:meth:`subscribe`).
        """
        return self.ports.repository.change_marker()

    def start_execution(
        self,
        agent_id: str,
        tool: str,
        params: Mapping[str, Any] | None = None,
        version: int | None = None,
        *,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
    ) -> Execution:
        """Check the call and run it in the background; returns the pending execution (arguments as
        :meth:`execute_tool`)."""
        return self._by_ref(self._background.start, agent_id, tool, _params(params), version, timeout_s, memory_mb)

    def resolve_tool(self, agent_id: str, ref: str, *, include_inactive: bool = False) -> Tool:
        """The tool ``ref`` names for ``agent_id``: a tool id it may see, else a name (its own tool
        first, then a public one whose name holds no '__'). An unknown ref is NotFoundError; a name
        several public tools of other agents share is a ValidationError listing their ids."""
        try:
            tool = self.ports.repository.get(ref)
        except NotFoundError:
            pass
        else:
            if may_see(self.ports.repository, tool, agent_id):
                return tool
            raise NotFoundError("tool", ref)
        status = None if include_inactive else ToolStatus.ACTIVE
        own = [t for t in self.list_tools(owner=agent_id, name=ref, status=status) if t.name == ref]
        if own:
            # With inactive ones included, the active tool (or the newest) is the one meant.
            return sorted(own, key=lambda t: (t.is_active, t.updated_at))[-1]
        # Another agent's tool stored with '__' in its name (before that was refused) is never
        # found by that name: it reads as the qualified name of someone else's tool.
        visible = [
            t for t in self.list_tools(agent_id, name=ref, status=status) if t.name == ref and may_show_plain(t.name)
        ]
        if len(visible) == 1:
            return visible[0]
        if not visible:
            raise NotFoundError("tool", ref)
        ids = ", ".join(f"{t.tool_id} (owner {t.owner})" for t in visible)
        raise ValidationError(f"the name {ref!r} matches {len(visible)} tools: {ids}; pass a tool id")

    def _tool_by_ref(self, agent_id: str, ref: str) -> Tool:
        """The tool with id ``ref`` (one the agent may see: another agent's private tool is
        NotFoundError, as an unknown id is), else the one the agent's name ``ref`` resolves to."""
        return self.resolve_tool(agent_id, ref)

    def _by_ref(
        self,
        run: Callable[[ExecuteToolRequest], Execution],
        agent_id: str,
        ref: str,
        params: dict[str, Any],
        version: int | None,
        timeout_s: float | None,
        memory_mb: int | None,
        on_output: OutputCallback | None = None,
        sticky_key: str | None = None,
    ) -> Execution:
        # ``ref`` is tried as an id first (no extra read on the common path; the use case says
        # whether the agent may run it); when no tool has that id, it is a name to resolve.
        try:
            return run(ExecuteToolRequest(agent_id, ref, params, version, timeout_s, memory_mb, on_output, sticky_key))
        except NotFoundError as exc:
            if (exc.kind, exc.key) != ("tool", ref):
                raise
        tool_id = self.resolve_tool(agent_id, ref).tool_id
        return run(ExecuteToolRequest(agent_id, tool_id, params, version, timeout_s, memory_mb, on_output, sticky_key))

    def execution_status(self, execution_id: str) -> Execution:
        """An execution as last recorded."""
        return self._background.status(execution_id)

    def cancel_execution(self, agent_id: str, execution_id: str) -> Execution:
        """Ask a background execution to stop."""
        return self._background.cancel(agent_id, execution_id)

    def wait_execution(
        self, execution_id: str, poll_interval_s: float | None = None, max_attempts: int | None = None
    ) -> Execution:
        """Wait for a background execution (the configured poll interval and attempts by default)."""
        return self._background.wait(execution_id, poll_interval_s, max_attempts)

    # -- reading -------------------------------------------------------------------------------
    def get_tool(self, tool_id: str) -> Tool:
        """The stored tool with its whole history."""
        return self.ports.repository.get(tool_id)

    def tool_schemas(self, agent_id: str, format: str = "openai", *, strict: bool = False) -> Any:
        """The tools ``agent_id`` can discover, as a model API takes them.

        ``format``: ``openai`` (Chat Completions ``tools``), ``openai-responses``, ``anthropic``,
        ``mcp`` (a list of tool entries each), ``openapi`` (a 3.1 document) or ``openapi-3.0``.
        Names are API-safe and unique (see :mod:`toolrt.application.tool_names`);
        :meth:`dispatch` maps them back. ``strict=True`` (OpenAI formats) exports each tool in
        OpenAI's strict mode where its schema allows: closed objects, every property required,
        optional ones nullable (``dispatch`` drops the nulls, so the tool's defaults apply).
        """
        names = exported_names(self.list_tools(agent_id), agent_id)
        return self.ports.formats.render_schemas(names, format, title=f"tools of {agent_id}", strict=strict)

    def dispatch(self, agent_id: str, tool_call: Any) -> Any:
        """Run a model's tool calls and return what to send back, in the API's own shape.

        ``tool_call`` is one tool call (an OpenAI Chat Completions tool call, an OpenAI Responses
        ``function_call`` item or an Anthropic ``tool_use`` block) and gives one result (a dict), or
        a whole model message holding several (an OpenAI ``ChatCompletionMessage`` or
        ``ChatCompletion``, a Responses response or its ``output`` list, an Anthropic ``Message`` or
        its ``content`` list; SDK objects or dicts) and gives a list of results in the calls' order
        (for Anthropic, send them as the ``content`` of one user message). A message's calls run at
        the same time, at most ``max_concurrent_executions`` at once. What the model got wrong (an
        unknown name, arguments that are not a JSON object or break the schema) and a tool that
        fails come back as an error result the model can read and act on; only something that is
        not a tool call or message at all raises ValidationError.
        """
        calls = self.ports.formats.parse_tool_calls(tool_call)
        if calls is None:
            return self._dispatch_one(agent_id, self.ports.formats.parse_tool_call(tool_call), None)
        names = exported_names(self.list_tools(agent_id), agent_id)
        if len(calls) <= 1:
            return [self._dispatch_one(agent_id, call, names) for call in calls]
        workers = min(len(calls), self.policy.max_concurrent_executions)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="toolrt-dispatch") as pool:
            return list(pool.map(lambda call: self._dispatch_one(agent_id, call, names), calls))

    def _dispatch_one(self, agent_id: str, call: ToolCall, names: Mapping[str, Tool] | None) -> dict[str, Any]:
        if names is None:
            names = exported_names(self.list_tools(agent_id), agent_id)
        render_result = self.ports.formats.render_result
        tool = names.get(call.name)
        if tool is None:
            return render_result(call, f"error: no tool named {call.name!r} is available", error=True)
        arguments = call.arguments
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except ValueError as exc:
                return render_result(call, f"error: the arguments are not valid JSON: {exc}", error=True)
        if not isinstance(arguments, dict):
            return render_result(call, "error: the arguments must be a JSON object", error=True)
        arguments = self.ports.formats.drop_nulls(tool.current.definition.input_schema, arguments)
        try:
            execution = self.execute_tool(agent_id, tool.tool_id, arguments)
        except ValidationError as exc:
            return render_result(call, f"error: {exc.describe()}", error=True)
        if execution.status is ExecutionStatus.SUCCEEDED:
            return render_result(call, execution.output, error=False)
        failure = execution.error
        reason = f"{failure.type}: {failure.message}" if failure else execution.status.value
        return render_result(call, f"error: the tool {execution.status.value}: {reason}", error=True)

    def get_tool_status(self, tool_id: str, agent_id: str | None = None) -> ToolStatusReport:
        """A tool's status; with ``agent_id``, only if that agent may see the tool."""
        return self._status.execute(tool_id, agent_id)

    def list_tools(
        self,
        agent_id: str | None = None,
        *,
        owner: str | None = None,
        status: ToolStatus | str | None = ToolStatus.ACTIVE,
        name: str | None = None,
        tag: str | None = None,
        text: str | None = None,
        limit: int = 1000,
    ) -> Sequence[Tool]:
        """Tools ``agent_id`` may discover (all tools without it: the owner's view), narrowed by the
        other filters. Team tools are listed to the members of their team."""
        query = ToolQuery(
            owner=owner,
            visible_to=agent_id,
            teams=frozenset() if agent_id is None else self.ports.repository.teams_of(agent_id),
            status=None if status is None else _enum(ToolStatus, status, "status"),
            name=name,
            tag=tag,
            text=text,
            limit=limit,
        )
        return self._list.execute(query)

    def search_tools(
        self,
        agent_id: str | None,
        query: str,
        *,
        limit: int = 10,
        tags: Sequence[str] | None = None,
        with_usage: bool = False,
    ) -> list[SearchResult]:
        """Tools ``agent_id`` may discover, ranked for ``query`` (words saying what the tool should do).

        Each result has ``.tool``, ``.score`` and ``.matched`` (the fields the words were found in);
        ``with_usage=True`` adds ``.usage`` (recent calls, distinct callers, success rate), so that
        an agent can prefer tools that work. ``tags`` keeps tools carrying every tag given; ``limit``
        is 1 to 100. Another agent's private tools are never searched, nor do they move a score.
        See :class:`SearchTools`.
        """
        if agent_id is not None:
            check_agent(agent_id)
        return self._search.execute(agent_id, query, limit=limit, tags=tuple(tags or ()), with_usage=with_usage)

    def tool_usage(self, agent_id: str, tool: str) -> ToolUsage:
        """How a tool ``agent_id`` may discover has fared in its calls (aggregates only)."""
        check_agent(agent_id)
        found = self._tool_by_ref(agent_id, tool)
        if not found.can_discover(agent_id, deciding_teams(self.ports.repository, found, agent_id)):
            raise NotFoundError("tool", tool)
        return self._search.usage(found.tool_id)

    def tools_usage(self, agent_id: str, tool_ids: Sequence[str]) -> dict[str, ToolUsage]:
        """:meth:`tool_usage` of several tools at once (one count by the store), keyed by tool id;
        NotFoundError when ``agent_id`` may not see one of them. For listings."""
        check_agent(agent_id)
        repository = self.ports.repository
        for tool_id in tool_ids:
            if not may_see(repository, repository.get(tool_id), agent_id):
                raise NotFoundError("tool", tool_id)
        return dict(repository.tool_usage(list(tool_ids)))

    # -- teams (the runtime owner's calls: the CLI and the MCP server never let an agent make them) --
    def add_team_member(self, team: str, agent_id: str) -> bool:
        """Make ``agent_id`` a member of ``team``: it may then discover and run the team's tools, and
        share its own with ``visibility="team:NAME"``. False when it already was a member."""
        check_team_name(team)
        check_agent(agent_id)
        added = self.ports.repository.add_team_member(team, agent_id)
        if added:
            self._events.publish(TeamMembershipChanged(self.ports.clock.now(), team, agent_id, True))
        return added

    def remove_team_member(self, team: str, agent_id: str) -> bool:
        """End ``agent_id``'s membership of ``team``; its next call no longer reaches the team's
        tools. Its own team tools stay shared with the team. False when it was not a member."""
        check_team_name(team)
        check_agent(agent_id)
        removed = self.ports.repository.remove_team_member(team, agent_id)
        if removed:
            self._events.publish(TeamMembershipChanged(self.ports.clock.now(), team, agent_id, False))
        return removed

    def teams_of(self, agent_id: str) -> frozenset[str]:
        """The teams ``agent_id`` belongs to."""
        check_agent(agent_id)
        return self.ports.repository.teams_of(agent_id)

    def list_teams(self) -> dict[str, frozenset[str]]:
        """Every team with members, and its members."""
        return dict(self.ports.repository.list_teams())

    def list_versions(self, tool_id: str, agent_id: str | None = None) -> Sequence[ToolVersion]:
        """A tool's versions, oldest first."""
        return self._versions.execute(tool_id, agent_id)

    def fleet_metrics(
        self, window: timedelta | str | float = "1h", *, until: datetime | None = None, busiest: int = 10
    ) -> FleetMetrics:
        """What every agent's tools did over the last ``window`` (``"1h"``, ``"15m"``, ``"1d"``, a
        ``timedelta`` or seconds; at most 7 days), as typed figures: tools and agents, executions
        per minute, failure rate, error types, latency percentiles, isolation, registrations,
        artifact cache hits and misses, refusals. From the store, so every process on one store
        sees the same figures and a restart loses none. ``until`` ends the window at another time.

        The runtime owner's view, spanning every agent (it takes no agent): the MCP server's tools
        never offer it, and the dashboard answers only operator tokens. See
        :mod:`toolrt.application.fleet_metrics`.
        """
        return self._fleet.execute(window, until, busiest)

    def metrics(self) -> dict[str, Any]:
        """A plain-dict snapshot of every counter and timing recorded so far."""
        return self.ports.metrics.snapshot()

    def definition(self, data: DefinitionLike) -> ToolDefinition:
        """``data`` (a mapping, as read from a tool file) as a :class:`ToolDefinition`, an omitted
        Python ``input_schema`` inferred by this runtime's validator; ``ValidationError`` names
        unknown or missing fields. Nothing is stored."""
        return to_definition(data, self.ports.validator)

    def check_store(self, *, repair: bool = False, grace_s: float = 600.0) -> RepairReport:
        """Check that tool records, references, artifacts and the search index agree (see
        :class:`RepairStore`); with ``repair``, also fix what can be fixed. ``grace_s``: younger
        unreferenced artifacts and temp files are left alone (another process may be writing)."""
        request = RepairRequest(repair=repair, orphan_grace_s=grace_s, temp_grace_s=min(grace_s, 300.0))
        return self._repair.execute(request)

    def health(self) -> dict[str, Any]:
        """Which profile runs, how isolated executions are, and whether the gateway is usable."""
        gateway = self.ports.gateway.health()
        return {
            "profile": self.profile,
            "isolation": self.ports.sandbox.isolation.value,
            "gateway_ok": gateway.ok,
            "gateway_detail": gateway.detail,
            "policy_version": self.ports.validator.policy_version,
        }

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop background executions, sandboxes and stores. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._execute.close()
        self._background.close()
        try:
            self._counters.close()
        except Exception as exc:  # closing must go on: the sandboxes and stores still need it
            log.warning("writing the last counters failed", error=str(exc))
        for part in (
            self.ports.sandbox,
            self.ports.validator,
            self.ports.repository,
            self.ports.artifacts,
            self.ports.gateway,
        ):
            close = getattr(part, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> ToolRuntime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _enum(kind: type[Any], value: Any, what: str) -> Any:
    """``value`` as a member of the enum ``kind``; ValidationError naming the allowed values."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValidationError(
            f"invalid {what} {value!r}",
            ValidationReport(
                (Finding(f"request.{what}", Severity.ERROR, f"{what} must be one of: {allowed}, got {value!r}"),)
            ),
        ) from None


def _page(items: list[Execution], limit: int) -> ExecutionPage:
    last = items[-1] if len(items) == limit else None
    return ExecutionPage(tuple(items), f"{last.created_at.isoformat()}|{last.execution_id}" if last else None)


def _params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, Mapping):
        return dict(params)
    return params  # type: ignore[unreachable]  # check_params reports the wrong type
