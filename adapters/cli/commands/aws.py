"""The ``aws`` group: set up and inspect the AWS profile's resources."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from toolrt.adapters.cli.context import command_group, current_cli


def aws_app() -> typer.Typer:
    """The ``toolrt aws`` group."""
    return command_group("Set up and inspect the AWS profile's resources.", provision=aws_provision)


def aws_provision(
    ctx: typer.Context,
    gateway_role_arn: Annotated[Optional[str], typer.Option("--gateway-role-arn", help="The IAM role AgentCore Gateway assumes (default: TOOLRT_GATEWAY_ROLE_ARN); needed only to create a gateway.")] = None,
    gateway_name: Annotated[str, typer.Option("--gateway-name", help="The gateway to find or create.")] = "toolrt",
) -> None:
    """Create the DynamoDB table, the S3 bucket and the AgentCore gateway where missing (idempotent)."""
    from toolrt.adapters.aws import make_clients, provision
    from toolrt.settings import Settings

    cli = current_cli(ctx)
    with cli.guard():
        settings = Settings.load({"profile": "aws", "gateway_role_arn": gateway_role_arn})
        clients = make_clients(settings.aws_region, settings.aws_endpoint_url)
        result = provision(
            dynamodb=clients.dynamodb,
            table_name=settings.dynamodb_table,
            s3=clients.s3,
            bucket=settings.s3_bucket,
            region=settings.aws_region,
            agentcore_control=clients.agentcore_control,
            gateway_name=gateway_name,
            gateway_id=settings.gateway_id,
            gateway_role_arn=settings.gateway_role_arn,
        )
    if cli.json:
        cli.emit({"created": list(result.created), "found": list(result.found), "gateway_id": result.gateway_id, "gateway_url": result.gateway_url})
        return
    for line in result.lines():
        cli.out.print(line, highlight=False)
    if result.gateway_id:
        cli.out.print(f"export TOOLRT_GATEWAY_ID={result.gateway_id}", highlight=False)
