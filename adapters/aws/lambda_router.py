"""The Lambda function behind every gateway target: routes a tool call to the tool and runs it.

AgentCore Gateway invokes the target's Lambda with the tool's arguments as the event and the tool
name, ``{shard}___{code}_{name}``, in ``context.client_context.custom["bedrockAgentCoreToolName"]``.
It does not say who is calling, and IAM cannot make this function reachable only through the
gateway (any principal of the account allowed ``lambda:InvokeFunction`` can invoke it). So the
router believes no caller it is told about: the gateway's interceptor
(:mod:`toolrt.adapters.aws.interceptor`) puts the caller's bearer token into the reserved argument
``__toolrt_identity`` (declared in every published input schema), and the router verifies that token
itself (:class:`~toolrt.adapters.aws.identity.JwtVerifier`) before anything else. A call without a
valid token runs nothing; a caller that may not run the tool finds it "not found", exactly like a
tool that does not exist.

Time. A Lambda stops at its own timeout whatever runs in it, so the router gives the tool at most
the invocation's remaining time less ``LAMBDA_MARGIN_S``: a slow tool ends ``timed_out`` and its
Code Interpreter session is stopped, instead of the Lambda dying with the session still running.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from toolrt.adapters.aws.gateway import output_is_wrapped, published_name, split_gateway_tool_name
from toolrt.adapters.aws.identity import (
    IDENTITY_ARGUMENT,
    CallerVerifier,
    IdentityUnavailable,
    JwtAuthorizer,
    JwtVerifier,
    TokenRejected,
)
from toolrt.application.access import may_execute
from toolrt.application.checks import check_params
from toolrt.application.policy import ExecutionPolicy
from toolrt.domain import ExecutionError, ExecutionStatus, Language, Lock, NotFoundError, ToolRuntimeError
from toolrt.logs import get_logger
from toolrt.ports import ArtifactStore, EnvironmentBuilder, Sandbox, SandboxRequest, ToolRepository

log = get_logger(__name__)

TOOL_NAME_KEY = "bedrockAgentCoreToolName"
# What the router keeps back from the Lambda's remaining time: stopping a session and answering.
LAMBDA_MARGIN_S = 15.0


def gateway_tool_name(context: Any) -> str:
    """The ``{target}___{tool}`` name AgentCore put in the invocation's client context."""
    client_context = getattr(context, "client_context", None)
    custom = getattr(client_context, "custom", None) if client_context is not None else None
    if isinstance(custom, Mapping) and custom.get(TOOL_NAME_KEY):
        return str(custom[TOOL_NAME_KEY])
    raise NotFoundError("gateway tool name in the invocation context", TOOL_NAME_KEY)


class LambdaRouter:
    """Verifies the caller, looks the called tool up, loads its artifact and runs it through ``sandbox``.

    ``verifier`` turns the token in the reserved identity argument into the calling agent. Returns
    plain JSON for the gateway: the tool's output on success (as ``{"result": value}`` when the tool
    returns something other than an object, as its published output schema says), else
    ``{"error": {"type", "message"}, "status"}``; ``policy`` gives limits as the runtime does.
    """

    def __init__(
        self,
        repository: ToolRepository,
        artifacts: ArtifactStore,
        sandbox: Sandbox,
        *,
        verifier: CallerVerifier,
        policy: ExecutionPolicy | None = None,
        environments: EnvironmentBuilder | None = None,
    ) -> None:
        self._verifier = verifier
        self._repository = repository
        self._artifacts = artifacts
        self._sandbox = sandbox
        self._policy = policy or ExecutionPolicy()
        self._environments = environments

    def _environment(self, lock: Lock | None, name: str) -> str | None:
        """Where the wheels of ``lock`` are (fetched from the index into this function's /tmp)."""
        if lock is None:
            return None
        if self._environments is None:
            raise ExecutionError(f"{name} needs packages ({lock.describe()}) and this router was given no environments")
        return self._environments.ensure(lock)

    def __call__(self, event: Any, context: Any) -> dict[str, Any] | Any:
        execution_id = f"exec-{uuid.uuid4().hex}"
        bound = log.bind(execution_id=execution_id)
        try:
            name = gateway_tool_name(context)
            bound = bound.bind(gateway_tool=name)
            tool_id, published = split_gateway_tool_name(name)
            params = dict(event) if isinstance(event, Mapping) else {}
            caller = self._caller(params.pop(IDENTITY_ARGUMENT, None), name)
            try:
                tool = self._repository.get(tool_id)
            except NotFoundError:
                tool = None
            # Another agent's private tool answers exactly like a tool that does not exist.
            if (
                tool is None
                or not tool.is_active
                or published_name(tool) != published
                or not may_execute(self._repository, tool, caller)
            ):
                raise NotFoundError("tool", name)
            bound = bound.bind(tool_id=tool_id, agent_id=caller)
            version = tool.current
            # As on the runtime's own path: parameters are checked before any sandbox starts (and only
            # for a caller who may run the tool, so the schema tells no one else anything).
            check_params(tool.name, version.definition.input_schema, params)
            artifact = self._artifacts.get(version.code_hash)
            if artifact is None:
                raise NotFoundError("artifact", str(version.code_hash))
            timeout, memory, output = self._policy.effective(version.definition.limits)
            remaining = _remaining_s(context)
            if remaining is not None:
                if remaining - LAMBDA_MARGIN_S <= 0:
                    raise ExecutionError(f"the Lambda invocation has {remaining:.1f} s left: too little to run {name}")
                timeout = min(timeout, remaining - LAMBDA_MARGIN_S)
            request = SandboxRequest(
                execution_id=execution_id,
                language=Language(artifact.language),
                code=artifact.code,
                entrypoint=version.definition.entrypoint,
                params=params,
                timeout_s=timeout,
                memory_mb=memory,
                max_output_bytes=output,
                tenant=caller,
                tool=tool_id,
                owner=tool.owner,
                # The same grant the runtime would give (the owner's egress policy, from TOOLRT_NETWORK_*):
                # the sandbox refuses a granted call it cannot confine, as on the runtime's own path.
                egress=self._policy.grant(version.definition),
                environment=self._environment(version.definition.lock, name),
            )
            started = time.monotonic()
            result = self._sandbox.run(request)
        except ToolRuntimeError as exc:
            bound.warning("router.failed", error=str(exc), error_type=type(exc).__name__)
            return {"status": "failed", "error": {"type": type(exc).__name__, "message": str(exc)}}
        bound.info("router.executed", status=result.status.value, wall_ms=(time.monotonic() - started) * 1000)
        if result.status is ExecutionStatus.SUCCEEDED:
            return {"result": result.output} if output_is_wrapped(version.definition) else result.output
        error = result.error
        return {
            "status": result.status.value,
            "error": {"type": error.type if error else result.status.value, "message": error.message if error else ""},
            "stderr": result.stderr,
        }

    def _caller(self, token: Any, name: str) -> str:
        """The agent the call's token names, verified here: nothing else is believed."""
        if not isinstance(token, str) or not token:
            raise ExecutionError(
                f"call of {name} carries no caller identity: the gateway's interceptor writes it "
                "(`toolrt aws provision` configures it); nothing ran"
            )
        try:
            return self._verifier.agent_of(token)
        except TokenRejected as exc:
            raise ExecutionError(
                f"call of {name} refused: the caller's token is not valid ({exc}); nothing ran"
            ) from exc
        except IdentityUnavailable as exc:
            raise ExecutionError(f"call of {name} not run: {exc}") from exc


def _remaining_s(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return float(remaining()) / 1000.0


_router: LambdaRouter | None = None
_router_lock = threading.Lock()


def build_router_from_env(environ: Mapping[str, str] | None = None) -> LambdaRouter:
    """A router over DynamoDB, S3 and Code Interpreter configured by ``TOOLRT_*`` variables, verifying
    callers against the provider named by ``TOOLRT_JWT_*``."""
    from toolrt.adapters.aws.artifacts import S3ArtifactStore
    from toolrt.adapters.aws.clients import clients_from_env
    from toolrt.adapters.aws.environments import CodeInterpreterEnvironments
    from toolrt.adapters.aws.repository import DynamoDbToolRepository
    from toolrt.adapters.aws.sandbox import DEFAULT_CODE_INTERPRETER, AgentCoreCodeInterpreterSandbox

    env = os.environ if environ is None else environ
    clients = clients_from_env(env)
    verifier = JwtVerifier(JwtAuthorizer.from_environment(env))
    return LambdaRouter(
        DynamoDbToolRepository(clients.dynamodb, env.get("TOOLRT_DYNAMODB_TABLE", "toolrt")),
        S3ArtifactStore(clients.s3, env.get("TOOLRT_S3_BUCKET", "toolrt-artifacts")),
        AgentCoreCodeInterpreterSandbox(
            clients.agentcore,
            env.get("TOOLRT_CODE_INTERPRETER_ID", DEFAULT_CODE_INTERPRETER),
            egress=env.get("TOOLRT_CODE_INTERPRETER_EGRESS", "refuse"),
        ),
        verifier=verifier,
        policy=policy_from_env(env),
        # Locked wheels are fetched into the function's writable /tmp, once per warm container; the
        # cache stays within Lambda's default 512 MB of /tmp unless TOOLRT_ENVIRONMENT_CACHE_MB says.
        environments=CodeInterpreterEnvironments(
            None,
            env.get("TOOLRT_ENVIRONMENTS_DIR") or os.path.join(tempfile.gettempdir(), "toolrt-environments"),
            cache_bytes=int(env.get("TOOLRT_ENVIRONMENT_CACHE_MB") or 384) * 1024 * 1024,
        ),
    )


def policy_from_env(env: Mapping[str, str]) -> ExecutionPolicy:
    """The execution policy with any limit a ``TOOLRT_<LIMIT>`` variable sets (the runtime's names)."""
    fields: dict[str, Any] = {}
    for field in attrs.fields(ExecutionPolicy):
        value = env.get(f"TOOLRT_{field.name.upper()}")
        if value is None or not field.init:
            continue
        default = getattr(ExecutionPolicy(), field.name)
        # Lists (network_allow, network_private, denied_packages) are comma-separated, as for the runtime.
        fields[field.name] = value if isinstance(default, tuple) else type(default)(float(value))
    return ExecutionPolicy(**fields)


def handler(event: Any, context: Any, *, factory: Callable[[], LambdaRouter] = build_router_from_env) -> Any:
    """The Lambda entry point: the router is built on the first call and reused while warm."""
    global _router
    with _router_lock:
        if _router is None:
            try:
                _router = factory()
            except ToolRuntimeError as exc:  # misconfigured: refuse every call, and say why
                log.warning("router.unconfigured", error=str(exc), error_type=type(exc).__name__)
                return {"status": "failed", "error": {"type": type(exc).__name__, "message": str(exc)}}
        router = _router
    return router(event, context)
