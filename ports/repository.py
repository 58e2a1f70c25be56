"""The tool repository: every storage port at once, as one store (memory, SQLite, DynamoDB) offers them.

The core depends on the small ports (:class:`ToolRecords`, :class:`CodeReferences`,
:class:`SearchIndex`, :class:`ExecutionLog`, :class:`Teams`, :class:`Counters`); use cases take the
ones they need. ``ToolRepository`` is their union as a Protocol, kept as a convenience:

- A store that keeps everything in one place satisfies it unchanged, so the wiring that passes one
  repository around (``RuntimePorts.repository``, the container, ``isinstance`` checks) keeps working.
- Some promises span capabilities and only one store can keep them: the search index and the code
  references change in the record's own transaction, and the change marker moves with team
  memberships as well as tool records. A union Protocol says "one object"; an aggregate of separate
  objects would suggest they could come from different stores.
- Wiring the ports from different objects is the composition root's job, not this Protocol's.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from toolrt.ports.code_references import CodeReferences
from toolrt.ports.counters import Counters
from toolrt.ports.execution_log import ExecutionLog
from toolrt.ports.search_index import SearchIndex
from toolrt.ports.teams import Teams
from toolrt.ports.tool_records import ToolRecords


@runtime_checkable
class ToolRepository(ToolRecords, CodeReferences, SearchIndex, ExecutionLog, Teams, Counters, Protocol):
    """Every storage port in one store (``toolrt.contracts.ToolRepositoryContract`` checks them all,
    and what holds across them)."""
