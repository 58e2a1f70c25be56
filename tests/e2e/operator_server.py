"""A ToolrtMcpServer with its operator views, served by uvicorn in a thread on a free loopback port."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import uvicorn

import toolrt
from tests.e2e.test_mcp import _free_port
from toolrt.adapters.mcp.server import ToolrtMcpServer
from toolrt.application import ToolRuntime

OPERATOR = "operator-secret-0123456789"
AGENT_TOKENS = {"alice-token-0123456789": "alice", "mallory-token-0123456789": "mallory"}
ECHO = "def handler(secret: str) -> str:\n    print('echo', secret)\n    return secret\n"
BOOM = "def handler(secret: str) -> str:\n    print('about to fail')\n    raise KeyError(secret)\n"
SCHEMA = {"type": "object", "properties": {"secret": {"type": "string"}}, "required": ["secret"]}


def tool(name: str, code: str = ECHO, description: str = "Echo a secret back.") -> dict[str, Any]:
    """A tool definition taking one string."""
    return {"name": name, "description": description, "language": "python", "code": code, "input_schema": SCHEMA}


class OperatorServer:
    """``toolrt serve --transport http`` in process: /mcp and the operator views on one port."""

    def __init__(
        self,
        rt: ToolRuntime,
        *,
        tokens: Mapping[str, str] | None = None,
        operator_tokens: Sequence[str] = (OPERATOR,),
    ) -> None:
        self.rt = rt
        self.mcp = ToolrtMcpServer(rt, tokens=dict(tokens or {}), watch_interval_s=0)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        app = self.mcp.http_app("127.0.0.1", operator_tokens=list(operator_tokens))
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1)
        self.uvicorn = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.uvicorn.run, name="operator-http", daemon=True)

    def __enter__(self) -> OperatorServer:
        self.thread.start()
        for _ in range(600):
            if self.uvicorn.started or not self.thread.is_alive():
                break
            time.sleep(0.05)
        assert self.uvicorn.started, "the HTTP server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(timeout=30)
        self.mcp.close()

    def get(self, path: str, token: str | None = None, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """GET ``path``: status, headers and body."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": host or f"127.0.0.1:{self.port}"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def json(self, path: str, token: str | None = OPERATOR) -> Any:
        """GET ``path`` with ``token`` and return its JSON (asserting 200)."""
        status, _, body = self.get(path, token)
        assert status == 200, body
        return json.loads(body)


def scripted_runtime() -> tuple[ToolRuntime, dict[str, str]]:
    """A memory runtime with two agents' tools and a few calls; returns it and the tool ids."""
    rt = toolrt.connect("memory", sandbox="inprocess")
    alice = rt.register_tool("alice", tool("echo"), "public")
    secret = rt.register_tool("mallory", tool("ledger", description="Mallory's private ledger."))
    boom = rt.register_tool("alice", tool("boom", BOOM, "Always fails."))
    for i in range(6):
        rt.execute_tool("alice", alice.tool_id, {"secret": f"a{i}"})
    rt.execute_tool("mallory", alice.tool_id, {"secret": "m0"})
    rt.execute_tool("mallory", secret.tool_id, {"secret": "mallory-private-value"})
    for _ in range(2):
        rt.execute_tool("alice", boom.tool_id, {"secret": "x"})
    rt.update_tool("alice", alice.tool_id, tool("echo", ECHO + "# v2\n"))
    rt.execute_tool("alice", alice.tool_id, {"secret": "v2"})
    return rt, {"echo": alice.tool_id, "ledger": secret.tool_id, "boom": boom.tool_id}
