"""A boto3 session and client factory with explicit retry configuration, shared by the AWS adapters."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Literal

import boto3
from botocore.config import Config

DEFAULT_MAX_ATTEMPTS = 5
# How long a Code Interpreter call may stay silent: the longest tool timeout (300 s) plus room for
# the session to answer. AWS's own SDK reads this client with a 300 s timeout; reading for less than
# a tool may run would end calls that are still working.
DEFAULT_INVOKE_READ_TIMEOUT_S = 360.0
CODE_INTERPRETER_SERVICE = "bedrock-agentcore"
CONTROL_SERVICE = "bedrock-agentcore-control"
# Gateway target operations are throttled per account (CreateGatewayTarget: 5 a second): the control
# plane's client slows itself down when throttled (botocore's adaptive mode) and tries longer.
CONTROL_MAX_ATTEMPTS = 10


def retry_config(
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    *,
    path_style: bool = False,
    mode: Literal["standard", "adaptive"] = "standard",
) -> Config:
    """botocore retries (throttling, 5xx, transient network errors) with ``max_attempts``; ``mode``
    ``adaptive`` also rate-limits the client after throttling."""
    return Config(
        retries={"mode": mode, "max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=60,
        s3={"addressing_style": "path"} if path_style else None,
    )


def code_interpreter_config(read_timeout_s: float = DEFAULT_INVOKE_READ_TIMEOUT_S) -> Config:
    """One attempt per request and a read timeout above the longest tool call.

    ``InvokeCodeInterpreter`` runs the tool's code: botocore's retries would resend it after a read
    timeout or a 5xx, running the code again while the first run may still be going. The sandbox
    retries itself, and only what provably did not start (see ``AgentCoreCodeInterpreterSandbox``).
    """
    return Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=read_timeout_s)


class AwsClients:
    """Creates and caches one boto3 client per service for one region, credentials and endpoint.

    ``endpoint_url`` points every client at a moto server or LocalStack; S3 then uses path-style
    addressing because bucket sub-domains of 127.0.0.1 do not resolve. Nothing connects until a
    client makes its first call.
    """

    def __init__(
        self,
        region: str,
        endpoint_url: str | None = None,
        *,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        profile_name: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        invoke_read_timeout_s: float = DEFAULT_INVOKE_READ_TIMEOUT_S,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.max_attempts = max_attempts
        self.invoke_read_timeout_s = invoke_read_timeout_s
        self._session_args = {
            "region_name": region,
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
            "profile_name": profile_name,
        }
        self._lock = threading.Lock()
        self._session: boto3.Session | None = None
        self._clients: dict[str, Any] = {}

    @property
    def session(self) -> boto3.Session:
        """The boto3 session (created on first use)."""
        with self._lock:
            if self._session is None:
                args: dict[str, Any] = {k: v for k, v in self._session_args.items() if v}
                self._session = boto3.Session(**args)
            return self._session

    def client(self, service: str) -> Any:
        """The cached client for ``service`` (``dynamodb``, ``s3``, ``bedrock-agentcore``, ...)."""
        # Typed as Any: the stubs overload client() per literal service name, and ours is a variable.
        session: Any = self.session
        with self._lock:
            if service not in self._clients:
                if service == CODE_INTERPRETER_SERVICE:
                    config = code_interpreter_config(self.invoke_read_timeout_s)
                elif service == CONTROL_SERVICE:
                    config = retry_config(max(self.max_attempts, CONTROL_MAX_ATTEMPTS), mode="adaptive")
                else:
                    config = retry_config(self.max_attempts, path_style=service == "s3" and bool(self.endpoint_url))
                self._clients[service] = session.client(
                    service, region_name=self.region, endpoint_url=self.endpoint_url, config=config
                )
            return self._clients[service]

    @property
    def dynamodb(self) -> Any:
        """The DynamoDB client."""
        return self.client("dynamodb")

    @property
    def s3(self) -> Any:
        """The S3 client."""
        return self.client("s3")

    @property
    def agentcore_control(self) -> Any:
        """The AgentCore control-plane client (gateways and targets)."""
        return self.client(CONTROL_SERVICE)

    @property
    def agentcore(self) -> Any:
        """The AgentCore data-plane client (Code Interpreter sessions): one attempt per request."""
        return self.client("bedrock-agentcore")

    @property
    def cloudwatch(self) -> Any:
        """The CloudWatch client (``put_metric_data``)."""
        return self.client("cloudwatch")


def make_clients(
    region: str,
    endpoint_url: str | None = None,
    *,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    profile_name: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    invoke_read_timeout_s: float = DEFAULT_INVOKE_READ_TIMEOUT_S,
) -> AwsClients:
    """An :class:`AwsClients` factory; credentials default to boto3's usual chain."""
    return AwsClients(
        region,
        endpoint_url,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
        profile_name=profile_name,
        max_attempts=max_attempts,
        invoke_read_timeout_s=invoke_read_timeout_s,
    )


def clients_from_env(env: Mapping[str, str]) -> AwsClients:
    """Clients for a toolrt Lambda function: region from ``TOOLRT_AWS_REGION`` or ``AWS_REGION``,
    endpoint from ``TOOLRT_AWS_ENDPOINT_URL``; credentials from the function's role."""
    region = env.get("TOOLRT_AWS_REGION") or env.get("AWS_REGION") or "us-east-1"
    return make_clients(region, env.get("TOOLRT_AWS_ENDPOINT_URL") or None)
