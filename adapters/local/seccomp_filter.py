"""The seccomp filters sandboxed processes run under: the syscalls that reach other processes are refused.

Why a filter at all: the namespaces keep a tool from *seeing* other tenants, and the zygote is
non-dumpable, but the kernel still offers a tool the means to reach whatever it can name: ptrace,
``process_vm_readv``/``writev``, ``pidfd_open`` + ``pidfd_getfd`` (copying another process's file
descriptors), ``kcmp``, and a wide attack surface that no tool needs (io_uring, userfaultfd, bpf,
perf events, the kernel keyring, new namespaces and mounts, sockets of families other than the
internet ones). The filter takes them away at the OS level, whatever code runs: it holds for Python
and Node alike, and for any code that gets past validation.

How: deny lists (default allow) compiled by libseccomp through its Python binding (``pyseccomp``,
API-compatible with libseccomp's own), as Flatpak does, exported once as classic BPF. Refused calls
fail with ``EPERM``; ``clone3`` fails with ``ENOSYS`` because its flags live in memory a filter
cannot read, so the C library falls back to ``clone``, whose namespace flags the filter does read.
Syscalls of a foreign architecture (32-bit calls from a 64-bit process) kill the process: that is
libseccomp's default for an architecture the filter was not built for.

Two stages (see :data:`PROGRAMS`). bubblewrap loads the sandbox's filter (``--seccomp FD``, with
``no_new_privs``) before its first process runs. A Python sandbox's filter (``zygote``) still lets
its template and zygotes create namespaces and mount, because each call's first process is cloned
into namespaces of its own and mounts its own /proc, /tmp and /dev/shm; that process then drops its
capabilities and loads the ``call`` (or ``offline``) layer itself, through ``prctl``, before any tool
code runs: no namespaces, no mounts, and ``socket()`` for AF_INET/AF_INET6 only (``offline``: none
at all). Filters stack, so each call runs under both. The egress forwarder, which needs a unix
socket, is forked before that layer and loads its own (``forwarder``). A Node worker without network
gets everything in one filter (``strict``); with network, its launcher forks the forwarder, then
loads ``call`` and runs Node. Without namespaces (process isolation) a small launcher
(``harness/seccomp_exec.py``) loads ``strict`` through ``prctl`` before the worker starts.
"""

from __future__ import annotations

import errno
import functools
import tempfile
from typing import Any

__all__ = [
    "CALL_SOCKET_FAMILIES",
    "DENIED_SYSCALLS",
    "NAMESPACE_CLONE_FLAGS",
    "PROGRAMS",
    "SeccompUnavailable",
    "filter_program",
    "seccomp_status",
]

# Syscalls no tool needs and that reach other processes, the kernel's internals or the mount table.
DENIED_SYSCALLS: tuple[str, ...] = (
    # other processes' memory, file descriptors and identity
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_open",
    "pidfd_getfd",
    "pidfd_send_signal",
    "kcmp",
    "process_madvise",
    # large kernel attack surfaces no tool needs
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "fanotify_init",
    "lookup_dcookie",
    "name_to_handle_at",
    "open_by_handle_at",
    "uselib",
    "personality",
    # namespaces, mounts and the root
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    # the machine itself (refused anyway without capabilities: refused here before any check)
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
)

# clone(2) flags that create namespaces: a clone with any of them is refused.
NAMESPACE_CLONE_FLAGS: dict[str, int] = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
    "CLONE_NEWTIME": 0x00000080,
}


# What the zygotes of a Python sandbox need to build each call's namespaces (see ``zygote_program``):
# a call's first process is cloned into new user, pid, mount, ipc and network namespaces and mounts
# its own /proc, /tmp, /dev/shm and /dev/pts. Every other process, and every call, is refused them.
NAMESPACE_SYSCALLS: tuple[str, ...] = ("unshare", "mount")

# Socket families (``socket()``'s first argument) a tool may create: the internet ones only, and only
# where the egress path needs them (a call that may reach hosts, which has a network namespace of its
# own: its loopback and its forwarder are its alone). Every other family (unix, netlink, vsock,
# packet, ...) fails with EPERM, and a call that may reach no host can create no socket at all.
# ``socketpair`` is another syscall and keeps working.
CALL_SOCKET_FAMILIES: tuple[int, ...] = (2, 10)  # AF_INET, AF_INET6
# The egress forwarder listens on the call's loopback and connects to the worker's unix socket.
FORWARDER_SOCKET_FAMILIES: tuple[int, ...] = (1, 2)  # AF_UNIX, AF_INET


class SeccompUnavailable(RuntimeError):
    """libseccomp or its Python binding cannot be loaded here (the reason is the message)."""


def _refuse_other_families(flt: Any, sc: Any, refuse: Any, allowed: tuple[int, ...]) -> None:
    """Refuse ``socket()`` for every family but ``allowed`` (all of them when it is empty): each value
    below the largest allowed one that is not allowed, and everything above it (so the whole 64-bit
    register is covered: a family with high bits set is refused, whatever its low bits say)."""
    if not allowed:
        flt.add_rule(refuse, "socket")
        return
    for value in range(max(allowed)):
        if value not in allowed:
            flt.add_rule(refuse, "socket", sc.Arg(0, sc.EQ, value))
    flt.add_rule(refuse, "socket", sc.Arg(0, sc.GT, max(allowed)))


def _build(*, base: bool, namespaces: bool, families: tuple[int, ...] | None, denied: tuple[str, ...] = ()) -> bytes:
    """A filter program. ``base``: the full deny list every sandboxed process runs under (else a layer
    loaded on top of it, adding only its own rules); ``namespaces``: whether ``unshare``, ``mount`` and
    clone with namespace flags are allowed; ``families``: the only socket families ``socket()`` may
    create (None: any); ``denied``: more syscalls to refuse."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError, RuntimeError) as exc:  # the binding loads libseccomp.so.2 at import
        raise SeccompUnavailable(f"libseccomp is not available ({exc}); install libseccomp2") from exc
    flt = sc.SyscallFilter(sc.ALLOW)
    refuse = sc.ERRNO(errno.EPERM)
    names = list(denied)
    if base:
        names += [name for name in DENIED_SYSCALLS if not (namespaces and name in NAMESPACE_SYSCALLS)]
    elif not namespaces:
        names += list(NAMESPACE_SYSCALLS)
    for name in names:
        try:
            flt.add_rule(refuse, name)
        except (RuntimeError, ValueError, OSError):
            continue  # a syscall this architecture does not have (libseccomp cannot resolve its name)
    if not namespaces:
        for flag in NAMESPACE_CLONE_FLAGS.values():
            flt.add_rule(refuse, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    if base:
        flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        # TIOCSTI/TIOCLINUX push input into a terminal the sandbox might share (Flatpak refuses them too).
        flt.add_rule(refuse, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, 0x5412))
        flt.add_rule(refuse, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, 0x541C))
    if families is not None:
        _refuse_other_families(flt, sc, refuse, families)
    with tempfile.TemporaryFile() as out:
        flt.export_bpf(out)
        out.seek(0)
        return out.read()


# The programs, by what runs under them:
PROGRAMS: dict[str, dict[str, Any]] = {
    # A single-stage sandbox whose one process runs tool code (a Node worker without network).
    "strict": {"base": True, "namespaces": False, "families": CALL_SOCKET_FAMILIES},
    # A Python sandbox: its template and zygotes build each call's namespaces; calls load "call".
    "zygote": {"base": True, "namespaces": True, "families": None},
    # A sandbox whose launcher loads "call" itself before the tool's engine starts (a Node worker
    # with network, whose forwarder needs a unix socket; a worker without namespaces).
    "worker": {"base": True, "namespaces": False, "families": None},
    # Loaded by each call's first process once its namespaces are set and its capabilities dropped,
    # on top of the sandbox's: no namespaces, no mounts, internet sockets only (a call that may reach
    # hosts), or no socket at all ("offline": a call that may not).
    "call": {"base": False, "namespaces": False, "families": CALL_SOCKET_FAMILIES},
    "offline": {"base": False, "namespaces": False, "families": ()},
    # Loaded by the egress forwarder on top of the sandbox's: it runs no program and opens no other
    # socket than its listener and its connections to the worker's unix socket.
    "forwarder": {
        "base": False,
        "namespaces": False,
        "families": FORWARDER_SOCKET_FAMILIES,
        "denied": ("execve", "execveat"),
    },
}


@functools.cache
def _program(kind: str = "strict") -> bytes | str:
    try:
        return _build(**PROGRAMS[kind])
    except SeccompUnavailable as exc:
        return str(exc)


def filter_program(kind: str = "strict") -> bytes:
    """The compiled BPF program (``struct sock_filter`` array) of one of ``PROGRAMS``; raises
    :class:`SeccompUnavailable`."""
    program = _program(kind)
    if isinstance(program, str):
        raise SeccompUnavailable(program)
    return program


def seccomp_status() -> tuple[bool, str]:
    """Whether the filter can be built here, and a sentence saying so (for ``toolrt doctor``)."""
    program = _program()
    if isinstance(program, str):
        return False, program
    return True, (
        f"libseccomp filter refusing {len(DENIED_SYSCALLS) + 2} syscalls and namespace clones, and every "
        "socket family but AF_INET and AF_INET6 in tool code"
    )
