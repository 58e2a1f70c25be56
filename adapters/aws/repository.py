"""A DynamoDB ToolRepository: one table, conditional writes, references changed in one transaction.

Items of the single table (``pk``, ``sk``):

- ``TOOL#{id}`` / ``TOOL``: the tool record (``body``), ``record_version`` for optimistic
  concurrency, and ``gsi1pk = OWNER#{owner}`` / ``gsi1sk = {name}#{id}`` for the by-agent index.
- ``TOOL#{id}`` / ``USE#{hash}``: one per code hash in the tool's history (any status), with
  ``gsi2pk = HASH#{hash}`` for the by-code-hash index (``find_by_code_hash``).
- ``HASH#{hash}`` / ``REF#{id}``: one per hash an *active* tool references. Kept in the main table so
  that ``references`` is a strongly consistent query: deleting an artifact depends on it.
- ``NAME#{owner}#{name}`` / ``NAME``: held by the owner's active tool of that name (uniqueness).
- ``EXEC#{id}`` / ``EXEC``: execution records.
- ``COUNT#{day}`` / ``{minute}#{name}|{dimensions}``: a counter's total over one minute (``value``,
  added to with ``ADD``), one partition per day (days and minutes since the epoch).
- ``TEAM#{team}`` / ``MEMBER#{agent}``: a team membership, with ``gsi1pk = MEMBER#{agent}`` so that
  an agent's teams are one query of the by-agent index. Team tools carry ``gsi3pk = TEAM#{team}``
  (public ones ``PUBLIC``), so a member's discovery queries that index once per team.
- ``HASH#{hash}`` / ``GC``: a claim held by garbage collection while it checks the hash's references
  and deletes its artifact (see ``delete_unreferenced``); a change that adds a reference to the hash
  is refused (``TransientError``) while the claim holds.

Every change to a tool is one ``TransactWriteItems`` with a fresh ``ClientRequestToken``: botocore's
retries resend the same token, so a call whose first attempt committed is not applied twice.
"""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from toolrt.adapters.aws.criteria import execution_filter
from toolrt.adapters.aws.errors import cancellation_codes, error_code, translate
from toolrt.adapters.aws.serialization import av, converter, decode_body, encode_body, to_item
from toolrt.adapters.shared.counters import dimensions_text, parse_dimensions
from toolrt.adapters.shared.executions import count_usage, listing, outcomes_of, purgeable, summarize_executions
from toolrt.adapters.shared.tools import EVERY_TOOL, ListedSearchIndex, census_of, discoverable_keys
from toolrt.domain import (
    CodeHash,
    ConflictError,
    Execution,
    ExecutionStatus,
    NotFoundError,
    StorageError,
    Tool,
    TransientError,
    Visibility,
)
from toolrt.domain.criteria import Condition, Equals, ExecutionField, OneOf, holds_all
from toolrt.domain.figures import check_window
from toolrt.logs import get_logger
from toolrt.ports import (
    ExecutionOutcome,
    ExecutionQuery,
    ExecutionSummary,
    SearchHit,
    SearchQuery,
    StoredCount,
    ToolCensus,
    ToolQuery,
    ToolUsage,
)

log = get_logger(__name__)

BACKEND = "dynamodb"
OWNER_INDEX = "gsi1"
HASH_INDEX = "gsi2"
PUBLIC_INDEX = "gsi3"  # sparse: only public and team tools carry gsi3pk, so discovery never scans the table
# TransactWriteItems takes at most 100 items: record + name + 2 per distinct hash (+ removals).
MAX_TRANSACTION_ITEMS = 100
# A garbage collection claim outlives a collector that died holding it by this long at most.
CLAIM_TTL_S = 60.0


def table_definition(table_name: str) -> dict[str, Any]:
    """The ``create_table`` arguments for the repository's table (used by provisioning)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi3pk")
        ],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": OWNER_INDEX,
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": HASH_INDEX,
                "KeySchema": [
                    {"AttributeName": "gsi2pk", "KeyType": "HASH"},
                    {"AttributeName": "pk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": PUBLIC_INDEX,
                "KeySchema": [
                    {"AttributeName": "gsi3pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    }


def _tool_key(tool_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"TOOL#{tool_id}"}, "sk": {"S": "TOOL"}}


def _name_key(owner: str, name: str) -> dict[str, Any]:
    return {"pk": {"S": f"NAME#{owner}#{name}"}, "sk": {"S": "NAME"}}


def _ref_key(code_hash: CodeHash, tool_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"HASH#{code_hash}"}, "sk": {"S": f"REF#{tool_id}"}}


def _claim_key(code_hash: CodeHash) -> dict[str, Any]:
    return {"pk": {"S": f"HASH#{code_hash}"}, "sk": {"S": "GC"}}


def _use_key(tool_id: str, code_hash: CodeHash) -> dict[str, Any]:
    return {"pk": {"S": f"TOOL#{tool_id}"}, "sk": {"S": f"USE#{code_hash}"}}


_MINUTES_A_DAY = 1440


def _count_key(minute: int, name: str, dimensions: Sequence[tuple[str, str]]) -> dict[str, Any]:
    # One partition per day, one item per minute, name and dimensions: a window is a query per day.
    return {
        "pk": {"S": f"COUNT#{minute // _MINUTES_A_DAY}"},
        "sk": {"S": f"{minute:012d}#{name}|{dimensions_text(dimensions)}"},
    }


def _count_of(item: dict[str, Any]) -> StoredCount:
    minute, _, rest = item["sk"]["S"].partition("#")
    name, _, dims = rest.partition("|")
    return StoredCount(int(minute), name, parse_dimensions(dims), int(item["value"]["N"]))


def _execution_key(execution_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"EXEC#{execution_id}"}, "sk": {"S": "EXEC"}}


def _referenced(tool: Tool | None) -> frozenset[CodeHash]:
    return tool.code_hashes if tool is not None and tool.is_active else frozenset()


class DynamoDbToolRepository:
    """Stores tools, artifact references and executions in one DynamoDB table.

    ``client`` is a boto3 DynamoDB client (see :func:`toolrt.adapters.aws.clients.make_clients`);
    the table must exist (``toolrt aws provision`` creates it, see :func:`table_definition`).
    """

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name
        self._search = ListedSearchIndex(self)

    # -- tools -----------------------------------------------------------------------------------

    def add(self, tool: Tool) -> None:
        ops: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._record_item(tool),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        if tool.is_active:
            ops.append(self._claim_name(tool))
        ops += [self._put_ref(h, tool.tool_id) for h in sorted(_referenced(tool))]
        ops += [self._put_use(tool.tool_id, h) for h in sorted(tool.code_hashes)]
        ops, explain = self._unclaimed(ops, _referenced(tool), self._explain_add(tool))
        self._transact("add", tool.tool_id, ops, explain)

    def get(self, tool_id: str) -> Tool:
        tool = self._get_tool(tool_id)
        if tool is None:
            raise NotFoundError("tool", tool_id)
        return tool

    def save(self, tool: Tool) -> None:
        stored = self.get(tool.tool_id)
        expected = tool.record_version - 1
        if stored.record_version != expected:
            raise self._stale(tool.tool_id, stored.record_version, expected)
        ops: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._record_item(tool),
                    "ConditionExpression": "record_version = :expected",
                    "ExpressionAttributeValues": {":expected": av(expected)},
                }
            }
        ]
        same_name = stored.is_active and tool.is_active and (stored.owner, stored.name) == (tool.owner, tool.name)
        if stored.is_active and not same_name:
            ops.append(self._release_name(stored))
        if tool.is_active and not same_name:
            ops.append(self._claim_name(tool))
        old_refs, new_refs = _referenced(stored), _referenced(tool)
        ops += [self._put_ref(h, tool.tool_id) for h in sorted(new_refs - old_refs)]
        ops += [self._delete(_ref_key(h, tool.tool_id)) for h in sorted(old_refs - new_refs)]
        ops += [self._put_use(tool.tool_id, h) for h in sorted(tool.code_hashes - stored.code_hashes)]
        ops += [self._delete(_use_key(tool.tool_id, h)) for h in sorted(stored.code_hashes - tool.code_hashes)]
        ops, explain = self._unclaimed(ops, new_refs - old_refs, self._explain_save(tool, expected))
        self._transact("save", tool.tool_id, ops, explain)

    def delete(self, tool_id: str) -> None:
        stored = self.get(tool_id)
        ops: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": _tool_key(tool_id),
                    "ConditionExpression": "record_version = :expected",
                    "ExpressionAttributeValues": {":expected": av(stored.record_version)},
                }
            }
        ]
        if stored.is_active:
            ops.append(self._release_name(stored))
        ops += [self._delete(_ref_key(h, tool_id)) for h in sorted(_referenced(stored))]
        ops += [self._delete(_use_key(tool_id, h)) for h in sorted(stored.code_hashes)]

        def explain(codes: list[str]) -> Exception:
            return ConflictError(f"tool {tool_id!r} changed while it was being deleted; re-read and retry")

        self._transact("delete", tool_id, ops, explain)

    def list(self, query: ToolQuery) -> Sequence[Tool]:
        owner = query.owner if query.owner is not None else query.visible_to
        if owner is not None:
            items = list(
                self._paginate(
                    "query",
                    f"index {OWNER_INDEX} owner {owner}",
                    IndexName=OWNER_INDEX,
                    KeyConditionExpression="gsi1pk = :owner",
                    ExpressionAttributeValues={":owner": av(f"OWNER#{owner}")},
                )
            )
            if query.owner is None:  # discovery: the agent's own tools, every public one, its teams'
                for key, what in [("PUBLIC", "public tools")] + [
                    (f"TEAM#{t}", f"tools of team {t}") for t in sorted(query.teams)
                ]:
                    items += self._paginate(
                        "query",
                        f"index {PUBLIC_INDEX} {what}",
                        IndexName=PUBLIC_INDEX,
                        KeyConditionExpression="gsi3pk = :shared",
                        ExpressionAttributeValues={":shared": av(key)},
                    )
                items = list({item["pk"]["S"]: item for item in items}.values())
        else:
            items = list(
                self._paginate(
                    "scan",
                    "tool records",
                    FilterExpression="sk = :record",
                    ExpressionAttributeValues={":record": av("TOOL")},
                )
            )
        tools = (self._tool_from_item(item) for item in items)
        found = sorted((t for t in tools if query.matches(t)), key=lambda t: (t.name, t.tool_id))
        return found[: query.limit]

    def discoverable(
        self, visible_to: str | None, teams: frozenset[str] = frozenset()
    ) -> Sequence[tuple[str, int, tuple[str, ...]]]:
        return discoverable_keys(
            self.list(ToolQuery(visible_to=visible_to, teams=teams, limit=EVERY_TOOL)), visible_to, teams
        )

    def search(self, query: SearchQuery) -> Sequence[SearchHit]:
        """Ranks the visible tools in process: DynamoDB has no text index. The records come from the
        owner and public indexes (or a scan for ``visible_to=None``); analyzed documents are cached
        per record version, so a search costs the listing plus one BM25F pass. Past tens of
        thousands of tools, pair the gateway's semantic search with this (see docs/discovery.md)."""
        return self._search.search(query)

    def find_by_code_hash(self, code_hash: CodeHash) -> Sequence[Tool]:
        items = self._paginate(
            "query",
            f"index {HASH_INDEX} hash {code_hash}",
            IndexName=HASH_INDEX,
            KeyConditionExpression="gsi2pk = :hash",
            ExpressionAttributeValues={":hash": av(f"HASH#{code_hash}")},
        )
        tool_ids = sorted({item["pk"]["S"].removeprefix("TOOL#") for item in items})
        tools = (self._get_tool(tool_id) for tool_id in tool_ids)
        # The index is eventually consistent: keep only tools whose stored history has the hash.
        return [t for t in tools if t is not None and code_hash in t.code_hashes]

    def references(self, code_hash: CodeHash) -> frozenset[str]:
        items = self._paginate(
            "query",
            f"references of {code_hash}",
            ConsistentRead=True,
            KeyConditionExpression="pk = :hash AND begins_with(sk, :ref)",
            ExpressionAttributeValues={":hash": av(f"HASH#{code_hash}"), ":ref": av("REF#")},
        )
        return frozenset(item["sk"]["S"].removeprefix("REF#") for item in items)

    def delete_unreferenced(
        self, code_hashes: Sequence[CodeHash], delete: Callable[[CodeHash], None]
    ) -> Sequence[CodeHash]:
        """Per hash: claim it (a conditional put), read its references (strongly consistent), call
        ``delete`` when there are none, then drop the claim (a conditional delete of this claim
        only). A tool referencing the hash is stored before the claim (and seen), or refused while
        it holds, or stored after ``delete`` returned."""
        deleted: builtins.list[CodeHash] = []
        for code_hash in code_hashes:
            token = str(uuid.uuid4())
            now = time.time()
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item={**_claim_key(code_hash), "token": av(token), "expires": av(int(now + CLAIM_TTL_S))},
                    ConditionExpression="attribute_not_exists(pk) OR expires < :now",
                    ExpressionAttributeValues={":now": av(int(now))},
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    continue  # another collector holds it
                raise translate(exc, backend=BACKEND, operation="put_item", resource=f"claim of {code_hash}") from exc
            except BotoCoreError as exc:
                raise translate(exc, backend=BACKEND, operation="put_item", resource=f"claim of {code_hash}") from exc
            try:
                if not self.references(code_hash):
                    delete(code_hash)
                    deleted.append(code_hash)
            finally:
                try:
                    self._client.delete_item(
                        TableName=self._table,
                        Key=_claim_key(code_hash),
                        ConditionExpression="#token = :token",
                        ExpressionAttributeNames={"#token": "token"},
                        ExpressionAttributeValues={":token": av(token)},
                    )
                except ClientError as exc:
                    if error_code(exc) != "ConditionalCheckFailedException":  # expired and taken over
                        log.warning("dynamodb.claim_release_failed", code_hash=str(code_hash), error=str(exc))
        return deleted

    def change_marker(self) -> None:
        """None: DynamoDB has no cheap marker of the whole table's changes (a Stream would be one)."""
        return None

    def purge_executions(self, before: datetime, *, dry_run: bool = False, keep_newest: int | None = None) -> int:
        """Scans the execution records (no index by time yet) and deletes the old finished ones (and
        those beyond the newest ``keep_newest``), each on the condition that its status is still the
        one read (a record being updated stays)."""
        finals = OneOf(ExecutionField.STATUS, (s for s in ExecutionStatus if s.is_final))
        finished = {e.execution_id: e for e in self._scan_executions((finals,))}
        chosen = purgeable(finished.values(), before, keep_newest)
        old = [(_execution_key(i), finished[i].status.value) for i in chosen]
        if dry_run:
            return len(old)
        removed = 0
        for key, status in old:
            try:
                self._client.delete_item(
                    TableName=self._table,
                    Key=key,
                    ConditionExpression="#status = :status",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={":status": av(status)},
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    continue  # changed or removed meanwhile
                raise translate(exc, backend=BACKEND, operation="delete_item", resource=key["pk"]["S"]) from exc
            except BotoCoreError as exc:
                raise translate(exc, backend=BACKEND, operation="delete_item", resource=key["pk"]["S"]) from exc
            removed += 1
        return removed

    # -- fleet figures ---------------------------------------------------------------------------

    def execution_summary(self, since: datetime, until: datetime, tool_id: str | None = None) -> ExecutionSummary:
        """Scans the execution records (like :meth:`list_executions`) and aggregates them here."""
        check_window(since, until)
        found = self._scan_executions(() if tool_id is None else (Equals(ExecutionField.TOOL_ID, tool_id),))
        return summarize_executions(found, since, until, tool_id)

    def tool_census(self) -> ToolCensus:
        """Reads every tool record (a scan)."""
        return census_of(self.list(ToolQuery(status=None, limit=EVERY_TOOL)))

    def add_counts(self, counts: Sequence[StoredCount]) -> None:
        """One atomic ``ADD`` per count on the item of its day, minute, name and dimensions."""
        for count in counts:
            self._call(
                "update_item",
                f"counter {count.name}",
                TableName=self._table,
                Key=_count_key(count.minute, count.name, count.dimensions),
                UpdateExpression="ADD #value :n",
                ExpressionAttributeNames={"#value": "value"},
                ExpressionAttributeValues={":n": {"N": str(int(count.value))}},
            )

    def read_counts(self, since_minute: int, until_minute: int) -> Sequence[StoredCount]:
        """One query per day of the window (the items of a day share a partition)."""
        found: builtins.list[StoredCount] = []
        if until_minute <= since_minute:
            return found
        for day in range(since_minute // _MINUTES_A_DAY, (until_minute - 1) // _MINUTES_A_DAY + 1):
            for item in self._paginate(
                "query",
                "counters",
                KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
                ExpressionAttributeValues={
                    ":pk": av(f"COUNT#{day}"),
                    ":low": av(f"{since_minute:012d}"),
                    ":high": av(f"{until_minute - 1:012d}~"),
                },
            ):
                found.append(_count_of(item))
        return found

    def purge_counts(self, before_minute: int, *, dry_run: bool = False) -> int:
        """Scans the counter items and deletes those of earlier minutes."""
        old = [
            item
            for item in self._paginate(
                "scan",
                "counters",
                FilterExpression="begins_with(#pk, :count)",
                ExpressionAttributeNames={"#pk": "pk"},
                ExpressionAttributeValues={":count": av("COUNT#")},
            )
            if _count_of(item).minute < before_minute
        ]
        if not dry_run:
            for item in old:
                self._call("delete_item", "counter", TableName=self._table, Key={"pk": item["pk"], "sk": item["sk"]})
        return len(old)

    # -- executions ------------------------------------------------------------------------------

    def record_execution(self, execution: Execution) -> None:
        item = to_item(
            {
                "pk": f"EXEC#{execution.execution_id}",
                "sk": "EXEC",
                "tool_id": execution.tool_id,
                "status": execution.status.value,
            }
        )
        item.update(encode_body(converter.unstructure(execution), f"execution record {execution.execution_id}"))
        self._call("put_item", f"execution {execution.execution_id}", TableName=self._table, Item=item)

    def get_execution(self, execution_id: str) -> Execution:
        response = self._call(
            "get_item",
            f"execution {execution_id}",
            TableName=self._table,
            Key=_execution_key(execution_id),
            ConsistentRead=True,
        )
        if "Item" not in response:
            raise NotFoundError("execution", execution_id)
        return self._execution_from_item(response["Item"])

    def list_executions(self, query: ExecutionQuery) -> Sequence[Execution]:
        """Scans the execution records (filtered on the table's side as far as the items'
        attributes allow, see :mod:`toolrt.adapters.aws.criteria`) and orders them here: fine for a
        history of thousands of calls; a larger one wants an index by caller and time, which this
        table does not have yet."""
        return listing(self._scan_executions(query.criteria()), query.limit)

    def execution_outcomes(self, tool_id: str, since: datetime | None = None) -> Sequence[ExecutionOutcome]:
        """Scans the tool's execution records, like :meth:`list_executions`."""
        return outcomes_of(self.list_executions_of(tool_id), tool_id, since)

    def list_executions_of(self, tool_id: str) -> builtins.list[Execution]:
        """Every execution record of ``tool_id`` (a filtered scan)."""
        return self._scan_executions((Equals(ExecutionField.TOOL_ID, tool_id),))

    def tool_usage(self, tool_ids: Collection[str]) -> Mapping[str, ToolUsage]:
        """Scans the execution records of these tools (filtered on the table's side, at most 100
        ids per scan), like :meth:`list_executions`; a larger history wants counters kept per tool."""
        wanted = sorted(set(tool_ids))
        found: builtins.list[Execution] = []
        for start in range(0, len(wanted), 100):
            found += self._scan_executions((OneOf(ExecutionField.TOOL_ID, wanted[start : start + 100]),))
        return count_usage(found, wanted)

    def _scan_executions(self, criteria: Sequence[Condition]) -> builtins.list[Execution]:
        """The execution records every one of ``criteria`` holds for: a scan filtered by what the
        items' attributes can say, the rest checked on the decoded records."""
        expression, left = execution_filter(criteria)
        found: builtins.list[Execution] = []
        for item in self._paginate(
            "scan",
            "execution records",
            FilterExpression=expression.text,
            ExpressionAttributeNames=dict(expression.names),
            ExpressionAttributeValues=dict(expression.values),
        ):
            execution = self._execution_from_item(item)
            if holds_all(left, execution):
                found.append(execution)
        return found

    def _execution_from_item(self, item: dict[str, Any]) -> Execution:
        try:
            return converter.structure(decode_body(item), Execution)
        except Exception as exc:
            raise StorageError(f"execution record {item.get('pk')} is unreadable: {exc}", backend=BACKEND) from exc

    # -- teams -----------------------------------------------------------------------------------

    def add_team_member(self, team: str, agent_id: str) -> bool:
        item = to_item(
            {"pk": f"TEAM#{team}", "sk": f"MEMBER#{agent_id}", "gsi1pk": f"MEMBER#{agent_id}", "gsi1sk": team}
        )
        try:
            self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc, backend=BACKEND, operation="put_item", resource=f"team {team}", kind="table") from exc
        except BotoCoreError as exc:
            raise translate(exc, backend=BACKEND, operation="put_item", resource=f"team {team}", kind="table") from exc
        return True

    def remove_team_member(self, team: str, agent_id: str) -> bool:
        response = self._call(
            "delete_item",
            f"team {team}",
            TableName=self._table,
            Key={"pk": {"S": f"TEAM#{team}"}, "sk": {"S": f"MEMBER#{agent_id}"}},
            ReturnValues="ALL_OLD",
        )
        return bool(response.get("Attributes"))

    def teams_of(self, agent_id: str) -> frozenset[str]:
        items = self._paginate(
            "query",
            f"index {OWNER_INDEX} teams of {agent_id}",
            IndexName=OWNER_INDEX,
            KeyConditionExpression="gsi1pk = :member",
            ExpressionAttributeValues={":member": av(f"MEMBER#{agent_id}")},
        )
        return frozenset(item["gsi1sk"]["S"] for item in items)

    def list_teams(self) -> Mapping[str, frozenset[str]]:
        teams: dict[str, set[str]] = {}
        for item in self._paginate(
            "scan",
            "team memberships",
            FilterExpression="begins_with(#pk, :team) AND begins_with(#sk, :member)",
            ExpressionAttributeNames={"#pk": "pk", "#sk": "sk"},
            ExpressionAttributeValues={":team": av("TEAM#"), ":member": av("MEMBER#")},
        ):
            teams.setdefault(item["pk"]["S"].removeprefix("TEAM#"), set()).add(item["sk"]["S"].removeprefix("MEMBER#"))
        return {team: frozenset(members) for team, members in sorted(teams.items())}

    # -- helpers ---------------------------------------------------------------------------------

    def _record_item(self, tool: Tool) -> dict[str, Any]:
        item = to_item(
            {
                "pk": f"TOOL#{tool.tool_id}",
                "sk": "TOOL",
                "gsi1pk": f"OWNER#{tool.owner}",
                "gsi1sk": f"{tool.name}#{tool.tool_id}",
                **({"gsi3pk": "PUBLIC"} if tool.visibility is Visibility.PUBLIC else {}),
                **({"gsi3pk": f"TEAM#{tool.team}"} if tool.team is not None else {}),
                "tool_id": tool.tool_id,
                "owner": tool.owner,
                "name": tool.name,
                "status": tool.status.value,
                "visibility": tool.visibility.value,
                "record_version": tool.record_version,
            }
        )
        item.update(encode_body(converter.unstructure(tool), f"record of tool {tool.tool_id}"))
        return item

    def _tool_from_item(self, item: dict[str, Any]) -> Tool:
        try:
            return converter.structure(decode_body(item), Tool)
        except Exception as exc:
            raise StorageError(f"tool record {item.get('pk')} is unreadable: {exc}", backend=BACKEND) from exc

    def _get_tool(self, tool_id: str) -> Tool | None:
        response = self._call(
            "get_item", f"tool {tool_id}", TableName=self._table, Key=_tool_key(tool_id), ConsistentRead=True
        )
        return self._tool_from_item(response["Item"]) if "Item" in response else None

    def _claim_name(self, tool: Tool) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": {**_name_key(tool.owner, tool.name), "tool_id": {"S": tool.tool_id}},
                "ConditionExpression": "attribute_not_exists(pk) OR tool_id = :id",
                "ExpressionAttributeValues": {":id": av(tool.tool_id)},
            }
        }

    def _release_name(self, tool: Tool) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self._table,
                "Key": _name_key(tool.owner, tool.name),
                "ConditionExpression": "attribute_not_exists(pk) OR tool_id = :id",
                "ExpressionAttributeValues": {":id": av(tool.tool_id)},
            }
        }

    def _put_ref(self, code_hash: CodeHash, tool_id: str) -> dict[str, Any]:
        item = {**_ref_key(code_hash, tool_id), "tool_id": {"S": tool_id}}
        return {"Put": {"TableName": self._table, "Item": item}}

    def _put_use(self, tool_id: str, code_hash: CodeHash) -> dict[str, Any]:
        item = {**_use_key(tool_id, code_hash), "gsi2pk": {"S": f"HASH#{code_hash}"}}
        return {"Put": {"TableName": self._table, "Item": item}}

    def _delete(self, key: dict[str, Any]) -> dict[str, Any]:
        return {"Delete": {"TableName": self._table, "Key": key}}

    def _unclaimed(self, ops: builtins.list[dict[str, Any]], hashes: frozenset[CodeHash], explain: Any) -> Any:
        """``ops`` plus a check that no garbage collection claims a hash they start referencing."""
        first = len(ops)
        now = av(int(time.time()))
        ops = ops + [
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": _claim_key(h),
                    "ConditionExpression": "attribute_not_exists(pk) OR expires < :now",
                    "ExpressionAttributeValues": {":now": now},
                }
            }
            for h in sorted(hashes)
        ]

        def explain_claimed(codes: builtins.list[str]) -> Exception:
            if "ConditionalCheckFailed" in codes[first:]:
                return TransientError("garbage collection is removing this code's artifact right now; retry")
            return explain(codes)  # type: ignore[no-any-return]

        return ops, explain_claimed

    def _explain_add(self, tool: Tool) -> Any:
        def explain(codes: list[str]) -> Exception:
            if codes and codes[0] == "ConditionalCheckFailed":
                return ConflictError(f"tool id {tool.tool_id!r} already exists")
            return ConflictError(f"agent {tool.owner!r} already has an active tool named {tool.name!r}")

        return explain

    def _explain_save(self, tool: Tool, expected: int) -> Any:
        def explain(codes: list[str]) -> Exception:
            if codes and codes[0] == "ConditionalCheckFailed":
                return ConflictError(
                    f"tool {tool.tool_id!r} changed concurrently (update based on record version "
                    f"{expected}); re-read and retry"
                )
            return ConflictError(f"agent {tool.owner!r} already has an active tool named {tool.name!r}")

        return explain

    @staticmethod
    def _stale(tool_id: str, stored: int, expected: int) -> ConflictError:
        return ConflictError(
            f"tool {tool_id!r} changed concurrently (stored record version {stored}, update based on "
            f"{expected}); re-read and retry"
        )

    def _transact(self, operation: str, tool_id: str, ops: builtins.list[dict[str, Any]], explain: Any) -> None:
        if len(ops) > MAX_TRANSACTION_ITEMS:
            raise StorageError(
                f"{operation} of tool {tool_id!r} needs {len(ops)} items in one transaction, at most "
                f"{MAX_TRANSACTION_ITEMS} allowed (too many distinct code versions)",
                backend=BACKEND,
            )
        try:
            self._client.transact_write_items(TransactItems=ops, ClientRequestToken=str(uuid.uuid4()))
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if error_code(exc) == "TransactionCanceledException" and "ConditionalCheckFailed" in codes:
                raise explain(codes) from exc
            raise translate(
                exc, backend=BACKEND, operation=f"{operation} (TransactWriteItems)", resource=f"tool {tool_id!r}"
            ) from exc
        except BotoCoreError as exc:
            raise translate(exc, backend=BACKEND, operation=operation, resource=f"tool {tool_id!r}") from exc
        log.debug("dynamodb.transaction", operation=operation, tool_id=tool_id, items=len(ops))

    def _call(self, method: str, resource: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(
                exc, backend=BACKEND, operation=method, resource=f"{resource} in table {self._table}", kind="table"
            ) from exc

    def _paginate(self, method: str, resource: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        try:
            pages = self._client.get_paginator(method).paginate(TableName=self._table, **kwargs)
            for page in pages:
                yield from page.get("Items", [])
        except (ClientError, BotoCoreError) as exc:
            raise translate(
                exc, backend=BACKEND, operation=method, resource=f"{resource} in table {self._table}", kind="table"
            ) from exc
