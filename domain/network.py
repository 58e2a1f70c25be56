"""Network egress: the hosts a tool declares it needs, the owner's policy, and what one call may reach.

A tool reaches the network only through the runtime's egress proxy, and only the ``host:port``
entries it declares (``network: {"allow": ["api.example.com:443"]}``) that the runtime owner's
:class:`EgressPolicy` permits. Three values meet here:

* :class:`NetworkAccess`: the tool's declaration, part of its definition and so of its version;
* :class:`EgressPolicy`: the owner's rules (default: nothing may be reached);
* :class:`EgressGrant`: what one call may reach, computed from both when the call is accepted and
  handed to the sandbox (the policy of the moment wins: a host the owner withdrew is not reached by
  a tool registered before).

Why entries are ``host:port`` and never URLs or bare hosts: the proxy decides per connection, and a
connection has exactly a host and a port. Wildcards (``*.example.com:443``) are for the owner only;
a tool names each host it uses. IP literals are refused unless the owner names that exact
``address:port``: a literal skips the name the owner reviewed. Names that resolve to private,
loopback, link-local, multicast or unspecified addresses are refused by the proxy unless the owner
lists the exact ``host:port`` in ``private`` (an internal service, or a test server on loopback).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from toolrt.domain.errors import EgressDeniedError, ValidationError
from toolrt.domain.json_schema import json_schema, written_fields
from toolrt.domain.validation import Finding, Severity, ValidationReport

__all__ = [
    "MAX_NETWORK_HOSTS",
    "EgressGrant",
    "EgressPolicy",
    "HostPort",
    "NetworkAccess",
    "is_ip_literal",
    "is_public_address",
    "parse_host_port",
    "to_network_access",
]

# Hosts one tool may declare: a tool that talks to more than a few web APIs is several tools.
MAX_NETWORK_HOSTS = 16
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# The outline of a host:port entry as a JSON Schema pattern; parse_host_port decides the rest.
_HOST_PORT_SHAPE = r"^([A-Za-z0-9]([A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$"
_RULE = "definition.network"


def _error(message: str, hint: str = "", rule: str = _RULE) -> ValidationError:
    finding = Finding(rule, Severity.ERROR, message, hint=hint)
    header = "invalid egress policy" if rule == "policy.network" else "invalid network declaration"
    return ValidationError(header, ValidationReport((finding,)))


def is_ip_literal(host: str) -> bool:
    """True when ``host`` is an IPv4 or IPv6 address rather than a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address; False for private, loopback, link-local,
    multicast, unspecified, reserved and shared (CGNAT) ones. An IPv6 address that carries an IPv4
    one (IPv4-mapped, or 6to4 ``2002::/16``, which a 6to4 relay on the host's network delivers to the
    embedded address) is judged by that IPv4 address; NAT64 and IPv4-compatible ones are reserved."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            ip = embedded
    return bool(
        ip.is_global
        and not ip.is_multicast
        and not ip.is_unspecified
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_private
        and not ip.is_reserved
    )


@attrs.frozen(order=True)
class HostPort:
    """One ``host:port`` entry: a lower-case DNS name or an IP address, and a port (1-65535)."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def is_literal(self) -> bool:
        """True when the host is an IP address."""
        return is_ip_literal(self.host)


def _valid_name(host: str) -> bool:
    if len(host) > 253:
        return False
    labels = host.split(".")
    return all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def parse_host_port(entry: Any, *, wildcard: bool = False) -> HostPort:
    """Parse ``"host:port"`` (``"[::1]:443"`` for IPv6); raise :class:`ValueError` saying what is wrong.

    Names are lower-cased and lose a trailing dot. ``wildcard`` allows one leading ``*.`` label
    (owner patterns only).
    """
    if not isinstance(entry, str):
        raise ValueError(f"{entry!r} is not a string")
    text = entry.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"{entry!r}: write an IPv6 address as [address]:port")
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValueError(f"{entry!r}: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{entry!r} has no port: write host:port, for example api.example.com:443")
        host = host.lower().rstrip(".")
        if ":" in host:
            raise ValueError(f"{entry!r}: write an IPv6 address as [address]:port")
        if not is_ip_literal(host):
            name = host[2:] if wildcard and host.startswith("*.") else host
            if not host.isascii() or not _valid_name(name):
                raise ValueError(
                    f"{entry!r}: {host!r} is not a host name"
                    + (" (a wildcard is allowed only in the owner's network_allow)" if "*" in host else "")
                )
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
    return HostPort(host, int(port_text))


def _to_allow(value: Any) -> tuple[HostPort, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise _error("network.allow must be a list of host:port strings", 'for example ["api.example.com:443"]')
    entries: set[HostPort] = set()
    for item in value:
        if isinstance(item, HostPort):
            entries.add(item)
            continue
        try:
            entries.add(parse_host_port(item))
        except ValueError as exc:
            raise _error(f"network.allow entry {item!r} is invalid: {exc}", "write host:port, port 1-65535") from None
    if len(entries) > MAX_NETWORK_HOSTS:
        raise _error(f"network.allow names {len(entries)} hosts, at most {MAX_NETWORK_HOSTS} allowed")
    return tuple(sorted(entries))


@attrs.frozen
class NetworkAccess:
    """A tool's declaration of the hosts it needs: ``{"allow": ["api.example.com:443", ...]}``.

    Empty (the default) means no network at all. Entries are kept sorted and unique, so two
    declarations naming the same hosts are equal (and make the same version).
    """

    allow: tuple[HostPort, ...] = attrs.field(
        default=(),
        converter=_to_allow,
        metadata=json_schema(
            type="array",
            maxItems=MAX_NETWORK_HOSTS,
            items={"description": "host:port ([address]:port for IPv6)", "type": "string", "pattern": _HOST_PORT_SHAPE},
        ),
    )

    def __bool__(self) -> bool:
        return bool(self.allow)

    def to_json(self) -> dict[str, list[str]]:
        """The declaration as a tool file writes it."""
        return {"allow": [str(entry) for entry in self.allow]}


def to_network_access(value: Any) -> NetworkAccess:
    """A :class:`NetworkAccess` from ``None``, itself or ``{"allow": [...]}``; ValidationError otherwise."""
    if value is None:
        return NetworkAccess()
    if isinstance(value, NetworkAccess):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - set(written_fields(NetworkAccess))
        if unknown:
            raise _error(
                f"unknown network field(s): {', '.join(sorted(map(str, unknown)))}", 'write {"allow": ["host:port"]}'
            )
        return NetworkAccess(value.get("allow"))
    raise _error(f"network must be an object, got {type(value).__name__}", 'write {"allow": ["host:port"]}')


@attrs.frozen
class EgressGrant:
    """What one call may reach: declared entries the policy permits, and which may be private.

    Built by :meth:`EgressPolicy.grant` when the call is accepted; the sandbox's proxy enforces it.
    """

    allow: frozenset[HostPort] = frozenset()
    private: frozenset[HostPort] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.allow)

    def permits(self, target: HostPort) -> bool:
        """True when ``target`` was declared and permitted."""
        return target in self.allow

    def may_be_private(self, target: HostPort) -> bool:
        """True when ``target`` may resolve to a private, loopback or link-local address."""
        return target in self.private


def _to_patterns(value: Any, *, wildcard: bool, what: str) -> tuple[HostPort, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    entries = set()
    for item in value:
        try:
            entries.add(item if isinstance(item, HostPort) else parse_host_port(item, wildcard=wildcard))
        except ValueError as exc:
            raise _error(f"egress policy {what} entry {item!r} is invalid: {exc}", rule="policy.network") from None
    return tuple(sorted(entries))


def _to_allow_patterns(value: Any) -> tuple[HostPort, ...]:
    return _to_patterns(value, wildcard=True, what="allow")


def _to_private_entries(value: Any) -> tuple[HostPort, ...]:
    return _to_patterns(value, wildcard=False, what="private")


@attrs.frozen
class EgressPolicy:
    """The runtime owner's rules for egress. Default: nothing may be reached.

    ``allow``: ``host:port`` entries a tool may declare; a pattern ``*.example.com:443`` permits
    every name below ``example.com`` (not ``example.com`` itself) on port 443. A pattern never
    permits an IP literal: only an exact entry does. ``private``: exact ``host:port`` entries that
    may also resolve to (or be) private, loopback or link-local addresses; each is permitted as if
    it were in ``allow``.
    """

    allow: tuple[HostPort, ...] = attrs.field(default=(), converter=_to_allow_patterns)
    private: tuple[HostPort, ...] = attrs.field(default=(), converter=_to_private_entries)

    def permits(self, target: HostPort) -> bool:
        """True when a tool may declare ``target``."""
        if target in self.allow or target in self.private:
            return True
        if target.is_literal:
            return False
        for pattern in self.allow:
            if pattern.port == target.port and pattern.host.startswith("*."):
                suffix = pattern.host[1:]  # ".example.com"
                if target.host.endswith(suffix) and len(target.host) > len(suffix):
                    return True
        return False

    def refused(self, access: NetworkAccess) -> list[HostPort]:
        """The declared entries this policy does not permit, in order."""
        return [entry for entry in access.allow if not self.permits(entry)]

    def check(self, access: NetworkAccess, tool_name: str) -> None:
        """Raise :class:`EgressDeniedError` with one finding per declared entry the policy refuses."""
        refused = self.refused(access)
        if not refused:
            return
        findings = tuple(
            Finding(
                "network.denied",
                Severity.ERROR,
                f"network.allow entry {str(entry)!r} is not permitted by the runtime's egress policy",
                hint="ask the runtime's owner to add it to network_allow (TOOLRT_NETWORK_ALLOW), or remove it",
            )
            for entry in refused
        )
        names = ", ".join(str(entry) for entry in refused)
        raise EgressDeniedError(
            f"tool {tool_name!r} asks for network access the egress policy does not permit: {names}",
            ValidationReport(findings),
            tuple(str(entry) for entry in refused),
        )

    def grant(self, access: NetworkAccess) -> EgressGrant:
        """What a call of a tool declaring ``access`` may reach under this policy now."""
        allowed = frozenset(entry for entry in access.allow if self.permits(entry))
        return EgressGrant(allowed, frozenset(entry for entry in allowed if entry in self.private))
