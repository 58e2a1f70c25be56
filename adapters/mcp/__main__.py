"""``python -m toolrt.adapters.mcp [global options]``: serve toolrt over MCP on stdio (same as ``toolrt ... serve``)."""

import sys

from toolrt.adapters.cli.main import build_app

build_app(configure_logging=True)(args=[*sys.argv[1:], "serve"], prog_name="python -m toolrt.adapters.mcp")
