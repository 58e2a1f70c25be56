"""The ``aws`` group: bring up, check and tear down the AWS profile's resources."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from toolrt.adapters.cli.context import Cli, command_group, current_cli


def aws_app() -> typer.Typer:
    """The ``toolrt aws`` group."""
    return command_group(
        "Bring up, check and tear down the AWS profile's resources.",
        provision=aws_provision,
        status=aws_status,
        destroy=aws_destroy,
    )


def _provisioner(cli: Cli, *, dry_run: bool, jwt: Any = None, max_timeout_s: float | None = None) -> Any:
    from toolrt.adapters.aws import Provisioner, make_clients
    from toolrt.settings import Settings

    settings = Settings.load({"profile": "aws"})
    clients = make_clients(settings.aws_region, settings.aws_endpoint_url)
    names = _names(settings)

    def progress(action: str, resource: str) -> None:
        if not cli.json:  # a progress line per step as it completes, on stderr
            cli.err.print(f"{action:<13}{resource}", highlight=False)

    return Provisioner(
        clients,
        names=names,
        jwt=jwt,
        code_interpreter_id=settings.code_interpreter_id,
        max_timeout_s=max_timeout_s or settings.max_timeout_s,
        dry_run=dry_run,
        on_step=progress,
        router_environment={
            "TOOLRT_NETWORK_ALLOW": ",".join(settings.network_allow),
            "TOOLRT_NETWORK_PRIVATE": ",".join(settings.network_private),
            "TOOLRT_CODE_INTERPRETER_EGRESS": "" if settings.code_interpreter_egress == "refuse" else "interpreter",
        },
    )


def _names(settings: Any) -> Any:
    from toolrt.adapters.aws import AwsNames

    return AwsNames(
        table=settings.dynamodb_table,
        bucket=settings.s3_bucket,
        gateway=settings.gateway_name,
        router_function=settings.router_function,
    )


def _report(cli: Cli, result: Any) -> None:
    if cli.json:
        cli.emit(
            {
                "steps": [{"action": action, "resource": resource} for action, resource in result.steps],
                "warnings": list(result.warnings),
                "created": list(result.created),
                "found": list(result.found),
                "gateway_id": result.gateway_id,
                "gateway_url": result.gateway_url,
                "router_arn": result.router_arn,
            }
        )
    elif result.gateway_url:
        cli.out.print(f"gateway url  {result.gateway_url}", highlight=False, soft_wrap=True)


def aws_provision(
    ctx: typer.Context,
    jwt_discovery_url: Annotated[
        Optional[str],
        typer.Option(
            "--jwt-discovery-url",
            help="OpenID Connect discovery URL of the identity provider whose tokens name agents (needed to create the gateway or change its provider).",
        ),
    ] = None,
    jwt_audience: Annotated[
        Optional[list[str]], typer.Option("--jwt-audience", help="An audience the gateway accepts (repeatable).")
    ] = None,
    jwt_client: Annotated[
        Optional[list[str]], typer.Option("--jwt-client", help="A client id the gateway accepts (repeatable).")
    ] = None,
    jwt_scope: Annotated[
        Optional[list[str]], typer.Option("--jwt-scope", help="A scope the gateway accepts (repeatable).")
    ] = None,
    agent_claim: Annotated[str, typer.Option("--agent-claim", help="The token claim that names the agent.")] = "sub",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read only: print what would be created or updated.")
    ] = False,
) -> None:
    """Create or update everything the aws profile needs: table, bucket, roles, functions, gateway (idempotent)."""
    from toolrt.adapters.aws import JwtAuthorizer
    from toolrt.domain import ValidationError

    cli = current_cli(ctx)
    with cli.guard():
        jwt = None
        if jwt_discovery_url:
            jwt = JwtAuthorizer(
                jwt_discovery_url,
                tuple(jwt_audience or ()),
                tuple(jwt_client or ()),
                agent_claim,
                tuple(jwt_scope or ()),
            )
            if jwt.problems():
                # AgentCore's CreateGateway would refuse it: say why before anything is made.
                raise ValidationError("the identity provider cannot be used: " + "; ".join(jwt.problems()))
        elif jwt_audience or jwt_client or jwt_scope:
            raise ValidationError("--jwt-audience, --jwt-client and --jwt-scope need --jwt-discovery-url")
        result = _provisioner(cli, dry_run=dry_run, jwt=jwt).up()
    _report(cli, result)


def aws_status(ctx: typer.Context) -> None:
    """Check the credentials and every resource of the aws profile (read only); exit 1 when one needs work."""
    from rich.markup import escape

    cli = current_cli(ctx)
    with cli.guard():
        report = _provisioner(cli, dry_run=True).status()
    if cli.json:
        cli.emit(
            {
                "ok": report.ok,
                "region": report.region,
                "endpoint_url": report.endpoint_url,
                "account": report.account,
                "principal": report.principal,
                "checks": [{"resource": r, "state": s, "detail": d} for r, s, d in report.checks],
            }
        )
    else:
        where = report.endpoint_url or f"AWS {report.region}"
        cli.out.print(f"region {report.region}, endpoint {escape(where)}", highlight=False, soft_wrap=True)
        for resource, state, detail in report.checks:
            style = "green" if state == "ok" else "red"
            line = f"[{style}]{escape(state):<11}[/]{escape(resource)}" + (f"  {escape(detail)}" if detail else "")
            cli.out.print(line, highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


def aws_destroy(
    ctx: typer.Context,
    include_data: Annotated[
        bool, typer.Option("--include-data", help="Also delete the table and the bucket (every tool and artifact).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read only: print what would be deleted.")] = False,
) -> None:
    """Remove the gateway, functions and roles; the table and bucket only with --include-data."""
    cli = current_cli(ctx)
    if not (yes or dry_run):
        what = "the gateway, functions and roles" + (", the table and the bucket (all tools)" if include_data else "")
        if not typer.confirm(f"Delete {what}?", err=True):
            raise typer.Exit(1)
    with cli.guard():
        result = _provisioner(cli, dry_run=dry_run).down(include_data=include_data)
    _report(cli, result)
