"""Short leases that let one writer at a time rewrite a gateway shard, across processes.

``UpdateGatewayTarget`` replaces a target's tool list as a whole and has no condition to make it
safe against a concurrent writer: two processes that read the same list and each write back their
own addition would lose one of them. A writer holds the shard's lease from its read until its write
is serving. :class:`DynamoDbLeases` keeps leases as items of toolrt's table (a conditional put takes
one, a conditional delete gives it back, an expired one may be taken over after a crash);
:class:`ProcessLeases` serializes writers of one process only, for setups without the table.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from toolrt.adapters.aws.errors import error_code, translate
from toolrt.domain import TransientError

BACKEND = "dynamodb"


class Leases(Protocol):
    """Holds named leases: one holder per name at a time."""

    def hold(self, name: str) -> Any:
        """A context manager holding the lease ``name`` for its block."""
        ...


class ProcessLeases:
    """Leases held by threads of this process (shared by every adapter in it)."""

    _locks: dict[str, threading.Lock] = {}
    _guard = threading.Lock()

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Hold ``name`` against the other threads of this process."""
        with ProcessLeases._guard:
            lock = ProcessLeases._locks.setdefault(name, threading.Lock())
        with lock:
            yield


class DynamoDbLeases:
    """Leases stored in DynamoDB table ``table`` (``pk = LEASE#<name>``, ``sk = LEASE``).

    A lease lasts ``lease_s`` seconds unless given back first (longer than any write it protects); a
    holder that crashed blocks the name that long at most. Waiting for a held lease gives up after
    ``wait_s`` with a :class:`~toolrt.domain.TransientError` (try again). Threads of this process
    queue in memory first, so only one of them polls the table.
    """

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        lease_s: float = 600.0,
        wait_s: float = 660.0,
        poll_s: float = 0.25,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table
        self._lease_s = lease_s
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._clock = clock
        self._sleep = sleep
        self._local = ProcessLeases()

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Hold lease ``name`` for the block (taking over an expired one)."""
        with self._local.hold(f"{self._table}/{name}"):
            token = uuid.uuid4().hex
            self._take(name, token)
            try:
                yield
            finally:
                self._give_back(name, token)

    def _key(self, name: str) -> dict[str, Any]:
        return {"pk": {"S": f"LEASE#{name}"}, "sk": {"S": "LEASE"}}

    def _take(self, name: str, token: str) -> None:
        deadline = self._clock() + self._wait_s
        while True:
            now = self._clock()
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        **self._key(name),
                        "holder": {"S": token},
                        "expires_at": {"N": str(now + self._lease_s)},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                )
                return
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise translate(exc, backend=BACKEND, operation="put_item", resource=f"lease {name}") from exc
            except BotoCoreError as exc:
                raise translate(exc, backend=BACKEND, operation="put_item", resource=f"lease {name}") from exc
            if self._clock() >= deadline:
                raise TransientError(
                    f"{BACKEND}: lease {name} stayed held by another writer for {self._wait_s:.0f} s; try again"
                )
            self._sleep(self._poll_s)

    def _give_back(self, name: str, token: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(name),
                ConditionExpression="holder = :token",
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":  # expired and taken over: not ours
                raise translate(exc, backend=BACKEND, operation="delete_item", resource=f"lease {name}") from exc
        except BotoCoreError as exc:
            raise translate(exc, backend=BACKEND, operation="delete_item", resource=f"lease {name}") from exc


__all__ = ["DynamoDbLeases", "Leases", "ProcessLeases"]
