"""The dependency-injector container: every profile wires, overrides work, settings are honoured."""

from __future__ import annotations

import pytest

from tests.fakes import CountingValidator, EchoSandbox
from toolrt.application import ToolRuntime
from toolrt.bootstrap import build_container
from toolrt.contracts import builders as b
from toolrt.settings import Settings, SettingsError


@pytest.mark.parametrize("profile", ["memory", "local", "aws"])
def test_every_profile_wires(profile: str) -> None:
    """Each profile's container has every dependency it needs."""
    container = build_container(Settings(profile=profile))
    container.check_dependencies()
    assert container.adapters.config.repository() == profile  # type: ignore[attr-defined]


def test_one_port_can_be_chosen_on_its_own() -> None:
    """connect("aws", sandbox="local") keeps the AWS stores and runs code locally."""
    settings = Settings(profile="aws", sandbox="local")
    container = build_container(settings)
    assert container.adapters.config.sandbox() == "local"  # type: ignore[attr-defined]
    assert container.adapters.config.repository() == "aws"  # type: ignore[attr-defined]


def test_overridden_providers_build_a_working_runtime() -> None:
    """Tests override providers rather than patching modules."""
    container = build_container(Settings(profile="memory"))
    sandbox = EchoSandbox()
    with container.adapters.sandbox.override(sandbox), container.adapters.validator.override(CountingValidator()):
        rt = container.runtime()
        assert isinstance(rt, ToolRuntime) and rt.profile == "memory"
        reg = rt.register_tool("agent-a", b.definition())
        assert rt.execute_tool("agent-a", reg.tool_id, {"a": 1, "b": 2}).ok
        assert sandbox.requests


def test_settings_from_keywords_then_environment() -> None:
    """Keyword arguments win over TOOLRT_* variables, which win over the defaults."""
    env = {"TOOLRT_DEFAULT_TIMEOUT_S": "12", "TOOLRT_PROFILE": "aws", "TOOLRT_SECURITY_CHECKS": "off"}
    s = Settings.load({"profile": "memory"}, env)
    assert (s.profile, s.default_timeout_s, s.security_checks) == ("memory", 12.0, False)
    defaults = Settings.load({}, {})
    assert (
        defaults.default_timeout_s,
        defaults.max_timeout_s,
        defaults.poll_interval_s,
        defaults.poll_max_attempts,
    ) == (30.0, 300.0, 1.0, 60)


@pytest.mark.parametrize(
    ("overrides", "env", "words"),
    [
        ({"profil": "memory"}, {}, "unknown setting(s): profil"),
        ({"profile": "mars"}, {}, "profile='mars' is not one of"),
        ({}, {"TOOLRT_MAX_TIMEOUT_S": "soon"}, "TOOLRT_MAX_TIMEOUT_S='soon' is not a valid float"),
        ({"max_timeout_s": -3}, {}, "must be positive"),
        ({}, {"TOOLRT_CODE_INTERPRETER_EGRESS": "open"}, "code_interpreter_egress='open' is not one of"),
    ],
)
def test_bad_settings(overrides: dict[str, object], env: dict[str, str], words: str) -> None:
    """A misspelt or unusable setting is a SettingsError that says which."""
    with pytest.raises(SettingsError) as caught:
        Settings.load(overrides, env)
    assert words in str(caught.value)


def test_the_local_store_takes_how_execution_records_reach_the_disk(tmp_path: object) -> None:
    """execution_record_sync_s reaches the SQLite store: 0 waits for the disk on each record; a
    negative value is refused."""
    from pathlib import Path

    for value, background in ((0.0, False), (0.25, True)):
        settings = Settings.load({"profile": "local", "data_dir": Path(str(tmp_path)) / str(value)}, {})
        settings = Settings.load(
            {"profile": "local", "data_dir": settings.data_dir}, {"TOOLRT_EXECUTION_RECORD_SYNC_S": str(value)}
        )
        repo = build_container(settings).adapters.repository()
        try:
            assert repo.database.syncs_in_background is background
        finally:
            repo.close()
    with pytest.raises(SettingsError, match="execution_record_sync_s"):
        Settings.load({"execution_record_sync_s": -1}, {})
