"""The aws profile's environments without an index: wheels fetched by URL, hashes, sizes, the cache."""

from __future__ import annotations

import hashlib
import threading
import zipfile
from pathlib import Path

import pytest

import toolrt
from toolrt.adapters.aws.environments import CodeInterpreterEnvironments, interpreter_target, wheel_modules
from toolrt.domain import Language, Lock, LockedPackage, RequirementError, RequirementsUnsupportedError


def _wheel(
    folder: Path,
    name: str,
    files: dict[str, bytes],
    top_level: str | None = None,
    compression: int = zipfile.ZIP_STORED,
) -> Path:
    path = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression) as archive:
        for member, data in files.items():
            archive.writestr(member, data)
        record = "".join(f"{m},,\n" for m in files) + f"{name}-1.0.dist-info/RECORD,,\n"
        archive.writestr(f"{name}-1.0.dist-info/RECORD", record)
        if top_level is not None:
            archive.writestr(f"{name}-1.0.dist-info/top_level.txt", top_level)
    return path


class _Resolver:
    def __init__(self, lock: Lock) -> None:
        self.lock = lock
        self.calls = 0

    def resolve(self, requirements: tuple[str, ...]) -> Lock:
        self.calls += 1
        return self.lock


def _lock_of(*wheels: Path) -> Lock:
    return Lock(
        "python",
        [
            LockedPackage(w.name.split("-")[0], "1.0", w.as_uri(), hashlib.sha256(w.read_bytes()).hexdigest())
            for w in wheels
        ],
    )


def test_the_interpreter_target_names_pip_options_and_a_platform() -> None:
    options, platform = interpreter_target("3.12")
    assert options[:4] == ("--python-version", "3.12", "--implementation", "cp")
    assert "manylinux2014_x86_64" in options and platform == "cp312-manylinux_x86_64"
    for bad in ("3", "2.7", "3.12.1", "python3.12", ""):
        with pytest.raises(ValueError, match="like 3.12"):
            interpreter_target(bad)


def test_a_bad_interpreter_version_setting_is_refused_at_connect(tmp_path: Path) -> None:
    with pytest.raises(toolrt.SettingsError, match="code_interpreter_python must be a Python version like 3.12"):
        toolrt.connect("memory", data_dir=str(tmp_path), code_interpreter_python="3.x")


def test_wheel_modules_read_top_level_or_record(tmp_path: Path) -> None:
    listed = _wheel(tmp_path, "alpha", {"alpha/__init__.py": b"", "beta.py": b""}, top_level="alpha\n")
    unlisted = _wheel(tmp_path, "gamma", {"gamma/__init__.py": b"", "delta.cpython-311-x86_64-linux-gnu.so": b""})
    assert wheel_modules(listed) == ("alpha", "beta")
    assert wheel_modules(unlisted) == ("delta", "gamma")


def test_locked_wheels_are_fetched_checked_listed_and_pruned(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "alpha", {"alpha/__init__.py": b"X = 1\n"})
    resolver = _Resolver(_lock_of(wheel))
    envs = CodeInterpreterEnvironments(resolver, tmp_path / "envs")
    lock = envs.lock(Language.PYTHON, ("alpha",), max_bytes=2**20)
    assert lock.modules == ("alpha",)
    folder = Path(envs.ensure(lock))
    assert folder.name == "wheels" and folder.parent.name == lock.digest
    assert sorted(p.name for p in folder.iterdir()) == [wheel.name, "requirements.txt"]
    assert f"alpha==1.0 --hash=sha256:{lock.packages[0].sha256}" in (folder / "requirements.txt").read_text()
    (listed,) = envs.environments()
    assert listed.digest == lock.digest and listed.packages == ("alpha==1.0",)
    assert envs.prune(keep={lock.digest}).removed == ()
    assert envs.prune(keep=set()).removed == (lock.digest,)
    assert envs.environments() == []
    assert Path(envs.ensure(lock)).is_dir()  # fetched again from the lock
    assert envs.lock(Language.PYTHON, ("alpha",), max_bytes=2**20) == lock
    assert resolver.calls == 1  # the same requirements again: remembered, no index asked


def test_a_changed_file_a_bomb_and_a_denied_dependency_are_refused_with_nothing_kept(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "alpha", {"alpha/__init__.py": b""})
    changed = _lock_of(wheel)
    wheel.write_bytes(wheel.read_bytes() + b"tampered")
    envs = CodeInterpreterEnvironments(_Resolver(changed), tmp_path / "envs")
    with pytest.raises(RequirementError, match="does not match the lock's sha256") as caught:
        envs.lock(Language.PYTHON, ("alpha",), max_bytes=2**20)
    assert caught.value.requirement == "alpha"

    bomb = _wheel(tmp_path, "bomb", {"bomb/__init__.py": b"\0" * (3 * 2**20)}, compression=zipfile.ZIP_DEFLATED)
    envs = CodeInterpreterEnvironments(_Resolver(_lock_of(bomb)), tmp_path / "envs")
    with pytest.raises(RequirementError, match="more than the policy's 1 MB") as caught:
        envs.lock(Language.PYTHON, ("bomb",), max_bytes=2**20)
    assert caught.value.reason == "too_large"

    with pytest.raises(RequirementError) as caught:
        envs.lock(Language.PYTHON, ("bomb",), max_bytes=2**30, denied={"bomb"})
    assert caught.value.reason == "denied"
    assert envs.environments() == [] and not list((tmp_path / "envs").rglob("*.whl"))


def test_a_lock_naming_anything_but_an_index_file_is_refused(tmp_path: Path) -> None:
    lock = Lock("python", [LockedPackage("alpha", "1.0", "ftp://example.invalid/alpha-1.0-py3-none-any.whl", "0" * 64)])
    envs = CodeInterpreterEnvironments(_Resolver(lock), tmp_path / "envs")
    with pytest.raises(RequirementError, match="only index files"):
        envs.lock(Language.PYTHON, ("alpha",), max_bytes=2**20)


def test_javascript_and_typescript_are_refused_naming_the_local_profile(tmp_path: Path) -> None:
    envs = CodeInterpreterEnvironments(_Resolver(Lock("node", [])), tmp_path / "envs")
    for language in (Language.JAVASCRIPT, Language.TYPESCRIPT):
        assert not envs.supports(language)
        with pytest.raises(RequirementsUnsupportedError, match="local"):
            envs.lock(language, ("left-pad@^1.3.0",), max_bytes=2**20)


def test_a_lock_naming_a_file_of_another_machine_says_so_rather_than_retry_later(tmp_path: Path) -> None:
    """A lock resolved where pip found wheels in a local folder (file://), run where that folder is
    not (the gateway's router, say): a typed error naming the file and what to do, not "try again"."""
    wheel = _wheel(tmp_path, "alpha", {"alpha/__init__.py": b""})
    lock = _lock_of(wheel)
    wheel.unlink()
    envs = CodeInterpreterEnvironments(None, tmp_path / "router")
    with pytest.raises(RequirementError, match="not on this machine") as caught:
        envs.ensure(lock)
    assert caught.value.reason == "not_found" and caught.value.requirement == "alpha"
    assert "index" in str(caught.value.report)
    assert envs.environments() == [] and not list((tmp_path / "router").rglob("*.whl"))


@pytest.mark.parametrize(
    "leaf",
    ["a%00b-1.0-py3-none-any.whl", "a-1.0-1%24%28touch%20x%29-py3-none-any.whl", "a-1.0-py3-none-any.whl%0A.whl"],
)
def test_a_wheel_name_that_is_not_a_plain_file_name_is_refused(tmp_path: Path, leaf: str) -> None:
    """The name a lock's URL gives a wheel becomes a file here and a path in the session: anything
    but the characters of a wheel's name (a NUL, a shell's $(...), a newline) is refused as not a
    wheel, before anything is fetched."""
    lock = Lock("python", [LockedPackage("a", "1.0", f"https://example.invalid/simple/a/{leaf}", "0" * 64)])
    envs = CodeInterpreterEnvironments(_Resolver(lock), tmp_path / "envs")
    with pytest.raises(RequirementError, match="not a wheel") as caught:
        envs.lock(Language.PYTHON, ("a",), max_bytes=2**20)
    assert caught.value.reason == "no_wheel"
    assert not list((tmp_path / "envs").rglob("*.whl"))


def test_concurrent_registrations_of_one_lock_share_one_checked_folder(tmp_path: Path) -> None:
    """Eight registrations (two agents, separate instances as separate processes would be) fetch one
    lock at once: one folder comes out, every wheel in it whole, and no half-made folder is left."""
    wheels = [_wheel(tmp_path, name, {f"{name}/__init__.py": bytes(64 * 1024)}) for name in ("alpha", "beta")]
    lock = _lock_of(*wheels)
    barrier = threading.Barrier(8)
    found: list[str] = []
    errors: list[BaseException] = []

    def register() -> None:
        envs = CodeInterpreterEnvironments(_Resolver(lock), tmp_path / "envs")
        barrier.wait()
        try:
            found.append(envs.ensure(envs.lock(Language.PYTHON, ("alpha", "beta"), max_bytes=2**20)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(found)) == 1
    folder = Path(found[0])
    for wheel in wheels:
        assert (folder / wheel.name).read_bytes() == wheel.read_bytes()
    root = tmp_path / "envs" / "code-interpreter" / "python"
    assert sorted(p.name for p in root.iterdir()) == [".locks", lock.digest]
