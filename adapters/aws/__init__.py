"""The AWS adapters: DynamoDB, S3, AgentCore Gateway and Code Interpreter, CloudWatch metrics."""

from toolrt.adapters.aws.artifacts import S3ArtifactStore
from toolrt.adapters.aws.clients import AwsClients, make_clients, retry_config
from toolrt.adapters.aws.gateway import AgentCoreGateway, to_openapi
from toolrt.adapters.aws.provision import AwsNames, JwtAuthorizer, Provisioner, ProvisionResult, provision
from toolrt.adapters.aws.repository import DynamoDbToolRepository

__all__ = [
    "AgentCoreGateway",
    "AwsClients",
    "DynamoDbToolRepository",
    "AwsNames",
    "JwtAuthorizer",
    "ProvisionResult",
    "Provisioner",
    "S3ArtifactStore",
    "make_clients",
    "provision",
    "retry_config",
    "to_openapi",
]
