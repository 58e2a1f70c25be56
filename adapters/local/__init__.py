"""Local adapters: SQLite repository, file artifact store, bubblewrap/subprocess sandbox."""
