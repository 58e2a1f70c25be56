"""Validation policies: loading, overriding, and a version that changes with the effective rules."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from toolrt.adapters.validation import PolicyError, build_validator, load_policy
from toolrt.ports import CodeValidator


def test_validator_implements_the_port() -> None:
    """The built validator satisfies the CodeValidator protocol the application depends on."""
    assert isinstance(build_validator(), CodeValidator)


def test_default_version_names_policy_and_switch() -> None:
    """The default policy version reads like default@<n>+security:<hash> and is stable across builds."""
    version = build_validator().policy_version
    assert version.startswith("default@") and "+security:" in version
    assert build_validator("default").policy_version == version
    assert build_validator(None).policy_version == version


def test_version_changes_with_any_effective_change() -> None:
    """Any override, or switching security off, yields a new version so cached artifacts are re-validated."""
    versions = {
        build_validator().policy_version,
        build_validator(security_checks=False).policy_version,
        build_validator({"limits": {"max_lines": 10}}).policy_version,
        build_validator({"python": {"denied_builtins": {"print": "process"}}}).policy_version,
        build_validator({"categories": {"filesystem": "error"}}).policy_version,
    }
    assert len(versions) == 5


def test_policy_file_overrides_default(tmp_path: Path) -> None:
    """A JSON policy file is merged over the default and its name appears in the version."""
    path = tmp_path / "strict.json"
    path.write_text(json.dumps({"name": "strict", "version": 7, "categories": {"filesystem": "error"}}))
    validator = build_validator(str(path))
    assert validator.policy_version.startswith("strict@7+security:")
    assert validator.policy.severity("filesystem") is not None
    assert validator.policy.data["python"]["denied_modules"]["subprocess"] == "subprocess"


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("/nonexistent/policy.json", "neither 'default' nor an existing JSON file"),
        ({"categories": {"network": "fatal"}}, "categories.network"),
        ({"limits": {"max_lines": 0}}, "limits.max_lines"),
        ({"python": {"denied_modules": {"os": "nuclear"}}}, "unknown category 'nuclear'"),
        ({"javascript": {"allowed_modules": "fs"}}, "javascript.allowed_modules"),
    ],
)
def test_bad_policy_is_rejected_with_the_field(policy: object, message: str) -> None:
    """A malformed policy fails at build time with a PolicyError naming the bad field."""
    with pytest.raises(PolicyError, match=message):
        load_policy(policy)  # type: ignore[arg-type]


def test_bad_policy_file_contents(tmp_path: Path) -> None:
    """A policy file that is not a JSON object is rejected with its path in the message."""
    path = tmp_path / "p.json"
    path.write_text("[1, 2]")
    with pytest.raises(PolicyError, match="must hold a JSON object"):
        load_policy(str(path))
    path.write_text("{nope")
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(str(path))


def test_security_off_logs_one_warning_per_validator(caplog: pytest.LogCaptureFixture) -> None:
    """Turning security checks off is logged once, as a warning, when the validator is built."""
    caplog.set_level(logging.DEBUG, logger="toolrt")
    validator = build_validator(security_checks=False)
    build_validator()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].name.startswith("toolrt.")
    assert warnings[0].toolrt["policy_version"] == validator.policy_version  # type: ignore[attr-defined]
