"""AgentCore Gateway's quotas and rules, enforced in front of moto (which keeps none of them).

Attached to a ``bedrock-agentcore-control`` client, it answers requests the real service would refuse
with the service's own error shapes, before they reach moto, so botocore parses (and retries) them as
it would AWS's: at most ``max_targets`` targets per gateway (ServiceQuotaExceededException), target
names unique per gateway (ConflictException), CreateGatewayTarget at most ``creates_per_s`` a second
(ThrottlingException, which botocore retries), a Lambda target's inline schema with at least one tool,
every full tool name within 64 characters, and a tool's output schema an object at the top (what
CreateGatewayTarget refuses otherwise). It also counts calls by operation.
"""

from __future__ import annotations

import collections
import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.awsrequest import AWSResponse


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        yield self._data

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        return self._data


class AgentCoreQuotas:
    """Enforces the rules above on ``client``; ``observer`` is another client of the same endpoint
    (without this hook) used to read the gateway's current targets."""

    def __init__(self, client: Any, observer: Any, *, max_targets: int = 100, creates_per_s: float = 5.0) -> None:
        self.max_targets = max_targets
        self.creates_per_s = creates_per_s
        self.calls: collections.Counter[str] = collections.Counter()
        self.refused: collections.Counter[str] = collections.Counter()
        self._observer = observer
        self._creates: list[float] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-send.bedrock-agentcore-control", self._check)

    def _check(self, request: Any, **kwargs: Any) -> AWSResponse | None:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        with self._lock:
            self.calls[operation] += 1
        if operation not in ("CreateGatewayTarget", "UpdateGatewayTarget"):
            return None
        body = json.loads(request.body or b"{}")
        path = [unquote(p) for p in urlsplit(request.url).path.split("/") if p]
        gateway_id = path[path.index("gateways") + 1]
        definitions = (
            (((body.get("targetConfiguration") or {}).get("mcp") or {}).get("lambda") or {})
            .get("toolSchema", {})
            .get("inlinePayload")
        )
        if definitions is not None and not definitions:
            return self._refuse(request, operation, 400, "ValidationException", "inline tool schema has no tools")
        for definition in definitions or []:
            if len(f"{body['name']}___{definition['name']}") > 64:
                return self._refuse(request, operation, 400, "ValidationException", "tool name too long")
            if "outputSchema" in definition and definition["outputSchema"].get("type") != "object":
                message = "The top-level output schema must be an object"
                return self._refuse(request, operation, 400, "ValidationException", message)
        if operation == "UpdateGatewayTarget":
            return None
        targets = [
            t
            for page in self._observer.get_paginator("list_gateway_targets").paginate(gatewayIdentifier=gateway_id)
            for t in page["items"]
        ]
        if any(t["name"] == body["name"] for t in targets):
            return self._refuse(request, operation, 409, "ConflictException", f"target {body['name']} already exists")
        if len(targets) >= self.max_targets:
            return self._refuse(
                request, operation, 402, "ServiceQuotaExceededException", f"at most {self.max_targets} targets"
            )
        with self._lock:
            now = time.monotonic()
            self._creates = [t for t in self._creates if now - t < 1.0]
            if len(self._creates) >= self.creates_per_s:
                throttled = True
            else:
                throttled = False
                self._creates.append(now)
        if throttled:
            return self._refuse(request, operation, 429, "ThrottlingException", "Rate exceeded")
        return None

    def _refuse(self, request: Any, operation: str, status: int, code: str, message: str) -> AWSResponse:
        with self._lock:
            self.refused[code] += 1
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": uuid.uuid4().hex, "x-amzn-ErrorType": code}
        return AWSResponse(request.url, status, headers, _Raw(json.dumps({"message": message}).encode()))  # type: ignore[arg-type]  # a dict, as botocore takes it


__all__ = ["AgentCoreQuotas"]
