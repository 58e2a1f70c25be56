"""The schema of the local store's SQLite file: its migrations, in order."""

from __future__ import annotations

# Each step moves the schema from version i to i + 1 (``PRAGMA user_version``). Steps are append-only:
# never edit a released step, add a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # The tool itself is the JSON body; the other columns are copies kept for indexes and filters.
        """CREATE TABLE tools (
            tool_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            visibility TEXT NOT NULL,
            description TEXT NOT NULL,
            code_hash TEXT NOT NULL,
            record_version INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            body TEXT NOT NULL
        )""",
        # The database itself refuses two active tools of one owner with one name.
        "CREATE UNIQUE INDEX tools_active_name ON tools (owner, name) WHERE status = 'active'",
        "CREATE INDEX tools_by_owner ON tools (owner, status, name, tool_id)",
        "CREATE INDEX tools_by_name ON tools (name, tool_id)",
        "CREATE INDEX tools_by_status ON tools (status, name, tool_id)",
        "CREATE INDEX tools_by_visibility ON tools (visibility, status, name, tool_id)",
        "CREATE INDEX tools_by_code_hash ON tools (code_hash)",
        # Every code hash in each tool's history, written in the same transaction as the record.
        # An active tool references all of its rows here; an inactive tool none (see references()).
        """CREATE TABLE code_refs (
            code_hash TEXT NOT NULL,
            tool_id TEXT NOT NULL REFERENCES tools (tool_id) ON DELETE CASCADE,
            PRIMARY KEY (code_hash, tool_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX code_refs_by_tool ON code_refs (tool_id)",
        # Tags of the current version, for ToolQuery.tag.
        """CREATE TABLE tool_tags (
            tag TEXT NOT NULL,
            tool_id TEXT NOT NULL REFERENCES tools (tool_id) ON DELETE CASCADE,
            PRIMARY KEY (tag, tool_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX tool_tags_by_tool ON tool_tags (tool_id)",
        """CREATE TABLE executions (
            execution_id TEXT PRIMARY KEY,
            tool_id TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            body TEXT NOT NULL
        )""",
        "CREATE INDEX executions_by_tool ON executions (tool_id, created_at)",
    ),
    (
        # The search index (see search()): analyzed terms of each active tool's fields, written in
        # the same transaction as the record (rowid = tools.rowid). Public tools go to one FTS5 table;
        # the others to a second one whose "scope" column holds a token naming the owner, so an
        # agent's own tools are found (and counted, for its statistics) with `scope:token AND ...`
        # without reading anyone else's. fts5vocab counts documents per term. Nothing here ever
        # holds an inactive tool.
        "CREATE VIRTUAL TABLE search_public USING fts5(name, description, params, tags,"
        " tokenize = 'unicode61 remove_diacritics 0')",
        "CREATE VIRTUAL TABLE search_public_vocab USING fts5vocab(search_public, 'row')",
        "CREATE VIRTUAL TABLE search_private USING fts5(scope, name, description, params, tags,"
        " tokenize = 'unicode61 remove_diacritics 0')",
        # Count and per-field term totals of the indexed documents, per scope ('public' or an owner's
        # token), for BM25's average length.
        """CREATE TABLE search_totals (
            scope TEXT PRIMARY KEY,
            documents INTEGER NOT NULL,
            name INTEGER NOT NULL,
            description INTEGER NOT NULL,
            params INTEGER NOT NULL,
            tags INTEGER NOT NULL
        )""",
    ),
    (
        # Teams: a tool shared with a team names it here (NULL for every other visibility), and the
        # membership the runtime's owner manages. Team tools are indexed for search in
        # search_private with two scope tokens, the owner's and the team's, so that one MATCH on
        # either finds them once; search_totals rows say which owner and team they count.
        "ALTER TABLE tools ADD COLUMN team TEXT",
        "CREATE INDEX tools_by_team ON tools (team, status, name, tool_id) WHERE team IS NOT NULL",
        """CREATE TABLE team_members (
            team TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            PRIMARY KEY (team, agent_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX team_members_by_agent ON team_members (agent_id, team)",
        "ALTER TABLE search_totals ADD COLUMN owner TEXT",
        "ALTER TABLE search_totals ADD COLUMN team TEXT",
        "UPDATE search_totals SET owner = scope WHERE scope != 'public'",
        # The caller as a column, so that usage (distinct callers) is counted by SQL.
        "ALTER TABLE executions ADD COLUMN caller TEXT",
        "UPDATE executions SET caller = json_extract(body, '$.caller')",
    ),
    (
        # Fleet figures (execution_summary) are aggregated by SQL over a time window: the fields they
        # group and sort by are columns (copies of the body's, written with it), and created_at is
        # indexed. created_min is whole minutes since the epoch (UTC).
        "ALTER TABLE executions ADD COLUMN created_min INTEGER",
        "ALTER TABLE executions ADD COLUMN version INTEGER",
        "ALTER TABLE executions ADD COLUMN wall_ms REAL",
        "ALTER TABLE executions ADD COLUMN error_type TEXT",
        "ALTER TABLE executions ADD COLUMN isolation TEXT",
        "UPDATE executions SET created_min = CAST(strftime('%s', created_at) AS INTEGER) / 60,"
        " version = json_extract(body, '$.version'), wall_ms = json_extract(body, '$.metrics.wall_ms'),"
        " error_type = json_extract(body, '$.error.type'), isolation = json_extract(body, '$.metrics.isolation')",
        # Covering indexes: a window's aggregates (execution_summary), one tool's outcomes, usage
        # and history are read from the index alone, never from the rows and their bodies. The
        # second one starts as executions_by_tool did, which it replaces.
        # Both lead with (created_at, execution_id), the order of history listings, so that a page
        # of a busy tool's history reads its first rows without sorting the others.
        "CREATE INDEX executions_by_time ON executions (created_at, execution_id, status, tool_id, caller,"
        " created_min, version, wall_ms, error_type, isolation)",
        "CREATE INDEX executions_by_tool_time ON executions (tool_id, created_at, execution_id, status, version,"
        " wall_ms, error_type, created_min, caller, isolation)",
        "DROP INDEX executions_by_tool",
        # Counters no record holds (registrations, artifact cache, refusals): a total per minute,
        # name and dimensions, added to by every process on this file.
        """CREATE TABLE counters (
            minute INTEGER NOT NULL,
            name TEXT NOT NULL,
            dimensions TEXT NOT NULL,
            value INTEGER NOT NULL,
            PRIMARY KEY (minute, name, dimensions)
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
SEARCH_SCHEMA = 2  # the first schema version with the search index
