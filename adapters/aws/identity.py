"""Who is calling, proved where it matters: the agent's bearer token, verified by each function that acts on it.

An agent reaches a toolrt gateway with a JSON Web Token from the identity provider the gateway trusts
(:class:`JwtAuthorizer`, the gateway's ``CUSTOM_JWT`` configuration). The gateway's authorizer checks
it first; the interceptor and the router check it again themselves (:class:`JwtVerifier`): signature
against the provider's published keys (found through its discovery document, cached while the
function is warm), issuer, expiry, and the same audience, client and scope rules as the gateway.
Nothing trusts a caller named by someone else: a principal that invokes the router directly with a
made-up caller, or a token signed by another key, runs nothing.

The token reaches the router in the reserved argument :data:`IDENTITY_ARGUMENT`, which every tool's
published input schema declares (AWS documents a Lambda target's event as the properties of the
tool's input schema, so an argument the schema does not declare may be dropped on the way); the
interceptor writes the verified token there, replacing whatever a client sent, and hides the
argument from tool listings.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import attrs

from toolrt.domain import ToolRuntimeError, TransientError

IDENTITY_ARGUMENT = "__toolrt_identity"
DEFAULT_AGENT_CLAIM = "sub"
# botocore's DiscoveryUrl pattern (bedrock-agentcore-control 2023-06-05): what CreateGateway accepts.
DISCOVERY_URL = re.compile(r"[^\s?#]+/\.well-known/(openid-configuration|oauth-authorization-server)(/[^\s?#]+)?\Z")
# Signatures by the provider's private key only: no "none", no shared-secret (HS*) algorithms, which
# would let anyone holding the public key sign.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
MAX_TOKEN_CHARS = 16_384
MAX_DISCOVERY_BYTES = 1_000_000
# Clock difference tolerated between the provider and this function (seconds).
LEEWAY_S = 60.0
_LOOPBACK_NAMES = frozenset({"localhost"})
# The variables the functions read their provider from (written by provisioning and the template).
ENV_DISCOVERY_URL = "TOOLRT_JWT_DISCOVERY_URL"
ENV_AUDIENCES = "TOOLRT_JWT_AUDIENCES"
ENV_CLIENTS = "TOOLRT_JWT_CLIENTS"
ENV_SCOPES = "TOOLRT_JWT_SCOPES"
ENV_AGENT_CLAIM = "TOOLRT_AGENT_CLAIM"


class TokenRejected(ToolRuntimeError):
    """The token is not one the identity provider issued for this gateway (the message says why)."""

    user_error = True


class IdentityUnavailable(TransientError):
    """The provider's discovery document or keys could not be read: nothing was decided; retry."""


def _texts(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_https(url: str, what: str) -> None:
    """Refuse ``url`` unless it is https (plain http only on this machine's loopback addresses):
    keys fetched in the clear could be swapped by anyone on the path."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise TokenRejected(f"the {what} {url!r} is not an https URL; signing keys are only trusted over https")


@attrs.frozen
class JwtAuthorizer:
    """The identity provider whose tokens name agents, and the rules a token must meet.

    ``discovery_url`` is the provider's OpenID Connect (or OAuth authorization server) discovery
    document; a token is accepted when one of its audiences is in ``audiences``, its client
    (``client_id``, else ``azp``) is in ``clients`` and one of its scopes is in ``scopes`` (each rule
    applies only when given; at least one must be, as AgentCore requires). ``agent_claim`` names the
    claim that is the agent's id.
    """

    discovery_url: str
    audiences: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    clients: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    agent_claim: str = DEFAULT_AGENT_CLAIM
    scopes: tuple[str, ...] = attrs.field(default=(), converter=_texts)

    def problems(self) -> list[str]:
        """Why AgentCore would refuse this configuration (empty when it would accept it)."""
        found = []
        if not DISCOVERY_URL.match(self.discovery_url):
            found.append(
                f"the discovery URL {self.discovery_url!r} must end in /.well-known/openid-configuration "
                "(or /.well-known/oauth-authorization-server)"
            )
        if not (self.audiences or self.clients or self.scopes):
            found.append(
                "the gateway's JWT authorizer needs at least one audience (--jwt-audience), client "
                "(--jwt-client) or scope (--jwt-scope) to check tokens against"
            )
        if not self.agent_claim.strip():
            found.append("the agent claim (--agent-claim) is empty")
        return found

    def configuration(self) -> dict[str, Any]:
        """The gateway's ``authorizerConfiguration``."""
        jwt: dict[str, Any] = {"discoveryUrl": self.discovery_url}
        if self.audiences:
            jwt["allowedAudience"] = list(self.audiences)
        if self.clients:
            jwt["allowedClients"] = list(self.clients)
        if self.scopes:
            jwt["allowedScopes"] = list(self.scopes)
        return {"customJWTAuthorizer": jwt}

    def environment(self) -> dict[str, str]:
        """The variables the interceptor and router functions verify tokens by (empty ones left out)."""
        values = {
            ENV_DISCOVERY_URL: self.discovery_url,
            ENV_AUDIENCES: ",".join(self.audiences),
            ENV_CLIENTS: ",".join(self.clients),
            ENV_SCOPES: ",".join(self.scopes),
            ENV_AGENT_CLAIM: self.agent_claim,
        }
        return {k: v for k, v in values.items() if v}

    @classmethod
    def from_configuration(cls, configuration: Any, agent_claim: str = DEFAULT_AGENT_CLAIM) -> JwtAuthorizer | None:
        """The authorizer a gateway's ``authorizerConfiguration`` describes, or ``None``."""
        jwt = configuration.get("customJWTAuthorizer") if isinstance(configuration, Mapping) else None
        if not isinstance(jwt, Mapping) or not isinstance(jwt.get("discoveryUrl"), str):
            return None
        return cls(
            jwt["discoveryUrl"],
            tuple(jwt.get("allowedAudience") or ()),
            tuple(jwt.get("allowedClients") or ()),
            agent_claim,
            tuple(jwt.get("allowedScopes") or ()),
        )

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> JwtAuthorizer:
        """The authorizer a function was given (see :meth:`environment`); a clear error when it was not."""
        url = env.get(ENV_DISCOVERY_URL, "")
        if not url:
            raise TokenRejected(
                f"{ENV_DISCOVERY_URL} is not set: this function cannot verify callers and refuses every call; "
                "`toolrt aws provision` (or deploy/cloudformation.yaml) sets it"
            )
        return cls(
            url,
            _split(env.get(ENV_AUDIENCES)),
            _split(env.get(ENV_CLIENTS)),
            env.get(ENV_AGENT_CLAIM) or DEFAULT_AGENT_CLAIM,
            _split(env.get(ENV_SCOPES)),
        )


class CallerVerifier(Protocol):
    """Anything that turns a bearer token into the agent it names, or raises :class:`TokenRejected`."""

    def agent_of(self, token: str) -> str:
        """The agent ``token`` names."""
        ...


def bearer_token(headers: Mapping[str, Any]) -> str | None:
    """The bearer token of an ``Authorization`` header (any case), or ``None``."""
    value = next((v for k, v in headers.items() if str(k).lower() == "authorization"), None)
    if not isinstance(value, str) or not value[:7].lower() == "bearer ":
        return None
    token = value[7:].strip()
    return token or None


def _fetch_json(url: str, timeout_s: float) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - https enforced by the caller
        body = response.read(MAX_DISCOVERY_BYTES + 1)
    if len(body) > MAX_DISCOVERY_BYTES:
        raise ValueError(f"more than {MAX_DISCOVERY_BYTES} bytes")
    return json.loads(body)


class JwtVerifier:
    """Verifies bearer tokens against a :class:`JwtAuthorizer` and returns the agent they name.

    The discovery document is read on first use (``fetch_json(url, timeout_s)``, default: urllib)
    and its JSON Web Key Set through PyJWT's ``PyJWKClient``, which caches keys and fetches the set
    again for a key id it does not know (a provider's key rotation), at most once every
    ``cooldown_s``: tokens naming made-up key ids cannot make the function hammer the provider.
    """

    def __init__(
        self,
        authorizer: JwtAuthorizer,
        *,
        timeout_s: float = 5.0,
        leeway_s: float = LEEWAY_S,
        cooldown_s: float = 30.0,
        fetch_json: Callable[[str, float], Any] = _fetch_json,
    ) -> None:
        self.authorizer = authorizer
        self._cooldown_s = cooldown_s
        self._timeout_s = timeout_s
        self._leeway_s = leeway_s
        self._fetch_json = fetch_json
        self._lock = threading.Lock()
        self._issuer: str | None = None
        self._keys: Any = None

    def _provider(self) -> tuple[str, Any]:
        import jwt

        with self._lock:
            if self._keys is None or self._issuer is None:
                url = self.authorizer.discovery_url
                require_https(url, "discovery URL")
                try:
                    document = self._fetch_json(url, self._timeout_s)
                except (OSError, ValueError, urllib.error.URLError) as exc:
                    raise IdentityUnavailable(
                        f"the identity provider's discovery document {url} could not be read ({exc}); "
                        "no caller can be verified until it can: retry"
                    ) from exc
                issuer = document.get("issuer") if isinstance(document, dict) else None
                jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
                if not isinstance(issuer, str) or not isinstance(jwks_uri, str) or not issuer or not jwks_uri:
                    raise IdentityUnavailable(f"the discovery document {url} names no issuer or no jwks_uri")
                require_https(jwks_uri, "key set URL (jwks_uri)")
                self._keys = jwt.PyJWKClient(
                    jwks_uri,
                    cache_keys=True,
                    lifespan=300,
                    timeout=self._timeout_s,
                    cooldown_duration=self._cooldown_s,
                )
                self._issuer = issuer
            return self._issuer, self._keys

    def agent_of(self, token: str) -> str:
        """The agent ``token`` names; :class:`TokenRejected` when it is not valid for this gateway,
        :class:`IdentityUnavailable` when the provider cannot be reached to decide."""
        import jwt

        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise TokenRejected("no usable bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"not a JSON Web Token ({exc})") from exc
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise TokenRejected(f"signing algorithm {algorithm!r} is not accepted (only {', '.join(ALGORITHMS)})")
        issuer, keys = self._provider()
        try:
            key = keys.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise IdentityUnavailable(f"the identity provider's keys could not be fetched ({exc}); retry") from exc
        except (jwt.PyJWKClientError, jwt.PyJWTError) as exc:
            raise TokenRejected(f"no key of the identity provider signed this token ({exc})") from exc
        if key.key_type == "oct":  # a shared secret in a public key set: never a proof of anything
            raise TokenRejected("the provider's key for this token is a shared secret, which toolrt does not accept")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "iss"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"{type(exc).__name__}: {exc}") from exc
        self._check_rules(claims)
        agent = claims.get(self.authorizer.agent_claim)
        if not isinstance(agent, str) or not agent:
            raise TokenRejected(f"the token has no {self.authorizer.agent_claim!r} claim naming the agent")
        return agent

    def _check_rules(self, claims: Mapping[str, Any]) -> None:
        rules = self.authorizer
        if rules.audiences and not set(_strings(claims.get("aud"))) & set(rules.audiences):
            raise TokenRejected("the token's audience is not one the gateway accepts")
        if rules.clients:
            client = claims.get("client_id", claims.get("azp"))
            if not isinstance(client, str) or client not in rules.clients:
                raise TokenRejected("the token's client is not one the gateway accepts")
        if rules.scopes:
            scopes = set(_strings(claims.get("scope"), split=True)) | set(_strings(claims.get("scp"), split=True))
            if not scopes & set(rules.scopes):
                raise TokenRejected("the token carries none of the scopes the gateway accepts")


def _strings(value: Any, *, split: bool = False) -> Iterable[str]:
    if isinstance(value, str):
        return value.split() if split else [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


__all__ = [
    "IDENTITY_ARGUMENT",
    "CallerVerifier",
    "IdentityUnavailable",
    "JwtAuthorizer",
    "JwtVerifier",
    "TokenRejected",
    "bearer_token",
]
