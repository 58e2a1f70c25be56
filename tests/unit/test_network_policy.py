"""A tool's network declaration and the owner's egress policy: what may be declared, stored and granted."""

from __future__ import annotations

from typing import Any

import pytest

import toolrt
from tests.fakes import EchoSandbox, memory_runtime
from toolrt.application.policy import ExecutionPolicy
from toolrt.contracts import builders as b
from toolrt.domain import (
    MAX_NETWORK_HOSTS,
    EgressDeniedError,
    EgressPolicy,
    HostPort,
    NetworkAccess,
    ValidationError,
    is_public_address,
    parse_host_port,
)
from toolrt.settings import Settings, SettingsError


def test_default_definition_has_no_network() -> None:
    """A definition that says nothing about the network gets none."""
    assert not b.definition().network
    assert b.definition().network.allow == ()


def test_entries_are_normalised_sorted_and_unique() -> None:
    """Two declarations naming the same hosts make equal definitions (and so the same version)."""
    one = b.definition(network={"allow": ["API.Example.com.:443", "[0:0::1]:80", "api.example.com:443"]})
    other = b.definition(network={"allow": ["[::1]:80", "api.example.com:443"]})
    assert one == other
    assert [str(e) for e in one.network.allow] == ["[::1]:80", "api.example.com:443"]


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("api.example.com", "no port"),
        ("api.example.com:0", "1 to 65535"),
        ("api.example.com:65536", "1 to 65535"),
        ("api.example.com:https", "1 to 65535"),
        ("*.example.com:443", "wildcard"),
        ("bad_host.com:443", "not a host name"),
        ("-x.example.com:443", "not a host name"),
        ("::1:443", "[address]:port"),
        ("[nope]:443", "not an IPv6 address"),
        ("h\u00e9llo.com:443", "not a host name"),
        (443, "not a string"),
    ],
)
def test_a_bad_entry_is_a_validation_error_naming_it(entry: Any, says: str) -> None:
    """Each malformed entry is refused with a finding that names it and says what is wrong."""
    with pytest.raises(ValidationError) as caught:
        b.definition(network={"allow": [entry]})
    finding = caught.value.report.findings[0]
    assert finding.rule_id == "definition.network"
    assert repr(entry) in finding.message and says in finding.message


@pytest.mark.parametrize("network", ["api.example.com:443", {"hosts": []}, {"allow": "api.example.com:443"}, 7])
def test_a_malformed_declaration_is_refused(network: Any) -> None:
    """network must be an object with a list under allow and nothing else."""
    with pytest.raises(ValidationError, match="network"):
        b.definition(network=network)


def test_the_list_is_bounded() -> None:
    """A declaration names at most MAX_NETWORK_HOSTS hosts."""
    hosts = [f"h{i}.example.com:443" for i in range(MAX_NETWORK_HOSTS + 1)]
    with pytest.raises(ValidationError, match=f"at most {MAX_NETWORK_HOSTS}"):
        b.definition(network={"allow": hosts})
    assert len(b.definition(network={"allow": hosts[:-1]}).network.allow) == MAX_NETWORK_HOSTS


def test_the_default_policy_permits_nothing() -> None:
    """With no owner policy, every declared host is refused."""
    policy = EgressPolicy()
    access = NetworkAccess(["api.example.com:443", "127.0.0.1:80"])
    assert policy.refused(access) == list(access.allow)
    assert not policy.grant(access)


def test_patterns_match_names_below_the_domain_on_the_same_port_only() -> None:
    """``*.example.com:443`` permits sub.example.com:443, not example.com, another port or a look-alike."""
    policy = EgressPolicy(allow=["*.example.com:443"])
    assert policy.permits(parse_host_port("api.example.com:443"))
    assert policy.permits(parse_host_port("a.b.example.com:443"))
    assert not policy.permits(parse_host_port("example.com:443"))
    assert not policy.permits(parse_host_port("api.example.com:80"))
    assert not policy.permits(parse_host_port("evilexample.com:443"))
    assert not policy.permits(parse_host_port("api.example.com.evil.org:443"))


def test_ip_literals_need_an_exact_entry() -> None:
    """A pattern never covers an IP literal; an exact entry (allow or private) does."""
    assert not EgressPolicy(allow=["*.example.com:443"]).permits(HostPort("93.184.216.34", 443))
    assert EgressPolicy(allow=["93.184.216.34:443"]).permits(HostPort("93.184.216.34", 443))
    assert EgressPolicy(private=["127.0.0.1:8080"]).permits(HostPort("127.0.0.1", 8080))
    assert not EgressPolicy(private=["127.0.0.1:8080"]).permits(HostPort("127.0.0.1", 8081))


def test_grant_marks_exactly_the_private_entries() -> None:
    """A grant holds the permitted entries, and only the owner's private entries may resolve privately."""
    policy = EgressPolicy(allow=["*.example.com:443"], private=["db.internal:5432"])
    grant = policy.grant(NetworkAccess(["api.example.com:443", "db.internal:5432", "other.org:443"]))
    assert grant.allow == {HostPort("api.example.com", 443), HostPort("db.internal", 5432)}
    assert grant.private == {HostPort("db.internal", 5432)}
    assert grant.may_be_private(HostPort("db.internal", 5432))
    assert not grant.may_be_private(HostPort("api.example.com", 443))


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.251", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    """Only globally routable unicast addresses count as public; mapped IPv4 is judged as IPv4."""
    assert is_public_address(address) is public


def test_settings_read_the_policy_from_the_environment() -> None:
    """TOOLRT_NETWORK_ALLOW and TOOLRT_NETWORK_PRIVATE are comma- or space-separated lists."""
    settings = Settings.load(
        {}, {"TOOLRT_NETWORK_ALLOW": "api.example.com:443, *.example.org:443", "TOOLRT_NETWORK_PRIVATE": "db:5432"}
    )
    egress = settings.execution_policy().egress
    assert egress.allow == (HostPort("*.example.org", 443), HostPort("api.example.com", 443))
    assert egress.private == (HostPort("db", 5432),)
    assert Settings.load({}, {}).execution_policy().egress == EgressPolicy()


@pytest.mark.parametrize("field", ["network_allow", "network_private"])
def test_a_bad_policy_entry_is_a_settings_error(field: str) -> None:
    """An owner's malformed entry is refused when the runtime is configured, naming it."""
    with pytest.raises(SettingsError, match="nohost"):
        Settings.load({field: ["nohost"]})
    with pytest.raises(SettingsError, match=r"\*\.x\.com"):
        Settings.load({"network_private": ["*.x.com:443"]})


def _runtime(**policy: Any) -> tuple[toolrt.ToolRuntime, EchoSandbox]:
    sandbox = EchoSandbox()
    return memory_runtime(ExecutionPolicy(**policy), sandbox=sandbox), sandbox


def test_registration_outside_the_policy_is_refused_and_stores_nothing() -> None:
    """A tool naming a host the owner did not permit is EgressDeniedError naming it; no tool, no artifact."""
    rt, _ = _runtime(network_allow=["api.example.com:443"])
    definition = b.definition(network={"allow": ["api.example.com:443", "evil.example.net:443"]})
    with pytest.raises(EgressDeniedError) as caught:
        rt.register_tool("agent-a", definition)
    assert caught.value.entries == ("evil.example.net:443",)
    assert "evil.example.net:443" in str(caught.value)
    assert rt.list_tools("agent-a") == []
    assert rt.ports.artifacts.get(definition.code_hash) is None


def test_batch_and_update_apply_the_same_policy() -> None:
    """register_tools and update_tool refuse a denied host too, leaving the previous version in force."""
    rt, _ = _runtime(network_allow=["api.example.com:443"])
    items = rt.register_tools("agent-a", [b.definition("one", network={"allow": ["denied.org:443"]})])
    assert isinstance(items[0].error, EgressDeniedError)
    reg = rt.register_tool("agent-a", b.definition("two", network={"allow": ["api.example.com:443"]}))
    with pytest.raises(EgressDeniedError):
        rt.update_tool("agent-a", reg.tool_id, b.definition("two", network={"allow": ["denied.org:443"]}))
    status = rt.get_tool_status(reg.tool_id)
    assert status.current_version == 1 and status.latest_version == 1


def test_a_call_gets_the_grant_of_the_policy_in_force() -> None:
    """The sandbox is handed the declared hosts the policy permits; a tool without network gets none."""
    rt, sandbox = _runtime(network_allow=["api.example.com:443"], network_private=["db.internal:5432"])
    net = rt.register_tool(
        "agent-a", b.definition("net", network={"allow": ["api.example.com:443", "db.internal:5432"]})
    )
    plain = rt.register_tool("agent-a", b.definition("plain"))
    rt.execute_tool("agent-a", net.tool_id, {"a": 1, "b": 2})
    rt.execute_tool("agent-a", plain.tool_id, {"a": 1, "b": 2})
    granted, nothing = sandbox.requests
    assert granted.egress is not None
    assert granted.egress.allow == {HostPort("api.example.com", 443), HostPort("db.internal", 5432)}
    assert granted.egress.private == {HostPort("db.internal", 5432)}
    assert nothing.egress is None


def test_a_host_withdrawn_from_the_policy_is_not_granted_to_an_older_tool() -> None:
    """The policy of the moment decides: a runtime whose owner withdrew a host does not grant it."""
    rt, _ = _runtime(network_allow=["api.example.com:443", "old.example.com:443"])
    definition = b.definition(network={"allow": ["api.example.com:443", "old.example.com:443"]})
    rt.register_tool("agent-a", definition)
    narrower = ExecutionPolicy(network_allow=["api.example.com:443"])
    assert narrower.grant(definition) is not None
    assert narrower.grant(definition).allow == {HostPort("api.example.com", 443)}  # type: ignore[union-attr]
    assert ExecutionPolicy().grant(definition) is None


def test_index_hosts_name_themselves_in_their_errors_and_take_ip_literals() -> None:
    """An index host is not an egress entry of a tool: its error says which setting and entry."""
    with pytest.raises(SettingsError, match=r"setting index_hosts: entry 'pypi\.org' is not host:port") as caught:
        Settings.load({"index_hosts": "pypi.org"})
    assert "private" not in str(caught.value)
    assert Settings.load({"index_hosts": "10.0.0.5:3141, files.example.org:443"}).index_hosts == (
        "10.0.0.5:3141",
        "files.example.org:443",
    )
