"""Adapters: driven (memory, local, aws, validation) and driving (cli, mcp)."""
