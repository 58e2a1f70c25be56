"""Fixtures for the AWS profile: a moto server on 127.0.0.1 and fake credentials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from tests.integration.aws.idp import LoopbackIdentityProvider
from toolrt.adapters.aws import JwtAuthorizer
from toolrt.adapters.aws.lambda_package import LambdaPackage, build_lambda_package

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/toolrt-gateway"
LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:toolrt-router"
INTERCEPTOR_ARN = "arn:aws:lambda:us-east-1:123456789012:function:toolrt-interceptor"
JWT = JwtAuthorizer("https://issuer.example/.well-known/openid-configuration", audiences=("toolrt",))


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region, so that nothing can reach a real AWS endpoint."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port; yields its endpoint URL (``http://127.0.0.1:PORT``)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_endpoint(moto_server: str, aws_credentials: None) -> Iterator[str]:
    """The moto server's endpoint URL, reset to empty for this test, with fake credentials set."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    yield moto_server


@pytest.fixture(scope="session")
def idp() -> Iterator[LoopbackIdentityProvider]:
    """An OpenID Connect provider on 127.0.0.1 whose tokens name agents (see ``idp.py``)."""
    provider = LoopbackIdentityProvider()
    try:
        yield provider
    finally:
        provider.close()


@pytest.fixture(scope="session")
def package() -> LambdaPackage:
    """The functions' deployment package, built once (from this interpreter's packages)."""
    return build_lambda_package()
