"""A dict-backed ToolRepository: fast, thread-safe, gone with the process."""

from __future__ import annotations

from toolrt.adapters.memory.counters import InMemoryCounters
from toolrt.adapters.memory.execution_log import InMemoryExecutionLog
from toolrt.adapters.memory.teams import InMemoryTeams
from toolrt.adapters.memory.tool_records import InMemoryToolRecords


class InMemoryToolRepository(InMemoryToolRecords, InMemoryExecutionLog, InMemoryTeams, InMemoryCounters):
    """Every storage port in dicts: tool records (with their references and search index),
    execution records, teams and counters, each under its own lock."""
