"""The ``toolrt`` console script: what happens before the command line itself loads.

``toolrt serve`` over stdio starts answering the MCP host's ``initialize`` here (see
``toolrt.adapters.mcp.stdio_front``), before typer, the CLI's commands and the MCP SDK are imported.
"""

from __future__ import annotations

import sys

from toolrt.adapters.cli.argv import command_named


def serves_stdio(args: list[str]) -> bool:
    """Whether ``args`` run ``toolrt serve`` over stdio (the default transport)."""
    if command_named(args) != "serve" or "--help" in args:
        return False
    for index, arg in enumerate(args):
        value = arg.partition("=")[2] if arg.startswith("--transport=") else None
        if arg == "--transport" and index + 1 < len(args):
            value = args[index + 1]
        if value is not None and value != "stdio":
            return False
    return True


def run() -> None:
    """The ``toolrt`` console script."""
    if serves_stdio(sys.argv[1:]):
        import importlib.util

        if importlib.util.find_spec("mcp") is not None:
            from toolrt.adapters.mcp import stdio_front

            stdio_front.start_early(sys.argv[1:])
    from toolrt.adapters.cli.main import run as main

    main()
