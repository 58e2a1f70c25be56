"""toolrt's face of the mcp SDK builds the same wire shapes and reports the SDK it runs on."""

from __future__ import annotations

import pytest

pytest.importorskip("mcp")

from toolrt.adapters.mcp import compat, sdk  # noqa: E402


def test_results_and_tools_have_the_wire_shape_clients_read() -> None:
    """A result carries its content, structuredContent, isError and _meta under their wire names."""
    result = compat.call_result(
        [compat.text("5")], structured={"result": 5}, is_error=False, meta={"toolrt/stdout": "hi\n"}
    )
    wire = result.model_dump(by_alias=True, exclude_none=True)
    assert wire["content"] == [{"type": "text", "text": "5"}]
    assert wire["structuredContent"] == {"result": 5} and wire["isError"] is False
    assert wire["_meta"] == {"toolrt/stdout": "hi\n"}
    tool = compat.tool(
        "add", "Add two numbers.", {"type": "object"}, annotations={"readOnlyHint": True, "destructiveHint": False}
    )
    wire = tool.model_dump(by_alias=True, exclude_none=True)
    assert wire["inputSchema"] == {"type": "object"}
    assert wire["annotations"] == {"readOnlyHint": True, "destructiveHint": False}


def test_sdk_support_reports_the_installed_release_and_that_serve_runs_on_it() -> None:
    """On the SDK the dev environment installs, the server imports and the version is named."""
    support = sdk.sdk_support()
    assert support.version == sdk.installed_version() and support.major == compat.MAJOR
    assert support.serves and support.problem == ""


def test_a_release_toolrt_does_not_run_on_is_refused_with_the_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    """An older release (1.29, 2.2) is named with the releases toolrt supports and the pip command."""
    for old in ("1.29.0", "2.2.1"):
        monkeypatch.setattr(sdk, "installed_version", lambda old=old: old)
        support = sdk.sdk_support()
        assert not support.serves and old in support.problem and sdk.SUPPORTED_PIN in support.problem


def test_release_reads_the_leading_numbers_of_each_part() -> None:
    """Pre-releases and local versions read as their numeric release."""
    assert sdk.release("1.30.0") == (1, 30, 0)
    assert sdk.release("2.3.0rc1") == (2, 3, 0)
    assert sdk.release("2.10.1+local") == (2, 10, 1)


def test_a_protocol_error_is_what_the_sdk_answers_as_json_rpc() -> None:
    """protocol_error gives the SDK's own exception type with the code and message."""
    error = compat.protocol_error(-32600, "no token")
    assert "no token" in str(error)
