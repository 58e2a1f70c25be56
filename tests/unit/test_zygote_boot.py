"""The zygote's start-up arguments: Linux refuses any one argument of 128 KiB or more (MAX_ARG_STRLEN)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from toolrt.adapters.local.sandbox import BOOT_ARG_CAP, _harness, _zygote_boot

MAX_ARG_STRLEN = 32 * 4096


def test_every_argument_that_starts_the_zygote_fits_in_one_exec_argument() -> None:
    args = _zygote_boot(_harness("python_zygote.py"), Path(sys.executable))
    assert all(len(arg.encode()) < MAX_ARG_STRLEN for arg in args), [len(arg) for arg in args]
    assert BOOT_ARG_CAP < MAX_ARG_STRLEN


def test_the_boot_arguments_run_the_code_they_carry() -> None:
    """What the boot line decodes is the code it was given (checked with a small stand-in program)."""
    args = _zygote_boot("import sys\nprint('booted', sys.argv[1:])\n", Path(sys.executable))
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", *args, "a", "b"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "booted ['a', 'b']"


def test_a_program_too_large_for_one_argument_is_passed_as_source() -> None:
    big = "x = 1\n" * (BOOT_ARG_CAP // 4)
    args = _zygote_boot(big, Path(sys.executable))
    assert args == [big]
