"""An OpenID Connect identity provider on 127.0.0.1: a discovery document, a key set, and signed tokens.

The gateway's interceptor and the router verify tokens against a provider's published keys; this one
serves them over HTTP on the loopback interface (the only plain-http URL the verifier accepts) and
signs tokens with its RSA key, or with any other key a test wants to forge with.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from toolrt.adapters.aws.identity import JwtAuthorizer, JwtVerifier

AUDIENCE = "toolrt"


def new_key() -> rsa.RSAPrivateKey:
    """A fresh RSA signing key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class LoopbackIdentityProvider:
    """Serves ``/.well-known/openid-configuration`` and ``/jwks.json`` for one RSA key (id ``k1``).

    ``fetches`` counts requests for the key set (key caching is observable).
    """

    def __init__(self) -> None:
        self.key = new_key()
        self.kid = "k1"
        self.fetches = 0
        self.extra_keys: list[dict[str, Any]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body: dict[str, Any]
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": provider.issuer, "jwks_uri": f"{provider.issuer}/jwks.json"}
                elif self.path == "/jwks.json":
                    provider.fetches += 1
                    body = {"keys": [provider.public_jwk(), *provider.extra_keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"

    def public_jwk(self) -> dict[str, Any]:
        """The provider's public key as a JWK."""
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def authorizer(self, **rules: Any) -> JwtAuthorizer:
        """The gateway configuration trusting this provider (audience ``toolrt`` unless ``rules`` say)."""
        rules.setdefault("audiences", (AUDIENCE,))
        return JwtAuthorizer(self.discovery_url, **rules)

    def verifier(self, **rules: Any) -> JwtVerifier:
        """A verifier of this provider's tokens."""
        return JwtVerifier(self.authorizer(**rules))

    def token(
        self,
        agent: str | None,
        *,
        key: Any = None,
        algorithm: str = "RS256",
        kid: str | None = None,
        expires_in: float = 300,
        **claims: Any,
    ) -> str:
        """A token naming ``agent`` (``sub``), signed with this provider's key unless ``key`` is given."""
        now = int(time.time())
        payload: dict[str, Any] = {"iss": self.issuer, "aud": AUDIENCE, "iat": now, "exp": now + int(expires_in)}
        if agent is not None:
            payload["sub"] = agent
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(
            payload, key if key is not None else self.key, algorithm=algorithm, headers={"kid": kid or self.kid}
        )

    def environment(self, **rules: Any) -> dict[str, str]:
        """The ``TOOLRT_JWT_*`` variables a function verifying this provider's tokens runs with."""
        return self.authorizer(**rules).environment()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


__all__ = ["AUDIENCE", "LoopbackIdentityProvider", "new_key"]
