"""Execution criteria become DynamoDB filter expressions that select what the domain selects, for
every operator: checked on a table whose items carry every field a query compares (the repository's
own items carry fewer, see ``toolrt.adapters.aws.criteria.ATTRIBUTES``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from toolrt.adapters.aws.criteria import ATTRIBUTES, Attributes, execution_filter
from toolrt.contracts.execution_log import EXECUTIONS, QUERIES
from toolrt.domain import Execution, ExecutionStatus
from toolrt.domain.criteria import AnyOf, Condition, ExecutionField, OneOf, holds_all
from toolrt.ports import ExecutionQuery

pytestmark = pytest.mark.aws

# Every field as an attribute: text as strings (time as UTC ISO text, ordered as time), the version as a number.
EVERY_FIELD: Attributes = {
    **ATTRIBUTES,
    ExecutionField.EXECUTION_ID: ("execution_id", lambda value: {"S": str(value)}),
    ExecutionField.CALLER: ("caller", lambda value: {"S": str(value)}),
    ExecutionField.VERSION: ("version", lambda value: {"N": str(int(value))}),
    ExecutionField.CREATED_AT: ("created_at", lambda value: {"S": value.astimezone(UTC).isoformat()}),
}


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="filters",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        yield client


def _names_an_empty_list(condition: Condition) -> bool:
    # What DynamoDB cannot say: "IN ()" (an IN list needs an operand).
    if isinstance(condition, AnyOf):
        return any(_names_an_empty_list(c) for c in condition.conditions)
    return isinstance(condition, OneOf) and not condition.values


def _scan(client: Any, query: ExecutionQuery, recorded: dict[str, Execution]) -> set[str]:
    expression, left = execution_filter(query.criteria(), EVERY_FIELD)
    assert all(_names_an_empty_list(c) for c in left), left
    pages = client.get_paginator("scan").paginate(
        TableName="filters",
        FilterExpression=expression.text,
        ExpressionAttributeNames=dict(expression.names),
        ExpressionAttributeValues=dict(expression.values),
    )
    found = {item["pk"]["S"] for page in pages for item in page["Items"]}
    return {execution_id for execution_id in found if holds_all(left, recorded[execution_id])}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recorded=EXECUTIONS, queries=st.lists(QUERIES, min_size=1, max_size=6))
def test_filters_select_what_the_domain_selects(dynamodb: Any, recorded: list[Execution], queries: list[Any]) -> None:
    """For random records and queries, the scan's filter keeps exactly the records the query matches."""
    for item in dynamodb.scan(TableName="filters")["Items"]:
        dynamodb.delete_item(TableName="filters", Key={"pk": item["pk"]})
    for execution in recorded:
        item = {"pk": {"S": execution.execution_id}, "sk": {"S": "EXEC"}}
        item.update({name: encode(field.of(execution)) for field, (name, encode) in EVERY_FIELD.items()})
        dynamodb.put_item(TableName="filters", Item=item)
    for query in queries:
        by_id = {e.execution_id: e for e in recorded}
        assert _scan(dynamodb, query, by_id) == {e.execution_id for e in recorded if query.matches(e)}, query


def test_what_the_items_cannot_say_is_left_to_the_process() -> None:
    """The repository's items carry the tool and the status: a condition on the caller (alone or in
    an either-or) or the time is left to be checked on the records, the rest is filtered."""
    query = ExecutionQuery(caller="a", tool_ids=frozenset({"t"}), status=ExecutionStatus.FAILED, since=None)
    expression, left = execution_filter(query.criteria())
    assert [type(c).__name__ for c in left] == ["AnyOf"]
    (status,) = [key for key in expression.values if key != ":exec"]
    assert expression.text == f"(#sk = :exec AND #status = {status})"
    assert dict(expression.names) == {"#sk": "sk", "#status": "status"}
    assert expression.values[status] == {"S": "failed"}
