"""The gateway's router and interceptor believe no caller they are told about: they verify the token.

Any principal of the account allowed ``lambda:InvokeFunction`` can invoke ``toolrt-router`` directly,
with any event. These tests are that principal: forged, unsigned, re-signed, expired, misdirected and
made-up callers run nothing; a property test over token mutations finds that a tool runs exactly when
a token the provider signed, for this gateway, still valid, names an agent that may run it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.aws.gateway_sim import EchoSandbox, LambdaContext
from tests.integration.aws.idp import AUDIENCE, LoopbackIdentityProvider, new_key
from toolrt.adapters.aws.gateway import gateway_tool_name
from toolrt.adapters.aws.identity import IDENTITY_ARGUMENT, JwtAuthorizer, JwtVerifier, TokenRejected
from toolrt.adapters.aws.interceptor import GatewayInterceptor
from toolrt.adapters.aws.lambda_router import LambdaRouter
from toolrt.adapters.memory import InMemoryArtifactStore, InMemoryToolRepository
from toolrt.contracts import builders as b
from toolrt.domain import Artifact, ValidationReport, Visibility

OTHER_KEY = new_key()


@pytest.fixture(scope="module")
def idp() -> Iterator[LoopbackIdentityProvider]:
    provider = LoopbackIdentityProvider()
    try:
        yield provider
    finally:
        provider.close()


class Setup:
    """A router over one private tool of agent ``owner``, and a sandbox that records what ran."""

    def __init__(self, idp: LoopbackIdentityProvider) -> None:
        self.repo = InMemoryToolRepository()
        store = InMemoryArtifactStore()
        self.tool = b.tool("tool-" + "e" * 32, owner="owner", name="secret_tool", visibility=Visibility.PRIVATE)
        self.tool = self.tool.with_version(
            b.definition("secret_tool", input_schema={"type": "object", "properties": {"x": {"type": "integer"}}}),
            b.T0,
        )
        d = self.tool.definition
        store.put(
            Artifact(self.tool.code_hash, d.language, d.code, d.entrypoint, ValidationReport(policy_version="p"), b.T0)
        )
        self.repo.add(self.tool)
        self.sandbox = EchoSandbox()
        self.router = LambdaRouter(self.repo, store, self.sandbox, verifier=idp.verifier())
        self.name = gateway_tool_name("s0", self.tool)

    def invoke(self, event: dict[str, Any]) -> Any:
        return self.router(event, LambdaContext(self.name))


@pytest.fixture
def setup(idp: LoopbackIdentityProvider) -> Setup:
    return Setup(idp)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}."


def _hmac_with_public_key(idp: LoopbackIdentityProvider, claims: dict[str, Any]) -> str:
    """The algorithm-confusion forgery: HS256 "signed" with the provider's public key as the secret."""
    pem = idp.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': idp.kid}).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{head}.{_b64(hmac.new(pem, head.encode(), hashlib.sha256).digest())}"


def _claims(idp: LoopbackIdentityProvider, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": idp.issuer, "aud": AUDIENCE, "sub": "owner", "iat": now, "exp": now + 300, **changes}
    return {k: v for k, v in claims.items() if v is not None}


FORGERIES: dict[str, Callable[[LoopbackIdentityProvider], dict[str, Any]]] = {
    "made-up caller argument": lambda idp: {"__toolrt_caller": "owner"},
    "caller name as the identity": lambda idp: {IDENTITY_ARGUMENT: "owner"},
    "unsigned token": lambda idp: {IDENTITY_ARGUMENT: _unsigned(_claims(idp))},
    "another key, same key id": lambda idp: {IDENTITY_ARGUMENT: idp.token("owner", key=OTHER_KEY)},
    "unknown key id": lambda idp: {IDENTITY_ARGUMENT: idp.token("owner", key=OTHER_KEY, kid="k9")},
    "public key as HMAC secret": lambda idp: {IDENTITY_ARGUMENT: _hmac_with_public_key(idp, _claims(idp))},
    "expired": lambda idp: {IDENTITY_ARGUMENT: idp.token("owner", expires_in=-3600)},
    "another issuer": lambda idp: {IDENTITY_ARGUMENT: idp.token("owner", iss="https://evil.example")},
    "another audience": lambda idp: {IDENTITY_ARGUMENT: idp.token("owner", aud="someone-else")},
    "no expiry": lambda idp: {IDENTITY_ARGUMENT: idp.token("owner", exp=None)},
    "no agent claim": lambda idp: {IDENTITY_ARGUMENT: idp.token(None)},
    "agent claim not a string": lambda idp: {IDENTITY_ARGUMENT: idp.token(None, sub=["owner"])},
    "tampered payload": lambda idp: {IDENTITY_ARGUMENT: _tamper(idp.token("intruder"), "owner")},
    "identity of the wrong type": lambda idp: {IDENTITY_ARGUMENT: {"sub": "owner"}},
    "oversized token": lambda idp: {IDENTITY_ARGUMENT: "a." + "b" * 20_000 + ".c"},
}


def _tamper(token: str, agent: str) -> str:
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{head}.{_b64(json.dumps({**claims, 'sub': agent}).encode())}.{signature}"


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_direct_invocation_with_a_forged_caller_runs_nothing(
    setup: Setup, idp: LoopbackIdentityProvider, forgery: str
) -> None:
    """Each way of claiming to be the owner without the owner's valid token is refused before any lookup."""
    answer = setup.invoke({"x": 1, **FORGERIES[forgery](idp)})
    assert answer["status"] == "failed"
    assert setup.sandbox.requests == []


def test_the_owners_valid_token_runs_the_tool_and_nothing_else_reaches_it(
    setup: Setup, idp: LoopbackIdentityProvider
) -> None:
    """The control case: the provider's token naming the owner runs the tool, without the token in its parameters."""
    assert setup.invoke({"x": 1, IDENTITY_ARGUMENT: idp.token("owner")}) == {"echo": {"x": 1}}
    assert setup.sandbox.requests[0].params == {"x": 1} and setup.sandbox.requests[0].tenant == "owner"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from(["provider", "other", "none"]),
    issuer=st.sampled_from(["right", "wrong", "missing"]),
    audience=st.sampled_from(["right", "list-with-right", "wrong", "missing"]),
    expiry=st.sampled_from(["future", "past", "missing"]),
    subject=st.sampled_from(["owner", "intruder", "missing"]),
)
def test_a_tool_runs_exactly_when_a_valid_token_names_an_allowed_agent(
    idp: LoopbackIdentityProvider, key: str, issuer: str, audience: str, expiry: str, subject: str
) -> None:
    """Over every combination of signing key, issuer, audience, expiry and subject, the sandbox is
    reached if and only if every check holds."""
    setup = Setup(idp)
    now = int(time.time())
    claims = _claims(
        idp,
        iss={"right": idp.issuer, "wrong": "http://127.0.0.2", "missing": None}[issuer],
        aud={"right": AUDIENCE, "list-with-right": ["x", AUDIENCE], "wrong": "x", "missing": None}[audience],
        exp={"future": now + 300, "past": now - 600, "missing": None}[expiry],
        sub={"owner": "owner", "intruder": "intruder", "missing": None}[subject],
    )
    if key == "none":
        token = _unsigned(claims)
    else:
        import jwt

        token = jwt.encode(
            claims, idp.key if key == "provider" else OTHER_KEY, algorithm="RS256", headers={"kid": idp.kid}
        )
    setup.invoke({"x": 1, IDENTITY_ARGUMENT: token})
    valid = key == "provider" and issuer == "right" and audience in ("right", "list-with-right") and expiry == "future"
    assert bool(setup.sandbox.requests) == (valid and subject == "owner")


def test_the_interceptor_writes_no_identity_for_a_forged_token(setup: Setup, idp: LoopbackIdentityProvider) -> None:
    """The interceptor verifies too: a bearer token of another key is treated as no caller at all."""
    interceptor = GatewayInterceptor(setup.repo, idp.verifier())
    for bearer in (
        idp.token("owner", key=OTHER_KEY),
        _unsigned(_claims(idp)),
        _hmac_with_public_key(idp, _claims(idp)),
    ):
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": setup.name, "arguments": {}}}
        event = {"mcp": {"gatewayRequest": {"headers": {"Authorization": f"Bearer {bearer}"}, "body": body}}}
        out = interceptor(event)["mcp"]
        assert "transformedGatewayResponse" in out and "Unknown tool" in json.dumps(out)
    token = idp.token("owner")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": setup.name, "arguments": {}}}
    good = {"mcp": {"gatewayRequest": {"headers": {"Authorization": f"Bearer {token}"}, "body": body}}}
    forwarded = interceptor(good)["mcp"]["transformedGatewayRequest"]["body"]
    assert forwarded["params"]["arguments"] == {IDENTITY_ARGUMENT: token}


def test_keys_are_cached_and_made_up_key_ids_do_not_fetch_them_again(idp: LoopbackIdentityProvider) -> None:
    """Verifying many tokens reads the key set once, and tokens naming unknown key ids within the
    cool-down do not make the verifier read it again (no amplification against the provider)."""
    verifier = idp.verifier()
    before = idp.fetches
    for _ in range(5):
        assert verifier.agent_of(idp.token("owner")) == "owner"
    for n in range(5):
        with pytest.raises(TokenRejected):
            verifier.agent_of(idp.token("owner", key=OTHER_KEY, kid=f"made-up-{n}"))
    assert idp.fetches - before <= 2


def test_a_rotated_key_is_fetched(idp: LoopbackIdentityProvider) -> None:
    """A token signed with the provider's new key (a new key id) makes the verifier read the key set again."""
    verifier = JwtVerifier(idp.authorizer(), cooldown_s=0)
    before = idp.fetches
    assert verifier.agent_of(idp.token("owner")) == "owner"
    assert idp.fetches - before == 1
    rotated = new_key()
    import jwt

    idp.extra_keys = [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rotated.public_key())), "kid": "k2"}]
    try:
        assert verifier.agent_of(idp.token("owner", key=rotated, kid="k2")) == "owner"
        assert idp.fetches - before == 2
    finally:
        idp.extra_keys = []


def test_keys_are_only_trusted_over_https() -> None:
    """A discovery URL in plain http anywhere but this machine is refused: its keys could be swapped on the way."""
    import jwt

    verifier = JwtVerifier(JwtAuthorizer("http://idp.example/.well-known/openid-configuration", audiences=("a",)))
    with pytest.raises(TokenRejected, match="https"):
        verifier.agent_of(jwt.encode({"sub": "x"}, OTHER_KEY, algorithm="RS256"))


@pytest.mark.parametrize(
    ("rules", "claims", "accepted"),
    [
        ({"audiences": (), "clients": ("app-1",)}, {"aud": None, "client_id": "app-1"}, True),
        ({"audiences": (), "clients": ("app-1",)}, {"aud": None, "client_id": "app-2"}, False),
        ({"audiences": (), "clients": ("app-1",)}, {"aud": None, "azp": "app-1"}, True),
        ({"audiences": (), "scopes": ("tools",)}, {"aud": None, "scope": "read tools"}, True),
        ({"audiences": (), "scopes": ("tools",)}, {"aud": None, "scope": "read"}, False),
    ],
)
def test_client_and_scope_rules_match_the_gateways(
    idp: LoopbackIdentityProvider, rules: dict[str, Any], claims: dict[str, Any], accepted: bool
) -> None:
    """Client ids (client_id, else azp) and scopes are checked as the gateway's authorizer checks them."""
    verifier = idp.verifier(**rules)
    token = idp.token("owner", **claims)
    if accepted:
        assert verifier.agent_of(token) == "owner"
    else:
        with pytest.raises(TokenRejected):
            verifier.agent_of(token)


_SECRET = gateway_tool_name("s0", b.tool("tool-" + "e" * 32, owner="owner", name="secret_tool"))
_VISIBLE = gateway_tool_name("s1", b.tool("tool-" + "1" * 32, owner="intruder", name="own_tool"))
_names = st.sampled_from([_SECRET, _VISIBLE, "x_amz_bedrock_agentcore_search"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | _names,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["tools", "name", "text", "type", "x"]), inner, max_size=4)
    ),
    max_leaves=16,
)
_blocks = st.lists(
    st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "text": _json.map(json.dumps)}),
        st.fixed_dictionaries({"type": st.just("text"), "text": _names.map(lambda n: f"see {n}")}),
        st.fixed_dictionaries({"type": st.sampled_from(["resource", "image"]), "resource": _json}),
        _json,
    ),
    max_size=4,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=_blocks, structured=_json)
def test_no_search_result_shape_shows_a_private_tool(
    idp: LoopbackIdentityProvider, content: Any, structured: Any
) -> None:
    """Whatever shape the gateway's search answers in (lists, nested objects, prose, other blocks),
    the interceptor's filtered result never names another agent's private tool."""
    setup = Setup(idp)
    result: dict[str, Any] = {"content": content}
    if structured is not None:
        result["structuredContent"] = structured
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x_amz_bedrock_agentcore_search"}}
    event = {
        "mcp": {
            "gatewayRequest": {"headers": {"Authorization": f"Bearer {idp.token('intruder')}"}, "body": request},
            "gatewayResponse": {"statusCode": 200, "body": {"jsonrpc": "2.0", "id": 1, "result": result}},
        }
    }
    out = GatewayInterceptor(setup.repo, idp.verifier())(event)
    assert "secret_tool" not in json.dumps(out)


def test_search_result_fields_not_understood_are_dropped(idp: LoopbackIdentityProvider) -> None:
    """A field of the search result other than its content (``_meta``, say) does not carry a name through."""
    setup = Setup(idp)
    result = {"content": [], "_meta": {"tools": [{"name": _SECRET}]}, "isError": False}
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x_amz_bedrock_agentcore_search"}}
    event = {
        "mcp": {
            "gatewayRequest": {"headers": {"Authorization": f"Bearer {idp.token('intruder')}"}, "body": request},
            "gatewayResponse": {"statusCode": 200, "body": {"jsonrpc": "2.0", "id": 1, "result": result}},
        }
    }
    out = GatewayInterceptor(setup.repo, idp.verifier())(event)["mcp"]["transformedGatewayResponse"]["body"]
    assert "secret_tool" not in json.dumps(out) and out["result"]["isError"] is False
