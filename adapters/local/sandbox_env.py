"""What this machine offers the local sandbox: bubblewrap, user namespaces, Python and Node."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolrt.adapters.node import find_node

NOBODY = 65534
_SYSTEM_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def system_binds(files: Sequence[str]) -> list[str]:
    """bubblewrap arguments for the host's system, read-only: ``/usr``, the top-level ``bin`` and
    ``lib`` folders (as the symlinks into ``/usr`` they are on merged-/usr hosts, else bound), and
    ``files`` where they exist."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_LINKS:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    for path in files:
        args += ["--ro-bind-try", path, path]
    return args


def drop_to_nobody() -> bool:
    """Run sandboxes as the host's ``nobody`` when toolrt runs as root.

    As root, bubblewrap maps the uid inside to host root: the tool would own every root file it can
    see. Started as nobody, the tool holds no host privilege at all, and RLIMIT_NPROC applies.
    """
    return os.geteuid() == 0


def world_executable(path: Path) -> bool:
    """True when every directory on the way to ``path`` lets others through (``nobody`` can run it)."""
    try:
        for part in [*reversed(path.parents), path]:
            mode = part.stat().st_mode
            if not mode & stat.S_IXOTH:
                return False
    except OSError:
        return False
    return True


#: Where engines (Node.js, QuickJS) installed under a folder closed to others are made reachable.
ENGINES_DIR = Path("/var/cache/toolrt/engines")


def reachable_engine(path: Path, root: Path = ENGINES_DIR) -> Path:
    """``path`` when the sandbox user can reach it, else the same file in a folder it can reach.

    As root, sandboxes run as nobody, who cannot walk into a virtualenv under ``/root`` or a
    ``mktemp -d`` folder (bubblewrap, started as nobody, resolves even a descriptor's path as
    nobody). The engine file is then linked (or, across file systems, copied) once per version of
    the file into ``root/<key>/``, owned by root and read-only to everyone else: the sandbox binds it
    from there, whatever the mode of the folder toolrt was installed in. Raises OSError when it
    cannot be made.
    """
    path = path.resolve()
    info = path.stat()
    if not drop_to_nobody() or (world_executable(path.parent) and info.st_mode & stat.S_IROTH):
        return path
    key = hashlib.sha256(f"{path}|{info.st_ino}|{info.st_size}|{info.st_mtime_ns}".encode()).hexdigest()[:20]
    target = root / key / path.name
    if target.is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    for folder in (root.parent, root) if root == ENGINES_DIR else (root,):
        os.chmod(folder, folder.stat().st_mode | 0o555)  # others may walk in (whatever the umask)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
    try:
        os.chmod(staging, 0o755)
        copy = staging / path.name
        try:
            if not info.st_mode & stat.S_IROTH:
                raise OSError("a link would share a mode others cannot read")
            os.link(path, copy)  # the same file, at a path nobody can reach
        except OSError:
            shutil.copyfile(path, copy)
            os.chmod(copy, 0o755 if info.st_mode & stat.S_IXUSR else 0o644)
        try:
            os.rename(staging, root / key)
        except OSError:  # another process made it meanwhile
            if not target.is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@functools.cache
def find_python() -> tuple[Path, Path]:
    """The interpreter that runs Python tools and its install prefix (bound read-only in the sandbox).

    The base interpreter of the running Python is preferred; a system ``python3`` is used when the
    sandbox user could not reach the former (for example a pyenv install under /root).
    """
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    prefix = Path(sys.base_prefix).resolve()
    if not drop_to_nobody() or world_executable(base):
        return base, prefix
    for name in (f"python{sys.version_info.major}.{sys.version_info.minor}", "python3"):
        for folder in ("/usr/bin", "/usr/local/bin"):
            candidate = Path(folder) / name
            if candidate.is_file() and world_executable(candidate.resolve()):
                resolved = candidate.resolve()
                return resolved, resolved.parent.parent
    return base, prefix


@functools.cache
def bytecode_magic(python: Path) -> bytes | None:
    """The bytecode magic number of ``python``, so that code compiled here can be shipped to it."""
    try:
        done = subprocess.run(
            [str(python), "-I", "-S", "-c", "import _frozen_importlib_external as e; print(e.MAGIC_NUMBER.hex())"],
            capture_output=True,
            timeout=20,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        return bytes.fromhex(done.stdout.strip()) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


@functools.cache
def find_bwrap() -> Path | None:
    """The bubblewrap binary, from ``TOOLRT_BWRAP`` or ``PATH``."""
    explicit = os.environ.get("TOOLRT_BWRAP")
    found = explicit if explicit else shutil.which("bwrap")
    return Path(found) if found and os.access(found, os.X_OK) else None


def namespace_args(
    extra_ro: list[Path],
    tmp_size_bytes: int,
    chdir: str = "/tmp",
    *,
    binds: tuple[tuple[Path, str], ...] = (),
    env: tuple[tuple[str, str], ...] = (),
    fd_binds: tuple[tuple[int, str], ...] = (),
) -> list[str]:
    """bubblewrap arguments: every namespace, no capabilities, a read-only minimal root, private /tmp.

    ``binds``: (host path, path inside) pairs bound read-only (the worker's egress socket: a socket
    on a read-only mount still accepts connections); ``env``: extra variables set inside;
    ``fd_binds``: (open directory fd, path inside) pairs bound read-only through the fd, so that the
    sandbox user need not be able to walk the host path (an environment under root's data folder).
    """
    args = [
        "--unshare-all",
        "--unshare-user",
        "--uid",
        str(NOBODY),
        "--gid",
        str(NOBODY),
        "--disable-userns",
        "--hostname",
        "toolrt",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/local/bin:/usr/bin:/bin",
        "--setenv",
        "HOME",
        "/tmp/work",
        "--setenv",
        "TMPDIR",
        "/tmp",
        "--setenv",
        "LANG",
        "C.UTF-8",
        *[arg for name, value in env for arg in ("--setenv", name, value)],
    ]
    args += system_binds(("/etc/ld.so.cache", "/etc/localtime"))
    args += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(tmp_size_bytes),
        "--tmpfs",
        "/tmp",
        "--size",
        str(tmp_size_bytes),
        "--tmpfs",
        "/dev/shm",
    ]
    # After the tmpfs mounts, so that an interpreter or node under /tmp (a CI checkout, say) is not
    # hidden by the private /tmp; mounts made later lie on top.
    seen: set[Path] = set()
    for path in extra_ro:
        if path in seen or path == Path("/usr") or Path("/usr") in path.parents:
            continue
        seen.add(path)
        args += ["--ro-bind", str(path), str(path)]
    for host_path, inside in binds:
        args += ["--ro-bind", str(host_path), inside]
    for fd, inside in fd_binds:
        args += ["--ro-bind-fd", str(fd), inside]
    args += ["--remount-ro", "/"]
    if chdir != "/tmp":
        args += ["--dir", chdir]
    args += ["--chdir", chdir]
    return args


def _popen_identity() -> dict[str, Any]:
    if drop_to_nobody():
        return {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    return {}


@functools.cache
def bwrap_check() -> tuple[bool, str]:
    """Whether bubblewrap can create the namespaces toolrt asks for here, and why not if it cannot."""
    bwrap = find_bwrap()
    if bwrap is None:
        return False, "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    python, prefix = find_python()
    cmd = [str(bwrap), *namespace_args([prefix], 1 << 20), "--", str(python), "-I", "-S", "-c", "pass"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=20, env={"PATH": "/usr/bin:/bin"}, **_popen_identity())
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"bwrap could not start: {exc}"
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        return False, f"bwrap cannot create user namespaces here: {detail[-1] if detail else done.returncode}"
    return True, "bwrap creates user, pid, net, ipc and uts namespaces"


def _version(cmd: list[str]) -> str | None:
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=10, text=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout or done.stderr).strip() or None


def probe_environment() -> dict[str, Any]:
    """What ``toolrt doctor`` prints about the local sandbox: tools found and the isolation chosen."""
    bwrap = find_bwrap()
    works, why = bwrap_check()
    node = find_node()
    python, prefix = find_python()
    from toolrt.adapters.local.cgroups import detect as detect_cgroups
    from toolrt.adapters.local.quickjs_engine import find_quickjs
    from toolrt.adapters.local.seccomp_filter import seccomp_status

    seccomp_ok, seccomp_why = seccomp_status()
    groups, groups_why = detect_cgroups()
    if groups is not None:
        groups_why = f"{groups_why}: each call's processes share one memory and process budget"
        groups.close()
    return {
        "seccomp": seccomp_ok,
        "seccomp_detail": seccomp_why,
        "cgroups": groups is not None,
        "cgroups_detail": groups_why,
        "bwrap_path": str(bwrap) if bwrap else None,
        "bwrap_version": _version([str(bwrap), "--version"]) if bwrap else None,
        "user_namespaces": works,
        "node_path": str(node) if node else None,
        "node_version": _version([str(node), "--version"]) if node else None,
        # JavaScript on QuickJS in the Python zygote (quickjs-ng, the js extra); None: every call on Node
        "quickjs_path": str(quickjs) if (quickjs := find_quickjs()) else None,
        "python_path": str(python),
        "python_prefix": str(prefix),
        "runs_as": "nobody (65534)" if drop_to_nobody() else f"uid {os.geteuid()}",
        "isolation": "namespaces" if works else "process",
        "reason": why
        if works
        else f"{why}; falling back to rlimits and process-group control (isolation='strict' refuses to run instead)",
    }
