"""Hypothesis strategies for every stored domain type."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from toolrt.domain import (
    NAME_PATTERN,
    Artifact,
    CodeHash,
    Execution,
    ExecutionFailure,
    ExecutionMetrics,
    ExecutionStatus,
    Finding,
    IsolationLevel,
    Language,
    Limits,
    Lock,
    LockedPackage,
    NetworkAccess,
    Severity,
    Tool,
    ToolDefinition,
    ToolStatus,
    ToolVersion,
    ValidationReport,
    Visibility,
)

names = st.from_regex(NAME_PATTERN, fullmatch=True)
text = st.text(max_size=40)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | text
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)

findings = st.builds(
    Finding,
    rule_id=names,
    severity=st.sampled_from(list(Severity)),
    message=text,
    line=st.integers(0, 10_000),
    column=st.integers(0, 500),
    hint=text,
)
reports = st.builds(ValidationReport, findings=st.lists(findings, max_size=3).map(tuple), policy_version=text)
limits = st.builds(
    Limits,
    timeout_s=st.none() | st.floats(0.001, 300),
    memory_mb=st.none() | st.integers(1, 4096),
    max_output_bytes=st.none() | st.integers(1, 2**24),
)
schemas = st.builds(
    lambda props, required: {"type": "object", "properties": props, "required": required},
    st.dictionaries(
        names,
        st.sampled_from(
            [
                {"type": "number"},
                {"type": "string", "maxLength": 5},
                {"type": "array", "items": {"type": "integer"}},
                {"minimum": 0.5},
            ]
        ),
        max_size=3,
    ),
    st.lists(names, max_size=2, unique=True),
)
codes = st.text(min_size=1, max_size=80).filter(lambda c: c.strip())
host_ports = st.builds(
    lambda host, port: f"{host}:{port}",
    st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9](\.[a-z]{2,6}){1,2}", fullmatch=True)
    | st.sampled_from(["127.0.0.1", "10.0.0.7", "[::1]", "[2001:db8::1]"]),
    st.integers(1, 65535),
)
networks = st.builds(NetworkAccess, st.lists(host_ports, max_size=3))
locked_packages = st.builds(
    LockedPackage,
    name=st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
    version=st.from_regex(r"[0-9]{1,3}\.[0-9]{1,3}(\.post[0-9])?", fullmatch=True),
    url=st.builds(lambda n: f"https://files.example.org/{n}.whl", names),
    sha256=st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
    requested=st.booleans(),
    path=st.sampled_from(["", "left-pad", "a/node_modules/b"]),
    dependencies=st.lists(st.sampled_from(["b@^1.2.0", "@s/c@~2"]), max_size=2, unique=True).map(tuple),
)
locks = st.builds(
    Lock,
    language=st.just("python"),
    packages=st.lists(locked_packages, min_size=1, max_size=3),
    platform=st.sampled_from(["", "cp311-cp311-manylinux_2_17_x86_64"]),
    modules=st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), max_size=3),
)
# Requirements valid in every language (a bare name is PEP 508 and npm alike), with a lock.
requirement_sets = st.just(((), None)) | st.tuples(st.sampled_from([("six",), ("left-pad", "zod")]), locks)
definitions = st.builds(
    lambda requirements, **fields: ToolDefinition(**fields, requirements=requirements[0], lock=requirements[1]),
    requirement_sets,
    name=names,
    description=text,
    language=st.sampled_from(list(Language)),
    code=codes,
    input_schema=schemas,
    entrypoint=st.sampled_from(["handler", "main", "run_it"]),
    output_schema=st.none() | st.just({"type": "number"}),
    limits=limits,
    tags=st.lists(names, max_size=3).map(tuple),
    network=networks,
)


@st.composite
def tools(draw: st.DrawFn) -> Tool:
    """A tool with 1-3 versions, any status and visibility."""
    defs = draw(st.lists(definitions, min_size=1, max_size=3))
    created = draw(moments)
    versions = tuple(ToolVersion(i + 1, d.code_hash, d, created) for i, d in enumerate(defs))
    current = draw(st.integers(1, len(versions)))
    visibility = draw(st.sampled_from(list(Visibility)))
    return Tool(
        tool_id=draw(names),
        owner=draw(names),
        name=versions[current - 1].definition.name,
        status=draw(st.sampled_from(list(ToolStatus))),
        visibility=visibility,
        team=draw(names) if visibility is Visibility.TEAM else None,
        current_version=current,
        versions=versions,
        created_at=created,
        updated_at=draw(moments),
        gateway_ref=draw(st.none() | names),
        record_version=draw(st.integers(1, 10**6)),
    )


@st.composite
def artifacts(draw: st.DrawFn) -> Artifact:
    """An artifact whose hash matches its code (and lock, when it has one)."""
    language = draw(st.sampled_from(list(Language)))
    code = draw(codes)
    lock = draw(st.none() | locks)
    return Artifact(
        code_hash=CodeHash.of(language.value, code, lock.digest if lock is not None else None),
        lock=lock,
        language=language,
        code=code,
        entrypoint="handler",
        report=draw(reports),
        created_at=draw(moments),
    )


executions = st.builds(
    Execution,
    execution_id=names,
    tool_id=names,
    version=st.integers(1, 100),
    caller=names,
    status=st.sampled_from(list(ExecutionStatus)),
    created_at=moments,
    finished_at=st.none() | moments,
    output=json_values,
    stdout=text,
    stderr=text,
    stdout_truncated=st.booleans(),
    stderr_truncated=st.booleans(),
    error=st.none() | st.builds(ExecutionFailure, type=names, message=text, traceback=text),
    metrics=st.builds(
        ExecutionMetrics,
        wall_ms=st.floats(0, 1e6),
        cpu_ms=st.floats(0, 1e6),
        max_rss_kb=st.integers(0, 10**8),
        exit_code=st.none() | st.integers(-64, 255),
        isolation=st.sampled_from(list(IsolationLevel)),
        limit=st.none() | st.sampled_from(["memory", "cpu", "output"]),
    ),
)
