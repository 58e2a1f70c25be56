"""The seccomp filter every sandboxed process runs under: the syscalls that reach other processes are refused.

Why a filter at all: the namespaces keep a tool from *seeing* other tenants, and the zygote is
non-dumpable, but the kernel still offers a tool the means to reach whatever it can name: ptrace,
``process_vm_readv``/``writev``, ``pidfd_open`` + ``pidfd_getfd`` (copying another process's file
descriptors), ``kcmp``, and a wide attack surface that no tool needs (io_uring, userfaultfd, bpf,
perf events, the kernel keyring, new namespaces and mounts). The filter takes them away at the OS
level, whatever code runs: it holds for Python and Node alike, and for any code that gets past
validation.

How: a deny list (default allow) compiled by libseccomp through its Python binding (``pyseccomp``,
API-compatible with libseccomp's own), as Flatpak does, exported once as classic BPF and handed to
bubblewrap with ``--seccomp FD`` (bubblewrap loads it, with ``no_new_privs``, just before it runs the
worker). Refused calls fail with ``EPERM``; ``clone3`` fails with ``ENOSYS`` because its flags live
in memory a filter cannot read, so the C library falls back to ``clone``, whose namespace flags the
filter does read. Syscalls of a foreign architecture (32-bit calls from a 64-bit process) kill the
process: that is libseccomp's default for an architecture the filter was not built for.

Without namespaces (process isolation), :func:`load_into_self` loads the same program into a
process through ``prctl``; the Python zygote and the Node launcher do that before any tool code runs.
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile

__all__ = ["DENIED_SYSCALLS", "NAMESPACE_CLONE_FLAGS", "SeccompUnavailable", "filter_program", "seccomp_status"]

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


class SeccompUnavailable(RuntimeError):
    """libseccomp or its Python binding cannot be loaded here (the reason is the message)."""


def _build() -> bytes:
    try:
        import pyseccomp as sc
    except (ImportError, OSError, RuntimeError) as exc:  # the binding loads libseccomp.so.2 at import
        raise SeccompUnavailable(f"libseccomp is not available ({exc}); install libseccomp2") from exc
    flt = sc.SyscallFilter(sc.ALLOW)
    refuse = sc.ERRNO(errno.EPERM)
    for name in DENIED_SYSCALLS:
        try:
            flt.add_rule(refuse, name)
        except (RuntimeError, ValueError, OSError):
            continue  # a syscall this architecture does not have (libseccomp cannot resolve its name)
    for flag in NAMESPACE_CLONE_FLAGS.values():
        flt.add_rule(refuse, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    # TIOCSTI/TIOCLINUX push input into a terminal the sandbox might share (Flatpak refuses them too).
    flt.add_rule(refuse, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, 0x5412))
    flt.add_rule(refuse, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, 0x541C))
    with tempfile.TemporaryFile() as out:
        flt.export_bpf(out)
        out.seek(0)
        return out.read()


@functools.cache
def _program() -> bytes | str:
    try:
        return _build()
    except SeccompUnavailable as exc:
        return str(exc)


def filter_program() -> bytes:
    """The compiled BPF program (``struct sock_filter`` array); raises :class:`SeccompUnavailable`."""
    program = _program()
    if isinstance(program, str):
        raise SeccompUnavailable(program)
    return program


def seccomp_status() -> tuple[bool, str]:
    """Whether the filter can be built here, and a sentence saying so (for ``toolrt doctor``)."""
    program = _program()
    if isinstance(program, str):
        return False, program
    return True, f"libseccomp filter refusing {len(DENIED_SYSCALLS) + 2} syscalls and namespace clones"


def program_fd() -> int:
    """A readable fd holding the program (a pipe, closed by the caller after the child has started)."""
    program = filter_program()
    read_fd, write_fd = os.pipe()
    try:
        # Far below a pipe's buffer (64 KiB): the write never blocks.
        os.write(write_fd, program)
    finally:
        os.close(write_fd)
    return read_fd
