"""Bringing up (and tearing down) everything the AWS profile needs, idempotently.

``toolrt aws provision`` runs :class:`Provisioner.up`: the DynamoDB table, the artifact bucket, one
IAM role per function and one for the gateway (each with only the actions it uses, on its own
resources), the router and interceptor Lambda functions packaged from the installed toolrt
(:mod:`~toolrt.adapters.aws.lambda_package`), and the AgentCore Gateway with a CUSTOM_JWT authorizer
and the interceptor at both interception points (see :mod:`~toolrt.adapters.aws.interceptor` for why).
Each step finds what exists and creates only what is missing; a function whose code or settings
differ is updated; a gateway without the interceptor gets it. ``dry_run=True`` reads only and
reports the plan. Every resource has a fixed name (:class:`AwsNames`), which is how
``toolrt.connect("aws")`` finds the gateway and the router again: nothing is copied by hand.

:meth:`Provisioner.down` removes the gateway (targets first), the functions and the roles; the
table and the bucket hold the tools and are kept unless ``include_data=True``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from toolrt.adapters.aws.errors import error_code, http_status, translate
from toolrt.adapters.aws.gateway import described_count, is_shard
from toolrt.adapters.aws.identity import ENV_AGENT_CLAIM, JwtAuthorizer

__all__ = ["AwsNames", "AwsStatus", "JwtAuthorizer", "ProvisionResult", "Provisioner", "find_gateway_id", "provision"]
from toolrt.adapters.aws.lambda_package import LambdaPackage, build_lambda_package
from toolrt.adapters.aws.repository import OWNER_INDEX, table_definition
from toolrt.application.policy import ExecutionPolicy
from toolrt.domain import StorageError, ToolRuntimeError, ValidationError
from toolrt.logs import get_logger

log = get_logger(__name__)

GATEWAY_AUTHORIZER = "CUSTOM_JWT"
# The gateway's own semantic search (x_amz_bedrock_agentcore_search), which the interceptor filters to
# what the caller may discover, beside toolrt's lexical search_tools.
GATEWAY_PROTOCOL = {"mcp": {"searchType": "SEMANTIC"}}
ROUTER_HANDLER = "toolrt.adapters.aws.lambda_router.handler"
INTERCEPTOR_HANDLER = "toolrt.adapters.aws.interceptor.handler"
# The router's Lambda outlives the longest tool: session start, lookups and the stop come on top.
ROUTER_TIMEOUT_MARGIN_S = 60
INTERCEPTOR_TIMEOUT_S = 30
PACKAGE_KEY = "lambda/toolrt-functions.zip"
# Artifacts deleted by garbage collection stay as noncurrent versions of the versioned bucket for
# this many days (an undo window), then S3 expires them; the leftover delete markers go too.
# deploy/cloudformation.yaml declares the same rule (a test compares them).
ARTIFACT_LIFECYCLE_RULE: dict[str, Any] = {
    "ID": "toolrt-expire-deleted-artifacts",
    "Status": "Enabled",
    "Filter": {"Prefix": "artifacts/"},
    "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
    "Expiration": {"ExpiredObjectDeleteMarker": True},
}
_LOGS = "arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{function}:*"
GATEWAY_DESCRIPTION = "toolrt: tools registered by agents"
# The system Code Interpreter AWS manages; every other id is one of the account's own
# (botocore's CodeInterpreterArn: code-interpreter/ for the system one, code-interpreter-custom/ else).
SYSTEM_CODE_INTERPRETER = "aws.codeinterpreter.v1"
# UpdateGateway replaces the whole configuration: these fields, which toolrt does not set, are sent
# back as GetGateway reports them so that an update keeps them.
_KEPT_GATEWAY_FIELDS = (
    "kmsKeyArn",
    "customTransformConfiguration",
    "policyEngineConfiguration",
    "exceptionLevel",
    "wafConfiguration",
    "domainOverride",
    "workloadIdentityTemplateArn",
)
_JWT_FIELDS = ("discoveryUrl", "allowedAudience", "allowedClients", "allowedScopes")


def partition_of(region: str) -> str:
    """The ARN partition of ``region`` (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def code_interpreter_arn(region: str, account: str, interpreter_id: str) -> str:
    """The ARN of Code Interpreter ``interpreter_id``: the system one is owned by ``aws``, a custom one
    by the account and named ``code-interpreter-custom/<id>`` (botocore's CodeInterpreterArn)."""
    if interpreter_id == SYSTEM_CODE_INTERPRETER:
        return f"arn:{partition_of(region)}:bedrock-agentcore:{region}:aws:code-interpreter/{interpreter_id}"
    return f"arn:{partition_of(region)}:bedrock-agentcore:{region}:{account}:code-interpreter-custom/{interpreter_id}"


@attrs.frozen
class AwsNames:
    """The names of every resource toolrt provisions (and looks up again)."""

    table: str = "toolrt"
    bucket: str = "toolrt-artifacts"
    gateway: str = "toolrt"
    router_function: str = "toolrt-router"
    interceptor_function: str = "toolrt-interceptor"
    router_role: str = "toolrt-router"
    interceptor_role: str = "toolrt-interceptor"
    gateway_role: str = "toolrt-gateway"


@attrs.frozen
class ProvisionResult:
    """What provisioning did, one ``(action, resource)`` per step, and what the profile needs to connect.

    Actions: ``created``, ``updated``, ``found``, ``deleted``, ``kept``, or ``would create`` /
    ``would update`` / ``would delete`` in a dry run. ``warnings``: what would fail on real AWS but
    was let through against an emulator.
    """

    steps: tuple[tuple[str, str], ...] = ()
    gateway_id: str | None = None
    gateway_url: str | None = None
    router_arn: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def created(self) -> tuple[str, ...]:
        """Resources created by this run."""
        return tuple(r for a, r in self.steps if a == "created")

    @property
    def found(self) -> tuple[str, ...]:
        """Resources that were already there as they should be."""
        return tuple(r for a, r in self.steps if a == "found")

    def lines(self) -> list[str]:
        """One human-readable line per resource, for the CLI."""
        return [f"{action:<13}{resource}" for action, resource in self.steps] + [
            f"{'warning':<13}{warning}" for warning in self.warnings
        ]

    def merge(self, other: ProvisionResult) -> ProvisionResult:
        """Both results together (the other's ids win when set)."""
        return ProvisionResult(
            self.steps + other.steps,
            other.gateway_id or self.gateway_id,
            other.gateway_url or self.gateway_url,
            other.router_arn or self.router_arn,
            self.warnings + other.warnings,
        )


@attrs.frozen
class AwsStatus:
    """What ``toolrt aws status`` reports: who the credentials are, and each resource's state.

    ``checks`` holds ``(resource, state, detail)``; a state of ``ok`` is healthy, anything else
    (``missing``, ``not ready``, ``error``, ``incomplete``) says what to look at. ``ok`` when every check is.
    """

    region: str
    endpoint_url: str | None
    account: str | None
    principal: str | None
    checks: tuple[tuple[str, str, str], ...]

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return bool(self.checks) and all(state == "ok" for _, state, _ in self.checks)


class Provisioner:
    """Creates, checks or removes toolrt's resources through the given boto3 clients.

    ``clients`` is an :class:`~toolrt.adapters.aws.clients.AwsClients`. ``on_step(action, resource)``
    is called as each step completes (the CLI's progress display). ``package`` builds the functions'
    code (default: from the installed toolrt). ``router_environment``: more ``TOOLRT_*`` settings the
    router function runs with (the owner's egress policy and Code Interpreter egress mode, so that a
    call through the gateway is granted and refused exactly as through the runtime); empty values
    are left out.
    """

    def __init__(
        self,
        clients: Any,
        *,
        names: AwsNames | None = None,
        jwt: JwtAuthorizer | None = None,
        code_interpreter_id: str = "aws.codeinterpreter.v1",
        max_timeout_s: float = ExecutionPolicy().max_timeout_s,
        dry_run: bool = False,
        on_step: Callable[[str, str], None] | None = None,
        package: Callable[[], LambdaPackage] = build_lambda_package,
        wait_s: float = 1.0,
        router_environment: Mapping[str, str] | None = None,
    ) -> None:
        if jwt is not None and jwt.problems():
            raise ValidationError("the identity provider cannot be used: " + "; ".join(jwt.problems()))
        self._clients = clients
        self.names = names or AwsNames()
        self._jwt = jwt
        self._interpreter = code_interpreter_id
        self._max_timeout_s = max_timeout_s
        self._router_environment = {
            k: v for k, v in (router_environment or {}).items() if k.startswith("TOOLRT_") and v
        }
        self._dry_run = dry_run
        self._on_step = on_step
        self._package_factory = package
        self._package: LambdaPackage | None = None
        self._wait_s = wait_s
        self._region = clients.region
        self._account: str | None = None
        self._steps: list[tuple[str, str]] = []
        self._warnings: list[str] = []

    # -- up ------------------------------------------------------------------------------------

    def up(self) -> ProvisionResult:
        """Bring every resource to the state the profile needs; returns what was done."""
        self._steps = []
        jwt = self._identity_provider()
        table_arn = self._table()
        bucket_arn = self._bucket()
        router_role = self._role(
            self.names.router_role, "lambda.amazonaws.com", self._router_policy(table_arn, bucket_arn)
        )
        interceptor_role = self._role(
            self.names.interceptor_role, "lambda.amazonaws.com", self._interceptor_policy(table_arn)
        )
        router_arn = self._function(
            self.names.router_function,
            ROUTER_HANDLER,
            router_role,
            int(self._max_timeout_s) + ROUTER_TIMEOUT_MARGIN_S,
            512,
            {**self._function_environment(), **(jwt.environment() if jwt else {})},
        )
        interceptor_arn = self._function(
            self.names.interceptor_function,
            INTERCEPTOR_HANDLER,
            interceptor_role,
            INTERCEPTOR_TIMEOUT_S,
            256,
            {"TOOLRT_DYNAMODB_TABLE": self.names.table, **(jwt.environment() if jwt else {})},
        )
        gateway_role = self._role(
            self.names.gateway_role,
            "bedrock-agentcore.amazonaws.com",
            self._gateway_policy(router_arn, interceptor_arn),
            source_account=True,
        )
        gateway_id, gateway_url = self._gateway(gateway_role, interceptor_arn, jwt)
        return ProvisionResult(tuple(self._steps), gateway_id, gateway_url, router_arn, tuple(self._warnings))

    def _identity_provider(self) -> JwtAuthorizer | None:
        """The provider the gateway and both functions verify tokens with: the one given, else the one
        the existing gateway has (with the agent claim the interceptor was given). A new gateway needs one."""
        if self._jwt is not None:
            return self._jwt
        control = self._clients.agentcore_control
        what = f"agentcore gateway {self.names.gateway}"
        gateway_id = self._call("agentcore-gateway", what, lambda: find_gateway_id(control, self.names.gateway))
        if gateway_id is not None:
            found = self._call("agentcore-gateway", what, lambda: control.get_gateway(gatewayIdentifier=gateway_id))
            existing = JwtAuthorizer.from_configuration(found.get("authorizerConfiguration"), self._agent_claim())
            if existing is not None:
                return existing
        if self._dry_run:
            return None
        raise StorageError(
            "the gateway authenticates agents with JSON Web Tokens: pass the identity provider "
            "(`toolrt aws provision --jwt-discovery-url URL --jwt-audience AUD`, or --jwt-client ID, or "
            "--jwt-scope SCOPE), whose tokens name the agent in a claim (--agent-claim, default sub)",
            backend="agentcore-gateway",
        )

    def _agent_claim(self) -> str:
        lam = self._clients.client("lambda")
        what = f"lambda function {self.names.interceptor_function}"
        found = self._describe(
            lambda: lam.get_function(FunctionName=self.names.interceptor_function)["Configuration"], "lambda", what
        )
        variables = ((found or {}).get("Environment") or {}).get("Variables") or {}
        return str(variables.get(ENV_AGENT_CLAIM) or "sub")

    # -- status --------------------------------------------------------------------------------

    def status(self) -> AwsStatus:
        """Read-only: the credentials in use and the state of every resource the profile needs."""
        endpoint = getattr(self._clients, "endpoint_url", None)
        try:
            identity = self._clients.client("sts").get_caller_identity()
        except (ClientError, BotoCoreError) as exc:
            error = translate(exc, backend="sts", operation="get_caller_identity", resource="the credentials in use")
            return AwsStatus(self._region, endpoint, None, None, (("credentials", "error", str(error)),))
        self._account = str(identity["Account"])
        checks: list[tuple[str, str, str]] = [("credentials", "ok", str(identity.get("Arn", "")))]
        for check in (self._table_status, self._bucket_status, self._roles_status, self._functions_status):
            try:
                checks += check()
            except ToolRuntimeError as exc:
                checks.append((check.__name__.strip("_").replace("_status", ""), "error", str(exc)))
        try:
            checks += self._gateway_status()
        except ToolRuntimeError as exc:
            checks.append((f"agentcore gateway {self.names.gateway}", "error", str(exc)))
        return AwsStatus(self._region, endpoint, self._account, str(identity.get("Arn", "")), tuple(checks))

    def _table_status(self) -> list[tuple[str, str, str]]:
        what = f"dynamodb table {self.names.table}"
        found = self._describe(
            lambda: self._clients.dynamodb.describe_table(TableName=self.names.table)["Table"], "dynamodb", what
        )
        if found is None:
            return [(what, "missing", "`toolrt aws provision` creates it")]
        state = str(found.get("TableStatus", ""))
        return [(what, "ok" if state == "ACTIVE" else "not ready", state.lower())]

    def _bucket_status(self) -> list[tuple[str, str, str]]:
        what = f"s3 bucket {self.names.bucket}"
        if self._exists(lambda: self._clients.s3.head_bucket(Bucket=self.names.bucket)):
            return [(what, "ok", "")]
        return [(what, "missing", "`toolrt aws provision` creates it")]

    def _roles_status(self) -> list[tuple[str, str, str]]:
        iam = self._clients.client("iam")
        checks = []
        for role in (self.names.router_role, self.names.interceptor_role, self.names.gateway_role):
            present = self._exists(partial(iam.get_role, RoleName=role))
            checks.append(
                (f"iam role {role}", "ok" if present else "missing", "" if present else "`toolrt aws provision`")
            )
        return checks

    def _functions_status(self) -> list[tuple[str, str, str]]:
        lam = self._clients.client("lambda")
        checks = []
        for function in (self.names.router_function, self.names.interceptor_function):
            what = f"lambda function {function}"
            found = self._describe(partial(_configuration, lam, function), "lambda", what)
            if found is None:
                checks.append((what, "missing", "`toolrt aws provision` creates it"))
                continue
            variables = (found.get("Environment") or {}).get("Variables") or {}
            state = str(found.get("State") or "Active")
            if "TOOLRT_JWT_DISCOVERY_URL" not in variables:
                checks.append(
                    (what, "incomplete", "no identity provider: it refuses every call; run `toolrt aws provision`")
                )
            elif state != "Active":
                checks.append((what, "not ready", state.lower()))
            else:
                checks.append(
                    (
                        what,
                        "ok",
                        f"{found.get('Runtime', '')}, verifies tokens of {variables['TOOLRT_JWT_DISCOVERY_URL']}",
                    )
                )
        return checks

    def _gateway_status(self) -> list[tuple[str, str, str]]:
        control = self._clients.agentcore_control
        what = f"agentcore gateway {self.names.gateway}"
        gateway_id = find_gateway_id(control, self.names.gateway)
        if gateway_id is None:
            return [(what, "missing", "`toolrt aws provision --jwt-discovery-url ...` creates it")]
        found = self._call("agentcore-gateway", what, lambda: control.get_gateway(gatewayIdentifier=gateway_id))
        status = str(found.get("status", ""))
        interceptors = found.get("interceptorConfigurations") or []
        if status not in ("READY", "UPDATING"):
            reasons = "; ".join(found.get("statusReasons") or [])
            checks = [(what, "not ready", f"{status.lower()}{': ' + reasons if reasons else ''}")]
        elif not interceptors:
            checks = [
                (what, "incomplete", "no interceptor: every agent would list every tool; run `toolrt aws provision`")
            ]
        else:
            checks = [(what, "ok", str(found.get("gatewayUrl", "")))]
        pages = control.get_paginator("list_gateway_targets").paginate(gatewayIdentifier=gateway_id)
        targets = self._call("agentcore-gateway", what, lambda: [t for page in pages for t in page.get("items", [])])
        shards = tools = 0
        for target in targets:
            if is_shard(str(target.get("name", ""))):
                shards += 1
                tools += described_count(str(target.get("description", "")))
        checks.append((f"gateway targets of {gateway_id}", "ok", f"{tools} tools on {shards} shard targets"))
        return checks

    # -- down ----------------------------------------------------------------------------------

    def down(self, *, include_data: bool = False) -> ProvisionResult:
        """Remove the gateway, functions and roles (and, with ``include_data``, the table and bucket)."""
        self._steps = []
        control = self._clients.agentcore_control
        gateway_id = find_gateway_id(control, self.names.gateway)
        if gateway_id is None:
            self._step("absent", f"agentcore gateway {self.names.gateway}")
        else:
            targets = [
                t["targetId"]
                for page in control.get_paginator("list_gateway_targets").paginate(gatewayIdentifier=gateway_id)
                for t in page.get("items", [])
            ]
            for target in targets:
                self._act(
                    partial(control.delete_gateway_target, gatewayIdentifier=gateway_id, targetId=target),
                    "deleted",
                    f"gateway target {target}",
                )
            self._act(
                lambda: control.delete_gateway(gatewayIdentifier=gateway_id),
                "deleted",
                f"agentcore gateway {self.names.gateway} ({gateway_id})",
            )
        lam = self._clients.client("lambda")
        for function in (self.names.router_function, self.names.interceptor_function):
            if self._exists(partial(lam.get_function, FunctionName=function)):
                self._act(partial(lam.delete_function, FunctionName=function), "deleted", f"lambda function {function}")
            else:
                self._step("absent", f"lambda function {function}")
        iam = self._clients.client("iam")
        for role in (self.names.gateway_role, self.names.router_role, self.names.interceptor_role):
            if not self._exists(partial(iam.get_role, RoleName=role)):
                self._step("absent", f"iam role {role}")
                continue

            def remove(r: str = role) -> None:
                for policy in iam.list_role_policies(RoleName=r).get("PolicyNames", []):
                    iam.delete_role_policy(RoleName=r, PolicyName=policy)
                iam.delete_role(RoleName=r)

            self._act(remove, "deleted", f"iam role {role}")
        if include_data:
            s3 = self._clients.s3
            if self._exists(lambda: s3.head_bucket(Bucket=self.names.bucket)):

                def empty_and_delete() -> None:
                    for page in s3.get_paginator("list_object_versions").paginate(Bucket=self.names.bucket):
                        doomed = [
                            {"Key": v["Key"], "VersionId": v["VersionId"]}
                            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
                        ]
                        if doomed:
                            s3.delete_objects(Bucket=self.names.bucket, Delete={"Objects": doomed})
                    s3.delete_bucket(Bucket=self.names.bucket)

                self._act(empty_and_delete, "deleted", f"s3 bucket {self.names.bucket}")
            if self._exists(lambda: self._clients.dynamodb.describe_table(TableName=self.names.table)):
                self._act(
                    lambda: self._clients.dynamodb.delete_table(TableName=self.names.table),
                    "deleted",
                    f"dynamodb table {self.names.table}",
                )
        else:
            self._step(
                "kept",
                f"dynamodb table {self.names.table} and s3 bucket {self.names.bucket} (--include-data removes them)",
            )
        return ProvisionResult(tuple(self._steps))

    # -- steps ---------------------------------------------------------------------------------

    def _table(self) -> str:
        client = self._clients.dynamodb
        what = f"dynamodb table {self.names.table}"
        found = self._describe(lambda: client.describe_table(TableName=self.names.table)["Table"], "dynamodb", what)
        if found is not None:
            self._step("found", what)
            return str(found["TableArn"])
        if self._dry_run:
            self._step("would create", what)
            return f"arn:{partition_of(self._region)}:dynamodb:{self._region}:{self.account}:table/{self.names.table}"
        try:
            client.create_table(**table_definition(self.names.table))
            client.get_waiter("table_exists").wait(
                TableName=self.names.table, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":  # created concurrently by another provisioner
                raise translate(exc, backend="dynamodb", operation="create_table", resource=what) from exc
        except BotoCoreError as exc:
            raise translate(exc, backend="dynamodb", operation="create_table", resource=what) from exc
        self._step("created", what)
        return str(client.describe_table(TableName=self.names.table)["Table"]["TableArn"])

    def _lifecycle(self) -> None:
        # Deleting a versioned object keeps its bytes as a noncurrent version: without this rule,
        # garbage collection would reclaim nothing. A bucket with rules of its own is left alone.
        client = self._clients.s3
        try:
            client.get_bucket_lifecycle_configuration(Bucket=self.names.bucket)
            return
        except ClientError as exc:
            if error_code(exc) != "NoSuchLifecycleConfiguration":
                raise translate(
                    exc, backend="s3", operation="get_bucket_lifecycle_configuration", resource=self.names.bucket
                ) from exc
        if self._dry_run:
            self._step("would add", f"lifecycle rule {ARTIFACT_LIFECYCLE_RULE['ID']}")
            return
        client.put_bucket_lifecycle_configuration(
            Bucket=self.names.bucket, LifecycleConfiguration={"Rules": [ARTIFACT_LIFECYCLE_RULE]}
        )
        self._step("added", f"lifecycle rule {ARTIFACT_LIFECYCLE_RULE['ID']} on s3 bucket {self.names.bucket}")

    def _bucket(self) -> str:
        client = self._clients.s3
        what = f"s3 bucket {self.names.bucket}"
        arn = f"arn:{partition_of(self._region)}:s3:::{self.names.bucket}"
        if self._exists(lambda: client.head_bucket(Bucket=self.names.bucket)):
            self._step("found", what)
            self._lifecycle()
            return arn
        if self._dry_run:
            self._step("would create", what)
            return arn
        args: dict[str, Any] = {"Bucket": self.names.bucket}
        if self._region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        try:
            client.create_bucket(**args)
            client.put_public_access_block(
                Bucket=self.names.bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
            client.put_bucket_versioning(Bucket=self.names.bucket, VersioningConfiguration={"Status": "Enabled"})
            client.put_bucket_lifecycle_configuration(
                Bucket=self.names.bucket, LifecycleConfiguration={"Rules": [ARTIFACT_LIFECYCLE_RULE]}
            )
        except ClientError as exc:
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                raise translate(exc, backend="s3", operation="create_bucket", resource=what) from exc
        except BotoCoreError as exc:
            raise translate(exc, backend="s3", operation="create_bucket", resource=what) from exc
        self._step("created", what)
        return arn

    def _role(self, name: str, service: str, policy: dict[str, Any], *, source_account: bool = False) -> str:
        iam = self._clients.client("iam")
        what = f"iam role {name}"
        statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        if source_account:
            statement["Condition"] = {"StringEquals": {"aws:SourceAccount": self.account}}
        trust = {"Version": "2012-10-17", "Statement": [statement]}
        found = self._describe(lambda: iam.get_role(RoleName=name)["Role"], "iam", what)
        wanted = json.dumps(policy, sort_keys=True)
        if found is None:
            if self._dry_run:
                self._step("would create", what)
                return f"arn:{partition_of(self._region)}:iam::{self.account}:role/{name}"
            created = self._call(
                "iam",
                what,
                lambda: iam.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=json.dumps(trust),
                    Description="toolrt: provisioned by `toolrt aws provision`",
                ),
            )
            self._call(
                "iam", what, lambda: iam.put_role_policy(RoleName=name, PolicyName="toolrt", PolicyDocument=wanted)
            )
            self._step("created", what)
            return str(created["Role"]["Arn"])
        current = self._describe(
            lambda: iam.get_role_policy(RoleName=name, PolicyName="toolrt")["PolicyDocument"], "iam", what
        )
        if isinstance(current, str):
            current = json.loads(current)
        if current is not None and json.dumps(current, sort_keys=True) == wanted:
            self._step("found", what)
        elif self._dry_run:
            self._step("would update", what)
        else:
            self._call(
                "iam", what, lambda: iam.put_role_policy(RoleName=name, PolicyName="toolrt", PolicyDocument=wanted)
            )
            self._step("updated", what)
        return str(found["Arn"])

    def _function(
        self, name: str, handler: str, role_arn: str, timeout: int, memory: int, environment: dict[str, str]
    ) -> str:
        lam = self._clients.client("lambda")
        what = f"lambda function {name}"
        found = self._describe(lambda: lam.get_function(FunctionName=name)["Configuration"], "lambda", what)
        arn = f"arn:{partition_of(self._region)}:lambda:{self._region}:{self.account}:function:{name}"
        package = self.package
        if found is None:
            if self._dry_run:
                self._step("would create", what)
                return arn
            key = self._upload(package)
            created = self._call(
                "lambda",
                what,
                lambda: self._retry_role(
                    lambda: lam.create_function(
                        FunctionName=name,
                        Runtime=package.runtime,
                        Architectures=[package.architecture],
                        Role=role_arn,
                        Handler=handler,
                        Code={"S3Bucket": self.names.bucket, "S3Key": key},
                        Timeout=timeout,
                        MemorySize=memory,
                        Environment={"Variables": environment},
                        Description="toolrt: provisioned by `toolrt aws provision`",
                    )
                ),
            )
            self._step("created", what)
            return str(created["FunctionArn"])
        changes = []
        if found.get("CodeSha256") != package.sha256:
            changes.append("code")
        settings = {
            "Runtime": package.runtime,
            "Handler": handler,
            "Role": role_arn,
            "Timeout": timeout,
            "MemorySize": memory,
        }
        if (
            any(found.get(k) != v for k, v in settings.items())
            or (found.get("Environment") or {}).get("Variables") != environment
        ):
            changes.append("settings")
        if not changes:
            self._step("found", what)
        elif self._dry_run:
            self._step("would update", f"{what} ({', '.join(changes)})")
        else:
            if "code" in changes:
                key = self._upload(package)
                self._call(
                    "lambda",
                    what,
                    lambda: lam.update_function_code(FunctionName=name, S3Bucket=self.names.bucket, S3Key=key),
                )
                self._wait_function(lam, name)
            if "settings" in changes:
                self._call(
                    "lambda",
                    what,
                    lambda: lam.update_function_configuration(
                        FunctionName=name,
                        Environment={"Variables": environment},
                        **settings,
                    ),
                )
            self._step("updated", f"{what} ({', '.join(changes)})")
        return str(found.get("FunctionArn", arn))

    def _gateway(self, role_arn: str, interceptor_arn: str, jwt: JwtAuthorizer | None) -> tuple[str | None, str | None]:
        control = self._clients.agentcore_control
        what = f"agentcore gateway {self.names.gateway}"
        gateway_id = self._call("agentcore-gateway", what, lambda: find_gateway_id(control, self.names.gateway))
        if gateway_id is not None:
            found = self._call("agentcore-gateway", what, lambda: control.get_gateway(gatewayIdentifier=gateway_id))
            wanted = self._gateway_settings(role_arn, interceptor_arn, jwt, found)
            differs = [key for key, value in wanted.items() if not _same(key, found.get(key), value)]
            if not differs:
                self._step("found", f"{what} ({gateway_id})")
            elif self._dry_run:
                self._step("would update", f"{what} ({gateway_id}): {', '.join(differs)}")
            else:
                # UpdateGateway replaces the whole configuration: send all of it, with what toolrt does
                # not set kept as it is.
                update_fields = set(control.meta.service_model.operation_model("UpdateGateway").input_shape.members)
                kept = {k: found[k] for k in _KEPT_GATEWAY_FIELDS if k in update_fields and found.get(k) is not None}
                self._call(
                    "agentcore-gateway",
                    what,
                    lambda: control.update_gateway(
                        gatewayIdentifier=gateway_id, name=self.names.gateway, **kept, **wanted
                    ),
                )
                self._step("updated", f"{what} ({gateway_id}): {', '.join(differs)}")
            return gateway_id, found.get("gatewayUrl")
        if self._dry_run:
            self._step("would create", what)
            return None, None
        if jwt is None:
            raise StorageError("a new gateway needs an identity provider", backend="agentcore-gateway")
        settings = self._gateway_settings(role_arn, interceptor_arn, jwt, {})
        created = self._call(
            "agentcore-gateway",
            what,
            lambda: self._retry_role(lambda: control.create_gateway(name=self.names.gateway, **settings)),
        )
        gid = str(created["gatewayId"])
        self._step("created", f"{what} ({gid})")
        return gid, created.get("gatewayUrl")

    def _gateway_settings(
        self, role_arn: str, interceptor_arn: str, jwt: JwtAuthorizer | None, found: Mapping[str, Any]
    ) -> dict[str, Any]:
        """What toolrt sets on its gateway, merged into what ``found`` has for fields toolrt leaves alone
        (an interceptor's other input settings, the authorizer's custom claims, the protocol's versions)."""
        interceptor = {
            "interceptor": {"lambda": {"arn": interceptor_arn}},
            "interceptionPoints": ["REQUEST", "RESPONSE"],
            "inputConfiguration": {"passRequestHeaders": True},
        }
        for existing in found.get("interceptorConfigurations") or []:
            if ((existing.get("interceptor") or {}).get("lambda") or {}).get("arn") == interceptor_arn:
                inputs = {**(existing.get("inputConfiguration") or {}), "passRequestHeaders": True}
                interceptor = {**existing, **interceptor, "inputConfiguration": inputs}
        protocol = dict(found.get("protocolConfiguration") or {})
        protocol["mcp"] = {**(protocol.get("mcp") or {}), **GATEWAY_PROTOCOL["mcp"]}
        authorizer = found.get("authorizerConfiguration") or {}
        if jwt is not None:
            theirs = {k: v for k, v in (authorizer.get("customJWTAuthorizer") or {}).items() if k not in _JWT_FIELDS}
            authorizer = {"customJWTAuthorizer": {**theirs, **jwt.configuration()["customJWTAuthorizer"]}}
        return {
            "description": GATEWAY_DESCRIPTION,
            "roleArn": role_arn,
            "protocolType": "MCP",
            "protocolConfiguration": protocol,
            "authorizerType": GATEWAY_AUTHORIZER,
            "authorizerConfiguration": authorizer,
            "interceptorConfigurations": [interceptor],
        }

    # -- policies ------------------------------------------------------------------------------

    def _function_environment(self) -> dict[str, str]:
        return {
            "TOOLRT_DYNAMODB_TABLE": self.names.table,
            "TOOLRT_S3_BUCKET": self.names.bucket,
            "TOOLRT_CODE_INTERPRETER_ID": self._interpreter,
            "TOOLRT_MAX_TIMEOUT_S": str(self._max_timeout_s),
            **self._router_environment,
        }

    def _interpreter_arn(self) -> str:
        return code_interpreter_arn(self._region, self.account, self._interpreter)

    def _logs(self, function: str) -> dict[str, Any]:
        return {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": _LOGS.format(
                partition=partition_of(self._region), region=self._region, account=self.account, function=function
            ),
        }

    def _router_policy(self, table_arn: str, bucket_arn: str) -> dict[str, Any]:
        # The router reads one tool record (and the caller's teams, for a team tool) and one artifact,
        # and runs code in the Code Interpreter.
        return {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": table_arn},
                {"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": f"{table_arn}/index/{OWNER_INDEX}"},
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"{bucket_arn}/artifacts/*"},
                {
                    "Effect": "Allow",
                    "Action": [
                        "bedrock-agentcore:StartCodeInterpreterSession",
                        "bedrock-agentcore:InvokeCodeInterpreter",
                        "bedrock-agentcore:StopCodeInterpreterSession",
                    ],
                    "Resource": self._interpreter_arn(),
                },
                self._logs(self.names.router_function),
            ],
        }

    def _interceptor_policy(self, table_arn: str) -> dict[str, Any]:
        # The interceptor reads a tool record (calls) and queries the owner and public indexes (lists).
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:GetItem", "dynamodb:Query"],
                    "Resource": [table_arn, f"{table_arn}/index/*"],
                },
                self._logs(self.names.interceptor_function),
            ],
        }

    @staticmethod
    def _gateway_policy(router_arn: str, interceptor_arn: str) -> dict[str, Any]:
        return {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [router_arn, interceptor_arn]},
            ],
        }

    # -- helpers -------------------------------------------------------------------------------

    @property
    def account(self) -> str:
        """The account id of the credentials in use."""
        if self._account is None:
            sts = self._clients.client("sts")
            self._account = str(self._call("sts", "caller identity", lambda: sts.get_caller_identity())["Account"])
        return self._account

    @property
    def package(self) -> LambdaPackage:
        """The functions' code, built once per run. A package that would not load on its Lambda
        runtime is refused, except against an emulator (which never runs the functions): there a
        ``warning`` step says what real AWS would refuse."""
        if self._package is None:
            package = self._package_factory()
            if package.problems:
                if not getattr(self._clients, "endpoint_url", None):
                    raise StorageError(
                        "the functions' package would not load: " + "; ".join(package.problems), backend="lambda"
                    )
                for problem in package.problems:
                    self._warn(f"{problem} (let through: {self._clients.endpoint_url} never runs the functions)")
            self._package = package
        return self._package

    def _upload(self, package: LambdaPackage) -> str:
        what = f"s3://{self.names.bucket}/{PACKAGE_KEY}"
        self._call(
            "s3",
            what,
            lambda: self._clients.s3.put_object(Bucket=self.names.bucket, Key=PACKAGE_KEY, Body=package.data),
        )
        return PACKAGE_KEY

    def _retry_role(self, call: Callable[[], Any]) -> Any:
        # A role just created takes a few seconds to be assumable by Lambda and AgentCore.
        for attempt in range(10):
            try:
                return call()
            except ClientError as exc:
                message = str(exc).lower()
                if (
                    attempt == 9
                    or error_code(exc) not in ("InvalidParameterValueException", "ValidationException")
                    or ("role" not in message)
                ):
                    raise
                time.sleep(self._wait_s)
        raise AssertionError("unreachable")

    @staticmethod
    def _wait_function(lam: Any, name: str) -> None:
        try:
            lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        except Exception as exc:  # the next call reports a function still updating, with its own message
            log.debug("aws.provision.wait_failed", function=name, error=str(exc))

    def _warn(self, message: str) -> None:
        self._warnings.append(message)
        log.warning("aws.provision.warning", message=message)
        if self._on_step is not None:
            self._on_step("warning", message)

    def _step(self, action: str, resource: str) -> None:
        self._steps.append((action, resource))
        log.info("aws.provision", action=action, resource=resource)
        if self._on_step is not None:
            self._on_step(action, resource)

    def _act(self, call: Callable[[], Any], action: str, resource: str) -> None:
        if self._dry_run:
            self._step("would delete", resource)
            return
        self._call("aws", resource, call)
        self._step(action, resource)

    @staticmethod
    def _exists(call: Callable[[], Any]) -> bool:
        try:
            call()
        except ClientError as exc:
            if http_status(exc) == 404 or error_code(exc) in (
                "ResourceNotFoundException",
                "NoSuchEntity",
                "NoSuchBucket",
                "404",
                "NotFound",
            ):
                return False
            raise translate(exc, backend="aws", operation="describe", resource="a toolrt resource") from exc
        return True

    def _describe(self, call: Callable[[], Any], backend: str, what: str) -> Any:
        try:
            return call()
        except ClientError as exc:
            if http_status(exc) == 404 or error_code(exc) in (
                "ResourceNotFoundException",
                "NoSuchEntity",
                "404",
                "NotFound",
            ):
                return None
            raise translate(exc, backend=backend, operation="describe", resource=what) from exc
        except BotoCoreError as exc:
            raise translate(exc, backend=backend, operation="describe", resource=what) from exc

    @staticmethod
    def _call(backend: str, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, backend=backend, operation="provision", resource=what) from exc


def _configuration(lam: Any, function: str) -> Any:
    return lam.get_function(FunctionName=function)["Configuration"]


def _same(key: str, found: Any, wanted: Any) -> bool:
    """Whether a gateway field as GetGateway reports it already is what toolrt sets: lists of values
    compare as sets (the service may reorder them), fields toolrt does not set are not compared."""
    if key == "interceptorConfigurations":
        if not isinstance(found, list) or len(found) != len(wanted):
            return False
        return all(_same_interceptor(f, w) for f, w in zip(found, wanted, strict=True))
    if key == "authorizerConfiguration":
        theirs = (found or {}).get("customJWTAuthorizer") or {}
        ours = wanted.get("customJWTAuthorizer") or {}
        return all(_normal(theirs.get(k)) == _normal(ours.get(k)) for k in _JWT_FIELDS)
    if key == "protocolConfiguration":
        return bool(((found or {}).get("mcp") or {}).get("searchType") == wanted["mcp"]["searchType"])
    return bool(found == wanted)


def _same_interceptor(found: Any, wanted: Mapping[str, Any]) -> bool:
    if not isinstance(found, dict):
        return False
    arn = ((found.get("interceptor") or {}).get("lambda") or {}).get("arn")
    return (
        arn == wanted["interceptor"]["lambda"]["arn"]
        and set(found.get("interceptionPoints") or ()) == set(wanted["interceptionPoints"])
        and (found.get("inputConfiguration") or {}).get("passRequestHeaders") is True
    )


def _normal(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else (value or None)


def find_gateway_id(control: Any, name: str) -> str | None:
    """The id of the gateway named ``name``, or ``None``."""
    try:
        for page in control.get_paginator("list_gateways").paginate():
            for item in page.get("items", []):
                if item.get("name") == name:
                    return str(item["gatewayId"])
    except (ClientError, BotoCoreError) as exc:
        raise translate(
            exc, backend="agentcore-gateway", operation="list_gateways", resource=name, kind="gateway"
        ) from exc
    return None


def find_router_arn(lambda_client: Any, name: str) -> str | None:
    """The ARN of the router function named ``name``, or ``None``."""
    try:
        return str(lambda_client.get_function(FunctionName=name)["Configuration"]["FunctionArn"])
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException" or http_status(exc) == 404:
            return None
        raise translate(exc, backend="lambda", operation="get_function", resource=name) from exc
    except BotoCoreError as exc:
        raise translate(exc, backend="lambda", operation="get_function", resource=name) from exc


def provision(
    *,
    dynamodb: Any = None,
    table_name: str = "toolrt",
    s3: Any = None,
    bucket: str = "toolrt-artifacts",
    region: str = "us-east-1",
    agentcore_control: Any = None,
    gateway_name: str = "toolrt",
    gateway_id: str | None = None,
    gateway_role_arn: str | None = None,
    interceptor_arn: str | None = None,
    jwt: JwtAuthorizer | None = None,
) -> ProvisionResult:
    """Create whichever of the table, bucket and gateway are missing, with the clients given.

    The partial form of provisioning, for tests and for setups whose roles and functions come from
    elsewhere (CloudFormation); :class:`Provisioner` brings up everything. Creating a gateway needs
    ``gateway_role_arn``, ``interceptor_arn`` and ``jwt``.
    """
    clients = _Given(region, dynamodb, s3, agentcore_control)
    names = AwsNames(table=table_name, bucket=bucket, gateway=gateway_name)
    provisioner = Provisioner(clients, names=names, jwt=jwt)
    if dynamodb is not None:
        provisioner._table()
    if s3 is not None:
        provisioner._bucket()
    result = ProvisionResult(tuple(provisioner._steps))
    if agentcore_control is not None:
        if gateway_id is not None:
            found = provisioner._call(
                "agentcore-gateway", gateway_id, lambda: agentcore_control.get_gateway(gatewayIdentifier=gateway_id)
            )
            return result.merge(
                ProvisionResult((("found", f"agentcore gateway {gateway_id}"),), gateway_id, found.get("gatewayUrl"))
            )
        existing = provisioner._call(
            "agentcore-gateway", gateway_name, lambda: find_gateway_id(agentcore_control, gateway_name)
        )
        if existing is not None:
            found = provisioner._call(
                "agentcore-gateway", existing, lambda: agentcore_control.get_gateway(gatewayIdentifier=existing)
            )
            step = (("found", f"agentcore gateway {gateway_name} ({existing})"),)
            return result.merge(ProvisionResult(step, existing, found.get("gatewayUrl")))
        if gateway_role_arn is None or interceptor_arn is None:
            raise StorageError(
                f"no gateway named {gateway_name!r} exists and none can be created without a role ARN and "
                "the interceptor's ARN; pass gateway_role_arn (the IAM role AgentCore assumes to invoke the "
                "functions) and interceptor_arn, or run `toolrt aws provision`, which makes them all",
                backend="agentcore-gateway",
            )
        if jwt is None:
            raise StorageError(
                f"no gateway named {gateway_name!r} exists and none can be created without an identity provider; "
                "pass jwt=JwtAuthorizer(discovery_url, audiences=...)",
                backend="agentcore-gateway",
            )
        provisioner._steps = []
        gid, url = provisioner._gateway(gateway_role_arn, interceptor_arn, jwt)
        result = result.merge(ProvisionResult(tuple(provisioner._steps), gid, url))
    return result


@attrs.define
class _Given:
    region: str
    dynamodb: Any
    s3: Any
    agentcore_control: Any

    def client(self, service: str) -> Any:
        raise StorageError(f"provision() was given no {service} client", backend=service)
