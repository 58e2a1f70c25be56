"""toolrt: a dynamic tool runtime for AI agents."""
