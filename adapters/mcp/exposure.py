"""Who may reach an HTTP server of toolrt's: loopback or not, tokens or not, and the Host and Origin
headers it answers (the MCP server and the operator views next to it, or alone, share these rules)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from toolrt.domain import ValidationError
from toolrt.logs import get_logger

__all__ = ["check_exposure", "is_loopback", "transport_security"]

log = get_logger(__name__)

_LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from this machine."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, tokens: Mapping[str, str], insecure_no_auth: bool) -> None:
    """Refuse to serve HTTP beyond loopback without tokens, unless explicitly told to (then warn)."""
    if is_loopback(host) or tokens:
        return
    if not insecure_no_auth:
        raise ValidationError(
            f"serving MCP on {host} (not loopback) needs bearer tokens: pass --token TOKEN=AGENT "
            "(one per agent), or --insecure-no-auth to let anyone who can connect act as any agent"
        )
    log.warning(
        "MCP server exposed without authentication: any client can act as any agent",
        host=host,
        remedy="pass --token TOKEN=AGENT",
    )


def _host_pattern(name: str) -> str:
    """``name`` as the SDK's allowed-host pattern: ``host:port`` as given, else ``host:*``."""
    if name.startswith("["):
        return name if "]:" in name else f"{name}:*"
    if name.count(":") > 1:  # a bare IPv6 address
        return f"[{name}]:*"
    return name if ":" in name else f"{name}:*"


def transport_security(host: str, allowed_hosts: list[str] | tuple[str, ...] = ()) -> Any:
    """Host/Origin checks for ``host``: loopback names for loopback, else the address and ``allowed_hosts``."""
    from mcp.server.transport_security import TransportSecuritySettings

    if is_loopback(host):
        names = ["127.0.0.1", "localhost", "[::1]"]
    else:
        names = [] if host in ("0.0.0.0", "::", "[::]") else [host]
    hosts = []
    for name in [*names, *allowed_hosts]:
        pattern = _host_pattern(name)
        # The SDK's "host:*" needs a port in the header; a default port (behind a proxy) sends none.
        hosts += [pattern, pattern[:-2]] if pattern.endswith(":*") else [pattern]
    origins = [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)
