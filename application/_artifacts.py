"""Shared steps of the use cases that bring code in: validate once per policy, store once per hash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import attrs

from toolrt.domain import (
    Artifact,
    ArtifactCreated,
    CodeHash,
    Finding,
    NotFoundError,
    Severity,
    Tool,
    ToolDefinition,
    ValidationError,
    ValidationReport,
    normalize_code,
)
from toolrt.ports import (
    ArtifactStore,
    Clock,
    CodeReferences,
    CodeValidator,
    EventPublisher,
    MetricsSink,
    Teams,
    ToolRecords,
)


@attrs.frozen
class PreparedCode:
    """The artifact a definition's code resolved to, and how."""

    artifact: Artifact
    cache_hit: bool
    created: bool


# Checking a schema against its metaschema costs milliseconds; agents re-register the same schemas
# constantly, so schemas known to be valid are remembered (by their canonical JSON).
_VALID_SCHEMAS: dict[str, None] = {}
_VALID_SCHEMAS_MAX = 4096


def check_schemas(definition: ToolDefinition) -> None:
    """Raise ValidationError when input_schema or output_schema is not a valid JSON Schema."""
    findings = []
    for field in ("input_schema", "output_schema"):
        schema = getattr(definition, field)
        if schema is None:
            continue
        try:
            key = json.dumps(schema, sort_keys=True, default=repr)
        except (TypeError, ValueError):
            key = ""
        if key and key in _VALID_SCHEMAS:
            continue
        import jsonschema  # here: loading it costs tens of milliseconds a command may not need

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            findings.append(
                Finding(
                    f"definition.{field}",
                    Severity.ERROR,
                    f"{field} is not a valid JSON Schema at {path}: {exc.message}",
                    hint="see https://json-schema.org/understanding-json-schema/",
                )
            )
            continue
        broken = list(_unresolvable_refs(schema, schema))
        if broken:
            findings.extend(
                Finding(
                    f"definition.{field}",
                    Severity.ERROR,
                    f"{field} has a $ref toolrt cannot resolve: {ref!r} ({why})",
                    hint='use local references such as "#/$defs/name"; remote schemas are never fetched',
                )
                for ref, why in broken
            )
            continue
        if key:
            if len(_VALID_SCHEMAS) >= _VALID_SCHEMAS_MAX:
                _VALID_SCHEMAS.pop(next(iter(_VALID_SCHEMAS)))
            _VALID_SCHEMAS[key] = None
    if findings:
        raise ValidationError(f"invalid tool definition {definition.name!r}", ValidationReport(tuple(findings)))


def _unresolvable_refs(node: Any, root: Any) -> Iterator[tuple[str, str]]:
    """Every ``$ref`` under ``node`` that is not a JSON pointer into ``root`` that exists."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#"):
                yield ref, "only references inside the schema are allowed"
            elif not _pointer_exists(root, ref[1:]):
                yield ref, "nothing at that location"
        for value in node.values():
            yield from _unresolvable_refs(value, root)
    elif isinstance(node, list):
        for value in node:
            yield from _unresolvable_refs(value, root)


def _pointer_exists(root: Any, pointer: str) -> bool:
    if pointer in ("", "/"):
        return True
    if not pointer.startswith("/"):
        return False  # anchors ("#name") are not supported
    node = root
    for raw in pointer[1:].split("/"):
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


class CodeIntake:
    """Finds or creates the artifact for a definition's code.

    Rules: a stored artifact validated under the current policy version is reused without calling
    the validator (a cache hit); one validated under another policy is validated again and its report
    replaced; new code is validated and stored only when the report has no errors.

    A cache hit is only granted (and reported) when a tool the agent may discover uses the code.
    Otherwise the code is validated as if it were new, and stored once all the same: a reported hit,
    or a registration faster than validation, would tell an agent that some other agent's private
    tool holds exactly this code.
    """

    def __init__(
        self,
        *,
        tools: ToolRecords,
        references: CodeReferences,
        teams: Teams,
        artifacts: ArtifactStore,
        validator: CodeValidator,
        clock: Clock,
        metrics: MetricsSink,
        events: EventPublisher,
    ) -> None:
        self._tools = tools
        self._references = references
        self._teams = teams
        self._artifacts = artifacts
        self._validator = validator
        self._clock = clock
        self._metrics = metrics
        self._events = events

    def prepare(
        self, definition: ToolDefinition, validator: CodeValidator | None = None, agent_id: str | None = None
    ) -> PreparedCode:
        """The artifact for ``definition``'s code; ValidationError when the code has errors.

        ``validator`` replaces the runtime's own for this call (a policy the runtime's owner chose).
        ``agent_id``: the agent bringing the code (``None``: the runtime's owner, who sees everything).
        """
        validator = validator or self._validator
        code_hash = definition.code_hash
        stored = self._artifacts.get(code_hash)
        if stored is not None and stored.report.policy_version == validator.policy_version:
            if agent_id is None or self._visible_user(code_hash, agent_id):
                self._metrics.increment("artifact_cache", result="hit")
                return PreparedCode(stored, cache_hit=True, created=False)
            self._metrics.increment("artifact_cache", result="unseen")
            report = validator.validate(definition)
            if not report.ok:  # the same code cannot pass and fail one policy; kept for safety
                raise ValidationError(f"code of tool {definition.name!r} failed validation", report)
            return PreparedCode(stored, cache_hit=False, created=False)
        self._metrics.increment("artifact_cache", result="miss" if stored is None else "stale_policy")
        report = validator.validate(definition)
        if not report.ok:
            raise ValidationError(f"code of tool {definition.name!r} failed validation", report)
        if stored is not None:
            try:
                return PreparedCode(self._artifacts.replace_report(code_hash, report), False, False)
            except NotFoundError:
                pass  # collected since it was read (nothing referenced it): stored anew below
        artifact = Artifact(
            code_hash=code_hash,
            language=definition.language,
            code=normalize_code(definition.code),
            entrypoint=definition.entrypoint,
            report=report,
            created_at=self._clock.now(),
            runnable=validator.runnable_code(definition),
            engine=validator.js_engine(definition),
            lock=definition.lock,
        )
        created = self._artifacts.put(artifact)
        if created:
            self._events.publish(ArtifactCreated(self._clock.now(), str(code_hash)))
        return PreparedCode(artifact, cache_hit=False, created=created)

    def _visible_user(self, code_hash: CodeHash, agent_id: str) -> bool:
        return bool(
            visible_users(
                code_hash, agent_id, tools=self._tools, references=self._references, teams=self._teams, limit=1
            )
        )

    def ensure_present(self, artifact: Artifact) -> None:
        """Put ``artifact`` back if a concurrent deregistration removed it after we referenced it."""
        if self._artifacts.get(artifact.code_hash) is None:
            self._artifacts.put(artifact)

    def release_if_unreferenced(self, code_hash: CodeHash) -> bool:
        """Delete the artifact when no tool references it; True when deleted."""
        return release_if_unreferenced(self._references, self._artifacts, code_hash)


#: Past this many users of one code, the visible ones are found through ``discoverable`` (ids only)
#: rather than by reading records one by one.
_FEW_USERS = 20


def visible_users(
    code_hash: CodeHash,
    agent_id: str,
    *,
    tools: ToolRecords,
    references: CodeReferences,
    teams: Teams,
    limit: int | None = None,
) -> list[Tool]:
    """Active tools using ``code_hash`` that ``agent_id`` may discover (at most ``limit``), by tool id.

    Never depends on how many tools the agent cannot see use the code: those are filtered out before
    any limit applies, so neither the answer nor which tools are read tells anything about them.
    """
    users = sorted(references.references(code_hash))
    found: list[Tool] = []
    memberships = teams.teams_of(agent_id) if users else frozenset()

    def take(tool_ids: list[str]) -> bool:
        for tool_id in tool_ids:
            try:
                tool = tools.get(tool_id)
            except NotFoundError:
                continue
            if tool.is_active and tool.can_discover(agent_id, memberships):
                found.append(tool)
                if limit is not None and len(found) >= limit:
                    return True
        return False

    # The first few users are read directly; past them, only the visible ones (ids from
    # ``discoverable``). Either way the answer is the first visible users by id.
    if take(users[:_FEW_USERS]) or len(users) <= _FEW_USERS:
        return found
    allowed = {tool_id for tool_id, _, _ in tools.discoverable(agent_id, memberships)}
    take([tool_id for tool_id in users[_FEW_USERS:] if tool_id in allowed])
    return found


def release_if_unreferenced(references: CodeReferences, artifacts: ArtifactStore, code_hash: CodeHash) -> bool:
    """Delete the artifact when no tool references it; True when deleted.

    A registration of the same code may reference it between the check and the delete (its own
    re-check may already have passed), so the references are read again after deleting and the
    artifact is put back if a tool took it up meanwhile.
    """
    if references.references(code_hash):
        return False
    artifact = artifacts.get(code_hash)
    artifacts.delete(code_hash)
    if artifact is not None and references.references(code_hash):
        artifacts.put(artifact)
        return False
    return True
