"""Reading the command line before typer does: which command it runs (the console script and the
application both ask, and neither may import the other for it)."""

from __future__ import annotations

# Global options that take a value (the word after them is not the command).
VALUED_OPTIONS = ("--profile", "--data-dir", "--agent")


def command_named(args: list[str]) -> str | None:
    """The command ``args`` run (None for help alone or when it cannot tell)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in VALUED_OPTIONS:
            skip = True
        elif arg in ("--help", "-h", "--"):
            return None
        elif not arg.startswith("-"):
            return arg
    return None
