"""The contract every ToolGateway adapter must pass."""

from __future__ import annotations

import pytest

from toolrt.contracts import builders as b
from toolrt.domain import NotFoundError
from toolrt.ports import ToolGateway


class ToolGatewayContract:
    """Subclass and implement :meth:`make_gateway` (a fresh gateway with nothing published)."""

    def make_gateway(self) -> ToolGateway:
        raise NotImplementedError

    @pytest.fixture
    def gateway(self) -> ToolGateway:
        return self.make_gateway()

    def test_is_a_tool_gateway(self, gateway: ToolGateway) -> None:
        """The adapter satisfies the port's Protocol."""
        assert isinstance(gateway, ToolGateway)

    def test_register_publishes(self, gateway: ToolGateway) -> None:
        """A registered tool's reference is listed."""
        ref = gateway.register(b.tool("t1"))
        assert ref
        assert ref in gateway.published()

    def test_update_keeps_it_published(self, gateway: ToolGateway) -> None:
        """Updating metadata keeps the same reference listed."""
        t = b.tool("t1")
        ref = gateway.register(t)
        gateway.update(t.with_gateway_ref(ref, b.T0).with_version(b.definition(description="new"), b.T0))
        assert ref in gateway.published()

    def test_update_unpublished_raises_not_found(self, gateway: ToolGateway) -> None:
        """Updating a tool that was never published is NotFoundError."""
        with pytest.raises(NotFoundError):
            gateway.update(b.tool("t9").with_gateway_ref("missing", b.T0))

    def test_deregister_withdraws_and_is_repeatable(self, gateway: ToolGateway) -> None:
        """Deregistering removes the reference; doing it twice is fine."""
        t = b.tool("t1")
        ref = gateway.register(t)
        published = t.with_gateway_ref(ref, b.T0)
        gateway.deregister(published)
        assert ref not in gateway.published()
        gateway.deregister(published)

    def test_two_tools_get_distinct_references(self, gateway: ToolGateway) -> None:
        """Two tools, even of one name from two owners, are published separately."""
        r1 = gateway.register(b.tool("t1", owner="a", name="add"))
        r2 = gateway.register(b.tool("t2", owner="b", name="add"))
        assert r1 != r2
        assert {r1, r2} <= set(gateway.published())

    def test_health(self, gateway: ToolGateway) -> None:
        """A fresh gateway reports healthy."""
        assert gateway.health().ok
