"""Pure pieces of the AWS profile: schema conversions, names, Decimal round trips and EMF lines."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolrt.adapters.aws.gateway import (
    gateway_tool_name,
    split_gateway_tool_name,
    to_openapi,
    to_schema_definition,
    tool_code,
    tool_id_of_code,
    tool_schema,
)
from toolrt.adapters.aws.metrics import CloudWatchEmfMetrics
from toolrt.adapters.aws.serialization import converter, decode_body, encode_body, from_item, to_item
from toolrt.contracts import builders as b
from toolrt.domain import Execution, ExecutionMetrics, Tool
from toolrt.ports import MetricsSink

dynamo_floats = st.floats(-1e125, 1e125, allow_nan=False).filter(lambda f: f == 0 or abs(f) > 1e-120)
any_floats = st.floats(allow_nan=False, allow_infinity=False)


def _json(floats: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | floats | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(min_size=1, max_size=5), inner, max_size=4),
        max_leaves=12,
    )


json_values = _json(any_floats)
dynamo_json = _json(dynamo_floats)


@given(json_values)
def test_any_json_body_round_trips(value: Any) -> None:
    """Any JSON document (even numbers DynamoDB cannot hold) is stored and read back equal."""
    assert decode_body(encode_body(value)) == value


@given(dynamo_json)
def test_json_survives_the_dynamodb_number_format(value: Any) -> None:
    """Floats, integers and nested JSON stored in DynamoDB come back equal."""
    assert from_item(to_item({"v": value}))["v"] == value


@given(st.dictionaries(st.sampled_from(["a", "b", "x"]), json_values, max_size=3), st.floats(0, 1e6))
def test_tool_and_execution_records_round_trip(output: dict[str, Any], wall_ms: float) -> None:
    """Tools and executions with nested schemas and float metrics round-trip through DynamoDB items."""
    tool = b.tool().with_version(
        b.definition(input_schema={"type": "object", "properties": {"n": {"type": "number", "minimum": 0.5}}}), b.T0
    )
    assert converter.structure(decode_body(encode_body(converter.unstructure(tool))), Tool) == tool
    e = Execution("e1", "t1", 1, "a", "succeeded", b.T0, output=output, metrics=ExecutionMetrics(wall_ms=wall_ms))
    assert converter.structure(decode_body(encode_body(converter.unstructure(e))), Execution) == e


tool_ids = (
    st.from_regex(r"tool-[0-9a-f]{32}", fullmatch=True)
    | st.from_regex(r"[a-z0-9]{1,12}(-[a-z0-9]{1,8}){0,2}", fullmatch=True)
    | st.text(min_size=1, max_size=4)
)


# A new tool's name never holds "__" (it is reserved for owner-qualified names).
@given(
    tool_ids,
    st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,99}", fullmatch=True).filter(lambda n: "__" not in n),
    st.sampled_from(["s0", "s42", "s999"]),
)
def test_gateway_names_fit_in_64_characters_and_map_back(tool_id: str, name: str, shard: str) -> None:
    """Any tool toolrt can publish, on any shard, gets a full name of at most 64 characters from which
    the Lambda router recovers the tool id; the code never holds the delimiter after it."""
    tool = b.tool(tool_id, name=name)
    code = tool_code(tool_id)
    assert "_" not in code and all(c.isalnum() and c.isascii() or c == "-" for c in code)
    assert tool_id_of_code(code) == tool_id
    full = gateway_tool_name(shard, tool)
    assert len(full) <= 64
    assert split_gateway_tool_name(full)[0] == tool_id
    assert name.startswith(split_gateway_tool_name(full)[1])


def test_generated_ids_leave_29_characters_for_the_name() -> None:
    """A generated id (tool- and 32 hex digits) takes 27 characters; the readable name keeps 29 on any shard."""
    tool = b.tool("tool-" + "ab" * 16, name="summarize_quarterly_revenue_by_region_and_product")
    full = gateway_tool_name("s999", tool)
    assert len(full) == 64
    assert full.endswith("_summarize_quarterly_revenue_b")
    assert split_gateway_tool_name(full) == ("tool-" + "ab" * 16, "summarize_quarterly_revenue_b")


def test_an_id_too_long_for_the_gateway_is_a_registration_error() -> None:
    """An id that cannot fit is refused at publication with what would fit."""
    from toolrt.domain import RegistrationError

    with pytest.raises(RegistrationError, match="too long to publish"):
        tool_code("x" * 60)


def test_gateway_tool_names_follow_the_target_convention() -> None:
    """Agents see shard___code_tool, and the router splits it back."""
    tool = b.tool("tool-abc", name="add_numbers")
    assert gateway_tool_name("s3", tool) == "s3___r-tool-abc_add_numbers"
    assert split_gateway_tool_name("s3___r-tool-abc_add_numbers") == ("tool-abc", "add_numbers")


def test_published_schemas_declare_the_identity_argument_and_wrap_non_object_results() -> None:
    """Every published input schema declares the reserved identity argument (the gateway may drop
    undeclared arguments); a tool whose result is not an object is published as {"result": ...};
    a tool that declares the reserved argument itself is refused."""
    from toolrt.adapters.aws.gateway import output_is_wrapped, without_identity
    from toolrt.adapters.aws.identity import IDENTITY_ARGUMENT
    from toolrt.domain import RegistrationError

    tool = b.tool("tool-abc").with_version(b.definition(output_schema={"type": "integer"}), b.T0)
    schema = tool_schema(tool)
    assert schema["inputSchema"]["properties"][IDENTITY_ARGUMENT]["type"] == "string"
    assert IDENTITY_ARGUMENT not in without_identity(schema)["inputSchema"]["properties"]
    assert schema["outputSchema"] == {
        "type": "object",
        "description": "The tool's result, under 'result'.",
        "properties": {"result": {"type": "integer"}},
        "required": ["result"],
    }
    assert output_is_wrapped(tool.definition)
    plain = b.tool("tool-abc").with_version(b.definition(output_schema={"type": "object"}), b.T0)
    assert tool_schema(plain)["outputSchema"] == {"type": "object", "properties": {}}
    assert not output_is_wrapped(plain.definition)
    reserved = b.tool("tool-abc").with_version(
        b.definition(input_schema={"type": "object", "properties": {IDENTITY_ARGUMENT: {"type": "string"}}}), b.T0
    )
    with pytest.raises(RegistrationError, match="reserves"):
        tool_schema(reserved)


def test_inline_schema_keeps_structure_and_describes_the_rest() -> None:
    """The gateway's restricted schema keeps types, properties, required and items; bounds go to descriptions."""
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": ["integer", "null"], "minimum": 1},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            "any": {},
        },
        "required": ["n", "missing"],
    }
    assert to_schema_definition(schema) == {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "description": "may be null; minimum: 1"},
            "tags": {"type": "array", "items": {"type": "string", "description": "enum: ['a', 'b']"}},
            "any": {"type": "string"},
        },
        "required": ["n"],
    }


def test_inline_schema_keeps_types_of_enums_unions_and_nullables() -> None:
    """Numeric enums stay numbers, anyOf keeps its concrete type (and names the others), null is noted."""
    assert to_schema_definition({"enum": [1, 2, 3]}) == {"type": "integer", "description": "enum: [1, 2, 3]"}
    assert to_schema_definition({"enum": [1, 2.5]})["type"] == "number"
    assert to_schema_definition({"const": True}) == {"type": "boolean", "description": "const: True"}
    assert to_schema_definition({"anyOf": [{"type": "integer"}, {"type": "null"}]}) == {
        "type": "integer",
        "description": "may be null",
    }
    union = to_schema_definition({"oneOf": [{"type": "number"}, {"type": "string"}], "description": "a size"})
    assert union == {"type": "number", "description": "a size; one of types: number, string"}
    obj = to_schema_definition(
        {"anyOf": [{"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}, {"type": "null"}]}
    )
    assert obj == {
        "type": "object",
        "description": "may be null",
        "properties": {"q": {"type": "string"}},
        "required": ["q"],
    }


def test_openapi_export_is_openapi_3() -> None:
    """A tool exports as an OpenAPI 3.0 document with its parameters as the request body."""
    tool = b.tool().with_version(
        b.definition(input_schema={"type": "object", "properties": {"x": {"type": ["string", "null"], "const": "k"}}}),
        b.T0,
    )
    doc = to_openapi(tool)
    assert doc["openapi"].startswith("3.0")
    body = doc["paths"]["/tools/add"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["x"] == {"type": "string", "nullable": True, "enum": ["k"]}
    assert doc["info"]["version"] == "2"


def test_emf_metrics_write_cloudwatch_lines_and_keep_a_snapshot() -> None:
    """Each observation is one EMF JSON line; the snapshot has the in-memory sink's shape."""
    lines: list[str] = []
    metrics = CloudWatchEmfMetrics(write=lines.append, clock=lambda: 1.5)
    assert isinstance(metrics, MetricsSink)
    metrics.increment("executions", status="succeeded")
    metrics.observe("wall_ms", 12.5, tool="add")
    metrics.observe("wall_ms", 7.5, tool="add")
    first = json.loads(lines[0])
    assert first["_aws"]["CloudWatchMetrics"][0] == {
        "Namespace": "toolrt",
        "Dimensions": [["status"]],
        "Metrics": [{"Name": "executions", "Unit": "Count"}],
    }
    assert first["executions"] == 1 and first["status"] == "succeeded" and first["_aws"]["Timestamp"] == 1500
    assert json.loads(lines[1])["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Milliseconds"
    snap = metrics.snapshot()
    assert snap["counters"] == {"executions|status=succeeded": 1}
    assert snap["timings"]["wall_ms|tool=add"] == {"count": 2, "sum": 20.0, "min": 7.5, "max": 12.5, "mean": 10.0}


@pytest.mark.parametrize("event", [{}, {"a": 1}])
def test_lambda_router_needs_the_tool_name(event: dict[str, Any]) -> None:
    """A call without AgentCore's tool name in the client context is refused clearly."""
    from toolrt.adapters.aws.lambda_router import gateway_tool_name as name_of
    from toolrt.domain import NotFoundError

    class Ctx:
        client_context = None

    with pytest.raises(NotFoundError, match="bedrockAgentCoreToolName"):
        name_of(Ctx())


def test_cloudformation_table_matches_provisioning() -> None:
    """The CloudFormation template declares the same keys and indexes that provision() creates."""
    from tests.unit.aws.cfn import load_template
    from toolrt.adapters.aws.repository import table_definition

    table = load_template()["Resources"]["ToolTable"]["Properties"]
    expected = table_definition("toolrt")
    assert table["KeySchema"] == expected["KeySchema"]
    assert table["AttributeDefinitions"] == expected["AttributeDefinitions"]
    assert [(g["IndexName"], g["KeySchema"], g["Projection"]) for g in table["GlobalSecondaryIndexes"]] == [
        (g["IndexName"], g["KeySchema"], g["Projection"]) for g in expected["GlobalSecondaryIndexes"]
    ]


def _grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for s in statements:
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        found.update((a, r) for a in actions for r in resources)
    return found


@pytest.mark.parametrize("interpreter", ["aws.codeinterpreter.v1", "mine_x-0123456789"])
def test_cloudformation_grants_what_provisioning_grants(interpreter: str) -> None:
    """Each role in the template allows exactly the actions on exactly the resources `toolrt aws
    provision` gives it (the system and a custom Code Interpreter alike), and the functions use the
    same handlers, timeouts and identity provider settings."""
    from tests.unit.aws.cfn import Resolver, load_template
    from toolrt.adapters.aws import JwtAuthorizer, Provisioner
    from toolrt.adapters.aws.provision import (
        GATEWAY_DESCRIPTION,
        INTERCEPTOR_HANDLER,
        INTERCEPTOR_TIMEOUT_S,
        ROUTER_HANDLER,
        ROUTER_TIMEOUT_MARGIN_S,
    )

    class Clients:
        region = "us-east-1"

    jwt = JwtAuthorizer("https://idp.example/.well-known/openid-configuration", ("toolrt", "other"), scopes=("tools",))
    provisioner = Provisioner(Clients(), jwt=jwt, code_interpreter_id=interpreter)
    provisioner._account = "123456789012"
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/toolrt"
    bucket = "arn:aws:s3:::toolrt-artifacts"
    router = "arn:aws:lambda:us-east-1:123456789012:function:toolrt-router"
    interceptor = "arn:aws:lambda:us-east-1:123456789012:function:toolrt-interceptor"
    resolver = Resolver(
        load_template(),
        {
            "RouterCodeBucket": "code",
            "JwtDiscoveryUrl": jwt.discovery_url,
            "JwtAudience": "toolrt,other",
            "JwtScopes": "tools",
            "CodeInterpreterId": interpreter,
        },
        {
            "ToolTable": "toolrt",
            "ToolTable.Arn": table,
            "ArtifactBucket": "toolrt-artifacts",
            "ArtifactBucket.Arn": bucket,
            "RouterFunction.Arn": router,
            "InterceptorFunction.Arn": interceptor,
            "RouterRole.Arn": "arn:aws:iam::123456789012:role/r",
            "InterceptorRole.Arn": "arn:aws:iam::123456789012:role/i",
            "GatewayRole.Arn": "arn:aws:iam::123456789012:role/g",
        },
    )
    resources = resolver.resolve(load_template()["Resources"])
    for role, policy in (
        ("RouterRole", provisioner._router_policy(table, bucket)),
        ("InterceptorRole", provisioner._interceptor_policy(table)),
        ("GatewayRole", provisioner._gateway_policy(router, interceptor)),
    ):
        template_statements = resources[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        assert _grants(template_statements) == _grants(policy["Statement"]), role
    router_fn, interceptor_fn = (
        resources["RouterFunction"]["Properties"],
        resources["InterceptorFunction"]["Properties"],
    )
    assert router_fn["Handler"] == ROUTER_HANDLER
    assert router_fn["Timeout"] == 300 + ROUTER_TIMEOUT_MARGIN_S
    assert interceptor_fn["Handler"] == INTERCEPTOR_HANDLER
    assert interceptor_fn["Timeout"] == INTERCEPTOR_TIMEOUT_S
    for function in (router_fn, interceptor_fn):
        variables = {k: str(v) for k, v in function["Environment"]["Variables"].items() if v != ""}
        assert jwt.environment().items() <= variables.items()
    gateway = resources["Gateway"]["Properties"]
    assert gateway["Description"] == GATEWAY_DESCRIPTION
    assert gateway["AuthorizerType"] == "CUSTOM_JWT"
    authorizer = gateway["AuthorizerConfiguration"]["CustomJWTAuthorizer"]
    assert {"customJWTAuthorizer": {k[0].lower() + k[1:]: v for k, v in authorizer.items()}} == jwt.configuration()
    assert gateway["InterceptorConfigurations"][0]["InterceptionPoints"] == ["REQUEST", "RESPONSE"]
    assert (
        resources["ToolTable"]["DeletionPolicy"] == "Retain"
        and resources["ArtifactBucket"]["DeletionPolicy"] == "Retain"
    )


def test_cloudformation_template_passes_cfn_lint() -> None:
    """cfn-lint (AWS's own resource schemas) finds nothing in deploy/cloudformation.yaml."""
    from pathlib import Path

    from cfnlint.api import lint_file

    template = Path(__file__).parents[3] / "deploy" / "cloudformation.yaml"
    assert [str(match) for match in lint_file(template)] == []


def test_the_router_takes_limits_as_the_runtime_does() -> None:
    """The router's limits come from ExecutionPolicy (one place), overridden by TOOLRT_<LIMIT> variables."""
    from toolrt.adapters.aws.lambda_router import policy_from_env
    from toolrt.application import ExecutionPolicy

    assert policy_from_env({}) == ExecutionPolicy()
    custom = policy_from_env({"TOOLRT_MAX_TIMEOUT_S": "120.0", "TOOLRT_DEFAULT_MEMORY_MB": "512"})
    assert custom.max_timeout_s == 120.0 and custom.default_memory_mb == 512


def test_cloudformation_bucket_has_the_lifecycle_rule_provisioning_sets() -> None:
    """Deleted artifacts' noncurrent versions expire alike whether the bucket came from provision() or the template."""
    from tests.unit.aws.cfn import load_template
    from toolrt.adapters.aws.provision import ARTIFACT_LIFECYCLE_RULE as rule

    rules = load_template()["Resources"]["ArtifactBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules == [
        {
            "Id": rule["ID"],
            "Status": rule["Status"],
            "Prefix": rule["Filter"]["Prefix"],
            "NoncurrentVersionExpiration": rule["NoncurrentVersionExpiration"],
            "ExpiredObjectDeleteMarker": rule["Expiration"]["ExpiredObjectDeleteMarker"],
        }
    ]
