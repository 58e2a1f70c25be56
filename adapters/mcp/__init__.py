"""The MCP server: every visible tool as an MCP tool, plus management tools."""
