"""RegisterTools: many definitions in one call, each validated once per distinct code."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from toolrt.application._artifacts import PreparedCode, check_schemas
from toolrt.application.access import check_sharing
from toolrt.application.checks import check_agent
from toolrt.application.register_tool import RegisterTool, RegisterToolRequest, Registration
from toolrt.domain import (
    CodeHash,
    ConflictError,
    RegistrationError,
    Tool,
    ToolRegistered,
    ToolRuntimeError,
    check_new_tool_name,
)
from toolrt.logs import get_logger
from toolrt.ports import AttributeValue

log = get_logger(__name__)

#: Distinct codes validated at once: JavaScript validation runs Node, so threads overlap the waits.
VALIDATION_THREADS = 4


@attrs.frozen
class BatchItem:
    """One definition of a batch: its registration, or the typed error that refused it."""

    index: int
    registration: Registration | None = None
    error: ToolRuntimeError | None = None

    @property
    def ok(self) -> bool:
        """True when the definition became (or, with ``reuse``, found) a tool."""
        return self.registration is not None


class RegisterTools:
    """Register a batch of definitions for one agent.

    Business rules (those of :class:`RegisterTool` for each item, and):

    - each distinct code is validated (or found in the artifact store) once, distinct codes in
      parallel threads; the records go to the repository in one transaction where it offers
      ``add_many`` (SQLite), so 1,000 tools sharing code cost one validation and one commit;
    - names must be unique within the batch and against the agent's active tools;
    - ``atomic=False``: every item succeeds or fails on its own, and the result says which;
      ``atomic=True``: on the first failure nothing is kept (records, gateway entries, new
      artifacts) and every item carries the error (the failing one its own, the others a
      RegistrationError naming it).
    - Duplicates are looked for only when ``on_duplicate`` asks (it defaults to ``create`` here: a
      batch is usually an import; pass ``warn``, ``reuse`` or ``error`` to check each item).
    """

    def __init__(self, single: RegisterTool) -> None:
        self._single = single

    def execute(
        self, requests: Sequence[RegisterToolRequest | ToolRuntimeError], *, atomic: bool = False
    ) -> list[BatchItem]:
        attributes: dict[str, AttributeValue] = {"toolrt.batch.items": len(requests), "toolrt.batch.atomic": atomic}
        with self._single._tracer.span("toolrt.register_tools", attributes) as span:
            items = self._execute(requests, atomic)
            span.set_attribute("toolrt.batch.ok", sum(1 for item in items if item.ok))
            span.set_attribute(
                "toolrt.batch.cache_hits", sum(1 for i in items if i.registration and i.registration.cache_hit)
            )
        return items

    def _execute(self, requests: Sequence[RegisterToolRequest | ToolRuntimeError], atomic: bool) -> list[BatchItem]:
        started = time.perf_counter()
        single = self._single
        results: dict[int, BatchItem] = {}
        pending: list[tuple[int, RegisterToolRequest]] = []
        names: set[str] = set()
        for index, request in enumerate(requests):
            if isinstance(request, ToolRuntimeError):
                results[index] = BatchItem(index, error=request)
                continue
            try:
                check_agent(request.agent_id)
                check_new_tool_name(request.definition.name)
                check_sharing(single._teams, request.agent_id, request.team)
                check_schemas(request.definition)
                single._policy.check_network(request.definition)
                if request.definition.name in names:
                    raise ConflictError(f"the batch has two tools named {request.definition.name!r}")
                names.add(request.definition.name)
                request = attrs.evolve(request, definition=single._requirements.resolve(request.definition))
            except ToolRuntimeError as exc:
                results[index] = BatchItem(index, error=exc)
                continue
            pending.append((index, request))
        if atomic and results:
            return self._all_failed(len(requests), results)

        prepared = self._prepare(pending, results)
        if atomic and results:
            self._release([p for p in prepared.values() if p.created])
            return self._all_failed(len(requests), results)

        tools: list[tuple[int, RegisterToolRequest, Tool, PreparedCode]] = []
        for index, request in pending:
            if index in results:
                continue
            try:
                similar = single._similar(request)
                reused = single._reusable(request, similar)
                if reused is not None:
                    results[index] = BatchItem(index, registration=reused)
                    continue
                if single._examples is not None:
                    single._examples.check(request.definition, request.agent_id)
                tool = Tool.create(
                    tool_id=single._ids.new_id("tool"),
                    owner=request.agent_id,
                    definition=request.definition,
                    now=single._clock.now(),
                    visibility=request.visibility,
                    team=request.team,
                )
                tools.append((index, request, tool, prepared[request.definition.code_hash]))
                warnings = [*single._policy.capped(request.definition.limits)]
                if similar:
                    warnings.append("visible tools already do this: " + "; ".join(m.describe() for m in similar))
                code = prepared[tool.code_hash]
                registration = Registration(
                    tool, tool.code_hash, code.cache_hit, code.artifact.report, tuple(warnings), similar
                )
                results[index] = BatchItem(index, registration=registration)
            except ToolRuntimeError as exc:
                results[index] = BatchItem(index, error=exc)
        if atomic and any(not item.ok for item in results.values()):
            self._release([p for p in prepared.values() if p.created])
            return self._all_failed(len(requests), results)

        # Published first, then stored with the gateway's reference in one transaction: one write per
        # tool instead of two. A tool whose record could not be stored is withdrawn again.
        published = self._publish(tools, results, atomic)
        if atomic and len(published) != len(tools):
            self._withdraw([tool for _, tool in published])
            self._release([p for p in prepared.values() if p.created])
            return self._all_failed(len(requests), results)
        stored = self._store(published, results, atomic)
        kept = {tool.tool_id for _, tool in stored}
        self._withdraw([tool for _, tool in published if tool.tool_id not in kept])
        if atomic and len(stored) != len(published):
            self._undo(stored, prepared)
            return self._all_failed(len(requests), results)
        for code_hash in {tool.code_hash for _, tool in stored}:
            # A concurrent deregistration may have removed the artifact between lookup and reference.
            single._intake.ensure_present(prepared[code_hash].artifact)
        published = stored
        # New artifacts no stored tool ended up using (their items failed) are released.
        used = {tool.code_hash for _, tool in published}
        self._release([p for h, p in prepared.items() if p.created and h not in used])
        for index, tool in published:
            now = single._clock.now()
            hit = prepared[tool.code_hash].cache_hit
            single._events.publish(ToolRegistered(now, tool.tool_id, tool.owner, tool.name, str(tool.code_hash), hit))
            pending_registration = results[index].registration
            assert pending_registration is not None
            results[index] = BatchItem(index, registration=attrs.evolve(pending_registration, tool=tool))
        ok = sum(1 for item in results.values() if item.ok)
        single._metrics.increment("registrations", ok, outcome="success")
        single._metrics.increment("batch_registrations")
        log.info(
            "tools registered in a batch",
            items=len(requests),
            ok=ok,
            distinct_code=len(prepared),
            ms=round((time.perf_counter() - started) * 1000, 3),
        )
        return [results[i] for i in range(len(requests))]

    # -- steps -----------------------------------------------------------------------------------

    def _prepare(
        self, pending: list[tuple[int, RegisterToolRequest]], results: dict[int, BatchItem]
    ) -> dict[CodeHash, PreparedCode]:
        first: dict[CodeHash, RegisterToolRequest] = {}
        for _, request in pending:
            first.setdefault(request.definition.code_hash, request)
        intake = self._single._intake

        def prepare(request: RegisterToolRequest) -> PreparedCode | ToolRuntimeError:
            try:
                return intake.prepare(request.definition, request.validator, request.agent_id)
            except ToolRuntimeError as exc:
                return exc

        if len(first) > 1:
            with ThreadPoolExecutor(max_workers=min(VALIDATION_THREADS, len(first))) as pool:
                outcomes = dict(zip(first, pool.map(prepare, first.values()), strict=True))
        else:
            outcomes = {h: prepare(r) for h, r in first.items()}
        prepared: dict[CodeHash, PreparedCode] = {}
        for code_hash, outcome in outcomes.items():
            if isinstance(outcome, PreparedCode):
                prepared[code_hash] = outcome
        for index, request in pending:
            outcome = outcomes[request.definition.code_hash]
            if not isinstance(outcome, PreparedCode):
                results[index] = BatchItem(index, error=outcome)  # every item with that code: same report
        return prepared

    def _publish(
        self,
        tools: list[tuple[int, RegisterToolRequest, Tool, PreparedCode]],
        results: dict[int, BatchItem],
        atomic: bool,
    ) -> list[tuple[int, Tool]]:
        single = self._single
        published: list[tuple[int, Tool]] = []
        # A gateway that publishes many tools in one write (AgentCore's shared targets) gets them all at
        # once; an outcome per tool, a reference or the error that stopped it.
        register_many = getattr(single._gateway, "register_many", None)
        outcomes: list[Any] = (
            list(register_many([tool for _, _, tool, _ in tools])) if callable(register_many) and tools else []
        )
        for position, (index, _, tool, _) in enumerate(tools):
            try:
                outcome = outcomes[position] if outcomes else single._gateway.register(tool)
                if isinstance(outcome, BaseException):
                    raise outcome
                published.append((index, tool.with_gateway_ref(str(outcome), single._clock.now())))
            except Exception as exc:
                results[index] = BatchItem(
                    index,
                    error=RegistrationError(
                        f"publishing tool {tool.name!r} failed at gateway.register: {exc}",
                        tool_name=tool.name,
                        step="gateway.register",
                        retryable=bool(getattr(exc, "retryable", False)),
                    ),
                )
                if atomic and not outcomes:  # published together: every success is withdrawn by the caller
                    break
        return published

    def _store(
        self, published: list[tuple[int, Tool]], results: dict[int, BatchItem], atomic: bool
    ) -> list[tuple[int, Tool]]:
        records = self._single._tools
        add_many = getattr(records, "add_many", None)
        if callable(add_many) and published:
            try:
                add_many([tool for _, tool in published])
                return published
            except ToolRuntimeError:
                pass  # the transaction kept nothing: store them one by one to find which item broke it
        stored: list[tuple[int, Tool]] = []
        for index, tool in published:
            try:
                records.add(tool)
                stored.append((index, tool))
            except ToolRuntimeError as exc:
                results[index] = BatchItem(index, error=exc)
                if atomic:
                    break
        return stored

    def _withdraw(self, tools: list[Tool]) -> None:
        for tool in tools:
            try:
                self._single._gateway.deregister(tool)
            except Exception as exc:  # keep going; report what stayed behind
                log.warning("batch: gateway withdrawal failed", tool_id=tool.tool_id, error=str(exc))

    def _undo(self, stored: list[tuple[int, Tool]], prepared: dict[CodeHash, PreparedCode]) -> None:
        single = self._single
        for _, tool in stored:
            current = tool
            try:
                current = single._tools.get(tool.tool_id)
            except ToolRuntimeError:
                pass
            single._roll_back(tool, current.gateway_ref, artifact_created=False)
        self._release([p for p in prepared.values() if p.created])

    def _release(self, created: list[PreparedCode]) -> None:
        for item in created:
            try:
                self._single._intake.release_if_unreferenced(item.artifact.code_hash)
            except ToolRuntimeError as exc:
                log.warning("batch: artifact release failed", code_hash=item.artifact.code_hash.short, error=str(exc))

    @staticmethod
    def _all_failed(count: int, results: dict[int, BatchItem]) -> list[BatchItem]:
        failed = sorted(i for i, item in results.items() if not item.ok)
        first = results[failed[0]]
        assert first.error is not None
        cause = RegistrationError(
            f"nothing was registered (atomic batch): item {failed[0]} failed: {first.error}",
            tool_name="",
            step="batch",
        )
        return [results[i] if i in results and not results[i].ok else BatchItem(i, error=cause) for i in range(count)]
