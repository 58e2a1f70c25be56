"""Tool definitions, tools with their version history, and content-addressed artifacts."""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from toolrt.domain.errors import LimitExceededError, NotFoundError, ValidationError
from toolrt.domain.hashing import CodeHash
from toolrt.domain.json_schema import RUNTIME_SET, json_schema, object_schema, written_fields, written_object
from toolrt.domain.naming import check_new_tool_name
from toolrt.domain.network import NetworkAccess, to_network_access
from toolrt.domain.requirements import (
    MAX_REQUIREMENT_CHARS,
    MAX_REQUIREMENTS,
    Lock,
    requirement_findings,
    to_requirements,
)
from toolrt.domain.traffic import TrafficSplit
from toolrt.domain.validation import Finding, Severity, ValidationReport

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
ENTRYPOINT_PATTERN = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,127}$")
MAX_DESCRIPTION_CHARS = 4096
MAX_TAGS = 32
# Distinct code versions one tool may keep. An active tool references every one of them, and a
# backend changes a record and all its references in one transaction (DynamoDB allows 100 items).
MAX_CODE_VERSIONS = 40


class Language(str, enum.Enum):
    """The languages a tool may be written in."""

    PYTHON = "python"
    JAVASCRIPT = "javascript"
    TYPESCRIPT = "typescript"


class ToolStatus(str, enum.Enum):
    """Whether a tool can be discovered and executed."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class Visibility(str, enum.Enum):
    """Who may use a tool besides its owner.

    ``private``: the owner only. ``shared``: any agent that knows the tool id may execute it.
    ``team``: the members of the tool's team (``Tool.team``) may discover and execute it; membership
    is kept by the store and managed by the runtime's owner, never by agents. ``public``: any agent
    may also discover it in listings.
    """

    PRIVATE = "private"
    SHARED = "shared"
    TEAM = "team"
    PUBLIC = "public"


TEAM_PREFIX = "team:"
#: Every visibility as users write it, as a JSON Schema pattern (tool files, the MCP schemas).
VISIBILITY_PATTERN = r"^(private|shared|public|team:[A-Za-z][A-Za-z0-9_-]{0,63})$"
#: The JSON Schema of a visibility as users write it, beside a definition (tool files, MCP).
VISIBILITY_SCHEMA: Mapping[str, Any] = {
    "description": "private (default), shared, public, or team:NAME to share with a team the owner belongs to.",
    "type": "string",
    "pattern": VISIBILITY_PATTERN,
}


def check_team_name(team: object) -> str:
    """``team`` if it is a valid team name (the tool name pattern), else ValidationError."""
    if not isinstance(team, str) or not NAME_PATTERN.fullmatch(team):
        raise ValidationError(
            f"team name must match {NAME_PATTERN.pattern} (a letter, then letters, digits, '_' or '-'), got {team!r}"
        )
    return team


def parse_visibility(value: object) -> tuple[Visibility, str | None]:
    """A visibility as users write it: ``private``, ``shared``, ``public`` or ``team:NAME`` (a
    :class:`Visibility` member is accepted too, except ``TEAM``, which needs its team's name).
    Returns the visibility and the team (``None`` unless ``team``); ValidationError otherwise."""
    if isinstance(value, str) and value.startswith(TEAM_PREFIX) and not isinstance(value, Visibility):
        return Visibility.TEAM, check_team_name(value[len(TEAM_PREFIX) :])
    try:
        visibility = Visibility(value)
    except ValueError:
        message = f"visibility must be one of: private, shared, public, team:NAME (e.g. team:analytics), got {value!r}"
        finding = Finding("request.visibility", Severity.ERROR, message)
        raise ValidationError(f"invalid visibility {value!r}", ValidationReport((finding,))) from None
    if visibility is Visibility.TEAM:
        raise ValidationError("visibility team needs the team's name: write team:NAME, e.g. team:analytics")
    return visibility, None


def _definition_error(rule: str, message: str, hint: str = "") -> ValidationError:
    finding = Finding(rule, Severity.ERROR, message, hint=hint)
    return ValidationError("invalid tool definition", ValidationReport((finding,)))


def _is_positive(value: Any) -> bool:
    return bool(value > 0)


def _positive_or_none(kind: type | tuple[type, ...], what: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, kind) or not _is_positive(value):
            raise _definition_error(
                f"definition.limits.{attribute.name}",
                f"limits.{attribute.name} must be a positive {what}, got {value!r}",
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise _definition_error(
                f"definition.limits.{attribute.name}",
                f"limits.{attribute.name} must be finite, got {value!r}",
            )

    return check


def _to_float_or_none(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@attrs.frozen
class Limits:
    """Resource limits a tool asks for; ``None`` means the runtime's default.

    The runtime caps every value at its configured maximum before the sandbox starts.
    """

    timeout_s: float | None = attrs.field(
        default=None,
        converter=_to_float_or_none,
        validator=_positive_or_none((int, float), "number"),
        metadata=json_schema(type="number", exclusiveMinimum=0),
    )
    memory_mb: int | None = attrs.field(
        default=None,
        validator=_positive_or_none(int, "integer"),
        metadata=json_schema(type="integer", exclusiveMinimum=0),
    )
    max_output_bytes: int | None = attrs.field(
        default=None,
        validator=_positive_or_none(int, "integer"),
        metadata=json_schema(type="integer", exclusiveMinimum=0),
    )


def _to_limits(value: Any) -> Limits:
    if value is None:
        return Limits()
    if isinstance(value, Limits):
        return value
    if isinstance(value, Mapping):
        known = written_fields(Limits)
        unknown = set(value) - set(known)
        if unknown:
            raise _definition_error(
                "definition.limits",
                f"unknown limit(s): {', '.join(sorted(map(str, unknown)))}",
                f"use {', '.join(known[:-1])} and {known[-1]}",
            )
        return Limits(**value)
    raise _definition_error("definition.limits", f"limits must be an object, got {type(value).__name__}")


def _to_language(value: Any) -> Language:
    if isinstance(value, Language):
        return value
    try:
        return Language(str(value).lower())
    except ValueError:
        raise _definition_error(
            "definition.language",
            f"unknown language {value!r}",
            "use one of: python, javascript, typescript",
        ) from None


def _to_tags(value: Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    return tuple(sorted({str(tag) for tag in value}))


MAX_EXAMPLES = 20
_ERROR_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


@attrs.frozen
class ToolExample:
    """A call a version must answer as stated before it is accepted.

    ``params`` are the call's parameters; the version must return ``output`` (compared as JSON), or,
    when ``error`` names an exception type (``"ValueError"``, ``"RangeError"``), fail with it.
    """

    params: dict[str, Any] = attrs.field(
        factory=dict, metadata=json_schema(description="The call's parameters (default: none).", type="object")
    )
    output: Any = attrs.field(default=None, metadata=json_schema(description="The value it must return."))
    error: str | None = attrs.field(
        default=None,
        metadata=json_schema(
            description="Or the error type it must raise.", type="string", pattern=_ERROR_TYPE.pattern
        ),
    )

    def to_json(self) -> dict[str, Any]:
        """The example as a tool file writes it: params, and the output or the error."""
        if self.error is not None:
            return {"params": dict(self.params), "error": self.error}
        return {"params": dict(self.params), "output": self.output}


# Keys an example may carry that it does not keep: a note for the people reading the tool file.
_EXAMPLE_NOTES = {"description": {"description": "A note (not kept).", "type": "string"}}


def _to_examples(value: Any) -> tuple[ToolExample, ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping) or isinstance(value, str) or not isinstance(value, Iterable):
        raise _definition_error(
            "definition.examples", "examples must be a list", 'a list of {"params": {...}, "output": ...}'
        )
    examples = []
    for index, item in enumerate(value, 1):
        if isinstance(item, ToolExample):
            examples.append(item)
            continue
        if not isinstance(item, Mapping):
            raise _definition_error(
                "definition.examples", f"example {index} is not an object", 'write {"params": {...}, "output": ...}'
            )
        unknown = set(item) - {*written_fields(ToolExample), *_EXAMPLE_NOTES}
        if unknown or ("output" in item) == ("error" in item):
            raise _definition_error(
                "definition.examples",
                f"example {index} needs params and exactly one of output or error"
                + (f" (unknown: {', '.join(sorted(map(str, unknown)))})" if unknown else ""),
                '{"params": {"a": 1}, "output": 2} or {"params": {"a": -1}, "error": "ValueError"}',
            )
        examples.append(ToolExample(item.get("params", {}), item.get("output"), item.get("error")))
    return tuple(examples)


@attrs.frozen(hash=False)
class ToolDefinition:
    """What an agent hands toolrt: code, its entrypoint and the JSON Schema of its parameters.

    Construction checks the structure (name, language, entrypoint, schema shape, limits) and raises
    :class:`ValidationError` with every problem found; the code itself is checked by a
    ``CodeValidator`` at registration.
    """

    # Each field's metadata is its JSON shape: definition_schema() (and through it the tool-file
    # schema and the MCP server's schemas) is built from it. A new field says its shape here.
    name: str = attrs.field(
        metadata=json_schema(
            description="The tool's name: a letter, then letters, digits, '_' or '-'; at most 64 characters.",
            type="string",
            pattern=NAME_PATTERN.pattern,
        )
    )
    description: str = attrs.field(
        metadata=json_schema(
            description="What the tool does, for the agents that discover it.",
            type="string",
            maxLength=MAX_DESCRIPTION_CHARS,
        )
    )
    language: Language = attrs.field(
        converter=_to_language,
        metadata=json_schema(description="The language of the code.", enum=[lang.value for lang in Language]),
    )
    code: str = attrs.field(
        metadata=json_schema(
            description="The tool's source code, defining the entrypoint function.", type="string", pattern=r"\S"
        )
    )
    input_schema: dict[str, Any] = attrs.field(
        factory=lambda: {"type": "object", "properties": {}},
        metadata=json_schema(
            description="JSON Schema (type object) of the parameters; for Python, inferred from type hints "
            "when left out.",
            type="object",
            properties={"type": {"const": "object"}},
            required=["type"],
        ),
    )
    entrypoint: str = attrs.field(
        default="handler",
        metadata=json_schema(
            description="The function toolrt calls (default: handler).",
            type="string",
            pattern=ENTRYPOINT_PATTERN.pattern,
        ),
    )
    output_schema: dict[str, Any] | None = attrs.field(
        default=None, metadata=json_schema(description="JSON Schema of the returned value.", type="object")
    )
    limits: Limits = attrs.field(
        default=None,
        converter=_to_limits,
        metadata=json_schema(
            **object_schema(Limits, description="Limits of one call; the runtime caps each at its maximum.")
        ),
    )
    tags: tuple[str, ...] = attrs.field(
        default=(),
        converter=_to_tags,
        metadata=json_schema(
            description="Words to find the tool by.",
            type="array",
            maxItems=MAX_TAGS,
            items={"type": "string", "pattern": NAME_PATTERN.pattern},
        ),
    )
    # Calls the version must answer as stated, run in the sandbox at registration and update.
    examples: tuple[ToolExample, ...] = attrs.field(
        default=(),
        converter=_to_examples,
        metadata=json_schema(
            description="Calls the tool must answer as stated before a version is accepted.",
            type="array",
            maxItems=MAX_EXAMPLES,
            items=object_schema(
                ToolExample, extra_properties=_EXAMPLE_NOTES, oneOf=[{"required": ["output"]}, {"required": ["error"]}]
            ),
        ),
    )
    # The hosts the tool may reach through the egress proxy, if the runtime owner's policy permits
    # them (see toolrt.domain.network). Empty: no network at all. Part of the version.
    network: NetworkAccess = attrs.field(
        default=None,
        converter=to_network_access,
        metadata=json_schema(
            **object_schema(
                NetworkAccess,
                description="Hosts the tool may reach, if the runtime's owner permits them. Absent: no network.",
            )
        ),
    )
    # Third-party packages (PEP 508 specifiers for Python, name@range for npm), resolved by the
    # runtime at registration into ``lock``; see toolrt.domain.requirements.
    requirements: tuple[str, ...] = attrs.field(
        default=(),
        converter=to_requirements,
        metadata=json_schema(
            description="Packages the code imports: PEP 508 for Python ('python-dateutil>=2.8'), name@range "
            "for JavaScript and TypeScript ('lodash@^4.17').",
            type="array",
            maxItems=MAX_REQUIREMENTS,
            items={"type": "string", "minLength": 1, "maxLength": MAX_REQUIREMENT_CHARS},
        ),
    )
    # What ``requirements`` resolved to, set by the runtime (never taken from an agent): part of the
    # code hash, so the same code with other packages is another artifact.
    lock: Lock | None = attrs.field(default=None, metadata=RUNTIME_SET)

    def __attrs_post_init__(self) -> None:
        findings = list(_structure_findings(self))
        if findings:
            raise ValidationError(f"invalid tool definition {self.name!r}", ValidationReport(tuple(findings)))

    def to_json(self) -> dict[str, Any]:
        """The definition as users write it (a tool file, MCP arguments): every field but the lock,
        those at ``None`` left out. ``to_definition`` makes the same definition of it again."""
        return written_object(self)

    @property
    def code_hash(self) -> CodeHash:
        """The content address of this definition's code and the lock of its requirements."""
        return CodeHash.of(self.language.value, self.code, self.lock.digest if self.lock is not None else None)

    @property
    def resolved(self) -> bool:
        """True when the definition can be stored: no requirements, or requirements with their lock."""
        return not self.requirements or self.lock is not None

    def same_code(self, other: ToolDefinition) -> bool:
        """True when both run the same (normalized) code in the same language."""
        return self.code_hash == other.code_hash

    def same_interface(self, other: ToolDefinition) -> bool:
        """True when callers see no difference: schemas, entrypoint and limits match."""
        return (
            self.input_schema == other.input_schema
            and self.output_schema == other.output_schema
            and self.entrypoint == other.entrypoint
            and self.limits == other.limits
        )


def definition_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a tool definition as users write it, built from ToolDefinition.

    What JSON and YAML tool files, the MCP server's ``register_tool`` and a mapping passed to
    ``register_tool`` look like: every field but the ``lock`` the runtime makes. Values it accepts may
    still be refused when the definition is made (a requirement that does not parse, a host name
    with an empty label); values it refuses are refused there too.
    """
    return object_schema(
        ToolDefinition,
        title="toolrt tool definition",
        description="A tool: its code, the entrypoint toolrt calls and the JSON Schema of its parameters.",
    )


def _structure_findings(d: ToolDefinition) -> Iterable[Finding]:
    yield from _text_findings(d)
    yield from _schema_shape_findings("input_schema", d.input_schema, required=True)
    if d.output_schema is not None:
        yield from _schema_shape_findings("output_schema", d.output_schema, required=False)
    yield from _example_findings(d.examples)
    if isinstance(d.language, Language):
        yield from requirement_findings(d.language.value, d.requirements)
    if d.lock is not None and not d.requirements:
        yield _error(
            "definition.lock", "a lock without requirements", "locks are made by the runtime from requirements"
        )
    if len(d.tags) > MAX_TAGS:
        yield _error("definition.tags", f"{len(d.tags)} tags given, at most {MAX_TAGS} allowed")
    for tag in d.tags:
        if not NAME_PATTERN.fullmatch(tag):
            yield _error("definition.tags", f"invalid tag {tag!r}", "tags follow the tool name rules")


def _error(rule: str, message: str, hint: str = "") -> Finding:
    return Finding(rule, Severity.ERROR, message, hint=hint)


def _text_findings(d: ToolDefinition) -> Iterable[Finding]:
    """The name, description, code and entrypoint."""
    if not isinstance(d.name, str) or not NAME_PATTERN.fullmatch(d.name):
        yield _error(
            "definition.name",
            f"invalid tool name {d.name!r}",
            "start with a letter; then letters, digits, '_' or '-'; at most 64 characters",
        )
    if not isinstance(d.description, str):
        yield _error("definition.description", "description must be a string")
    elif len(d.description) > MAX_DESCRIPTION_CHARS:
        yield _error(
            "definition.description",
            f"description is {len(d.description)} characters, at most {MAX_DESCRIPTION_CHARS} allowed",
        )
    if not isinstance(d.code, str) or not d.code.strip():
        yield _error("definition.code", "code is empty", "pass the tool's source code as a string")
    if not isinstance(d.entrypoint, str) or not ENTRYPOINT_PATTERN.fullmatch(d.entrypoint):
        yield _error(
            "definition.entrypoint",
            f"invalid entrypoint {d.entrypoint!r}",
            "name a top-level function, for example 'handler'",
        )


def _example_findings(examples: tuple[ToolExample, ...]) -> Iterable[Finding]:
    if len(examples) > MAX_EXAMPLES:
        yield _error("definition.examples", f"{len(examples)} examples given, at most {MAX_EXAMPLES} allowed")
    for index, example in enumerate(examples, 1):
        if not isinstance(example.params, dict):
            yield _error("definition.examples", f"example {index}: params must be a JSON object")
        if example.error is not None and (
            not isinstance(example.error, str) or not _ERROR_TYPE.fullmatch(example.error)
        ):
            yield _error(
                "definition.examples", f"example {index}: error must name an exception type, got {example.error!r}"
            )


def _schema_shape_findings(field: str, schema: Any, *, required: bool) -> Iterable[Finding]:
    rule = f"definition.{field}"
    if not isinstance(schema, dict):
        yield Finding(
            rule,
            Severity.ERROR,
            f"{field} must be a JSON Schema object, got {type(schema).__name__}",
            hint='for example {"type": "object", "properties": {"x": {"type": "number"}}}',
        )
        return
    if required and schema.get("type") != "object":
        yield Finding(
            rule,
            Severity.ERROR,
            f'{field} must describe an object (its "type" must be "object"), got {schema.get("type")!r}',
            hint="tool parameters are passed as one JSON object of named values",
        )


def _check_resolved(definition: ToolDefinition) -> None:
    if not definition.resolved:
        raise ValidationError(
            f"tool {definition.name!r} has requirements that were not resolved to a lock; "
            "register it through the runtime, which resolves them"
        )


@attrs.frozen(hash=False)
class ToolVersion:
    """One immutable version of a tool: its definition and the hash of its code."""

    number: int
    code_hash: CodeHash
    definition: ToolDefinition
    created_at: datetime


def _to_versions(versions: Iterable[ToolVersion]) -> tuple[ToolVersion, ...]:
    return tuple(versions)


@attrs.frozen(hash=False)
class Tool:
    """A registered tool: owner, status, visibility and its whole version history.

    ``record_version`` is the optimistic-concurrency counter: every saved change increments it by
    one, and a repository refuses a save whose predecessor is not the stored record.
    """

    tool_id: str
    owner: str
    name: str
    status: ToolStatus = attrs.field(converter=ToolStatus)
    visibility: Visibility = attrs.field(converter=Visibility)
    current_version: int
    versions: tuple[ToolVersion, ...] = attrs.field(converter=_to_versions)
    created_at: datetime
    updated_at: datetime
    gateway_ref: str | None = None
    record_version: int = 1
    team: str | None = None
    # Un-pinned calls routed between versions by weight (see toolrt.domain.traffic); it always names
    # the version in force, and a change of that version ends it. ``traffic_note``: why the last
    # split ended, when it did not end by the owner's hand (a guard, a new version).
    traffic: TrafficSplit | None = None
    traffic_note: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.visibility is Visibility.TEAM) != (self.team is not None):
            raise ValidationError(
                f"tool {self.tool_id!r}: a team is given exactly when the visibility is team "
                f"(visibility {self.visibility.value!r}, team {self.team!r})"
            )
        if self.team is not None:
            check_team_name(self.team)
        if self.traffic is not None:
            known = {v.number for v in self.versions}
            unknown = [v for v in self.traffic.versions if v not in known]
            if unknown:
                raise ValidationError(f"tool {self.tool_id!r} has no version {unknown[0]} to send traffic to")
            if self.current_version not in self.traffic.versions:
                raise ValidationError(
                    f"a traffic split of tool {self.tool_id!r} must include version {self.current_version}, the one in "
                    "force (promote another version first, or give the one in force a weight, even 0)"
                )

    @classmethod
    def create(
        cls,
        *,
        tool_id: str,
        owner: str,
        definition: ToolDefinition,
        now: datetime,
        visibility: Visibility = Visibility.PRIVATE,
        team: str | None = None,
    ) -> Tool:
        """A new active tool whose version 1 is ``definition``; ``team`` exactly when the visibility is team.

        Its name may not hold the reserved ``__`` (see ``toolrt.domain.naming``)."""
        check_new_tool_name(definition.name)
        _check_resolved(definition)
        version = ToolVersion(1, definition.code_hash, definition, now)
        return cls(
            tool_id=tool_id,
            owner=owner,
            name=definition.name,
            status=ToolStatus.ACTIVE,
            visibility=visibility,
            team=team,
            current_version=1,
            versions=(version,),
            created_at=now,
            updated_at=now,
        )

    @property
    def current(self) -> ToolVersion:
        """The version in force."""
        return self.version(self.current_version)

    @property
    def definition(self) -> ToolDefinition:
        """The definition in force."""
        return self.current.definition

    @property
    def code_hash(self) -> CodeHash:
        """The code hash of the version in force."""
        return self.current.code_hash

    @property
    def latest_version(self) -> int:
        """The highest version number ever created."""
        return max(v.number for v in self.versions)

    @property
    def code_hashes(self) -> frozenset[CodeHash]:
        """Every code hash in the history: the artifacts this tool keeps alive while it is active."""
        return frozenset(v.code_hash for v in self.versions)

    @property
    def is_active(self) -> bool:
        """True when the tool can be discovered and executed."""
        return self.status is ToolStatus.ACTIVE

    def version(self, number: int) -> ToolVersion:
        """Version ``number``, or :class:`NotFoundError`."""
        for v in self.versions:
            if v.number == number:
                return v
        raise NotFoundError("version", f"{self.tool_id}@{number}")

    def is_owned_by(self, agent_id: str) -> bool:
        """True when ``agent_id`` owns this tool."""
        return self.owner == agent_id

    def can_execute(self, agent_id: str, teams: Collection[str] = ()) -> bool:
        """The owner always; anyone for shared and public tools; the members of its team for team
        tools (``teams``: the teams ``agent_id`` belongs to; none when not given); nobody while inactive."""
        if not self.is_active:
            return False
        if self.visibility is Visibility.TEAM:
            return self.owner == agent_id or self.team in teams
        return self.owner == agent_id or self.visibility is not Visibility.PRIVATE

    def can_discover(self, agent_id: str, teams: Collection[str] = ()) -> bool:
        """Listed to its owner, to the members of its team (``teams`` as in :meth:`can_execute`) for
        team tools, and to everyone when public."""
        if self.visibility is Visibility.TEAM:
            return self.owner == agent_id or self.team in teams
        return self.owner == agent_id or self.visibility is Visibility.PUBLIC

    @property
    def visibility_label(self) -> str:
        """The visibility as users write it: ``private``, ``shared``, ``public`` or ``team:NAME``."""
        return self.visibility.value if self.team is None else f"{TEAM_PREFIX}{self.team}"

    def with_version(self, definition: ToolDefinition, now: datetime) -> Tool:
        """A new current version holding ``definition``; LimitExceededError past MAX_CODE_VERSIONS codes.

        A new name may not hold the reserved ``__``; a tool stored with one before the rule keeps it."""
        if definition.name != self.name:
            check_new_tool_name(definition.name)
        if definition.code_hash not in self.code_hashes and len(self.code_hashes) >= MAX_CODE_VERSIONS:
            raise LimitExceededError(
                f"tool {self.tool_id!r} already keeps {MAX_CODE_VERSIONS} different code versions; "
                "roll back to one of them, or register a new tool"
            )
        _check_resolved(definition)
        number = self.latest_version + 1
        version = ToolVersion(number, definition.code_hash, definition, now)
        return self._changed(
            now,
            versions=self.versions + (version,),
            current_version=number,
            name=definition.name,
            **self._split_ended(number),
        )

    def with_current(self, number: int, now: datetime) -> Tool:
        """Version ``number`` (which must exist) back in force."""
        v = self.version(number)
        return self._changed(now, current_version=v.number, name=v.definition.name, **self._split_ended(v.number))

    def promoted(self, number: int, now: datetime) -> Tool:
        """Version ``number`` in force and every un-pinned call sent to it (any split ended)."""
        v = self.version(number)
        return self._changed(now, current_version=v.number, name=v.definition.name, traffic=None, traffic_note=None)

    def with_traffic(self, split: TrafficSplit | None, now: datetime, note: str | None = None) -> Tool:
        """The same tool with ``split`` (None: every un-pinned call to the version in force); ``note``
        says why a split ended when something other than the owner ended it."""
        return self._changed(now, traffic=split, traffic_note=note)

    def route(self, sticky_key: str | None = None) -> int:
        """The version an un-pinned call runs: by the split's weights, else the version in force."""
        if self.traffic is None:
            return self.current_version
        return self.traffic.route(self.tool_id, sticky_key)

    def _split_ended(self, number: int) -> dict[str, Any]:
        # A new version in force ends a split (it was set against the old one).
        if self.traffic is None or number == self.current_version:
            return {}
        return {"traffic": None, "traffic_note": f"ended when version {number} was put in force"}

    def with_visibility(self, visibility: Visibility, now: datetime, team: str | None = None) -> Tool:
        """The same tool with a new visibility (``team`` exactly when it is team)."""
        return self._changed(now, visibility=visibility, team=team)

    def with_gateway_ref(self, ref: str | None, now: datetime) -> Tool:
        """The same tool published under ``ref`` (``None``: not published)."""
        return self._changed(now, gateway_ref=ref)

    def pruned(self, keep: int, now: datetime) -> Tool:
        """The tool with only its ``keep`` newest versions, the current one always among them.

        Returns ``self`` unchanged when there is nothing to drop. ``keep`` must be at least 1.
        """
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        if len(self.versions) <= keep:
            return self
        newest = sorted((v for v in self.versions if v.number != self.current_version), key=lambda v: -v.number)
        kept = {self.current_version, *(v.number for v in newest[: keep - 1])}
        split = {} if self.traffic is None or set(self.traffic.versions) <= kept else {"traffic": None}
        return self._changed(now, versions=tuple(v for v in self.versions if v.number in kept), **split)

    def deactivated(self, now: datetime) -> Tool:
        """The tool, inactive and unpublished (an inactive tool takes no calls: any split ends)."""
        return self._changed(now, status=ToolStatus.INACTIVE, gateway_ref=None, traffic=None)

    def _changed(self, now: datetime, **changes: Any) -> Tool:
        return attrs.evolve(self, updated_at=now, record_version=self.record_version + 1, **changes)


@attrs.frozen
class Artifact:
    """Validated code stored once under its content address and shared by every tool that uses it.

    ``code`` is the normalized code. Which tools reference an artifact is kept by the tool
    repository, next to the tool records, so that both change in one transaction. ``runnable`` is
    the code as a sandbox runs it when that differs and was prepared at registration: TypeScript with
    its types stripped (positions kept, so tracebacks point at the tool's own lines), run as
    JavaScript; ``None`` when the code runs as written (or was stored before this existed).
    ``engine`` (JavaScript and TypeScript): ``"quickjs"`` when the validator proved at registration
    that the code needs nothing of Node's, ``"node"`` otherwise; ``None`` for Python, or for an
    artifact stored before engines were chosen (it runs on Node).
    ``lock``: the resolved requirements, from which the environment can always be rebuilt.
    """

    code_hash: CodeHash
    language: Language = attrs.field(converter=Language)
    code: str
    entrypoint: str
    report: ValidationReport
    created_at: datetime
    runnable: str | None = None
    engine: str | None = attrs.field(default=None, validator=attrs.validators.in_((None, "quickjs", "node")))
    # The resolved requirements the code runs with (None: none); its digest is part of code_hash.
    lock: Lock | None = None

    @property
    def content_hash(self) -> CodeHash:
        """What ``code_hash`` must be: the hash of the code and of the lock it runs with."""
        return CodeHash.of(self.language.value, self.code, self.lock.digest if self.lock is not None else None)

    def with_report(self, report: ValidationReport) -> Artifact:
        """The same code with a newer validation report (a new policy version)."""
        return attrs.evolve(self, report=report)
