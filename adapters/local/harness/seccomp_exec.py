"""toolrt seccomp launcher (process isolation): load the host-built filter into this process, then exec.

Usage: ``python -I -S -c <this file> <program as hex> <command> [args...]``. Under bubblewrap the
filter is loaded by bubblewrap itself (``--seccomp``); without namespaces this does the same job:
``no_new_privs``, then ``seccomp(SECCOMP_SET_MODE_FILTER)`` through ``prctl``, then ``execv``, so the
worker and everything it starts run under the filter from their first instruction.
"""

import ctypes
import os
import sys


class SockFprog(ctypes.Structure):
    """``struct sock_fprog``: the number of 8-byte BPF instructions and a pointer to them."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def main() -> None:
    program = bytes.fromhex(sys.argv[1])
    argv = sys.argv[2:]
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        sys.exit("toolrt: prctl(PR_SET_NO_NEW_PRIVS) failed: %s" % os.strerror(ctypes.get_errno()))
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        sys.exit("toolrt: loading the seccomp filter failed: %s" % os.strerror(ctypes.get_errno()))
    os.execv(argv[0], argv)


main()
