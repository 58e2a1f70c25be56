"""How the command line (and the MCP server it starts) writes toolrt's logs: stderr, rendered by structlog.

The library only logs through standard ``logging`` (``toolrt.logs``); an application
decides where records go and how they read. The CLI renders them with structlog's standard-library
integration (``structlog.stdlib.ProcessorFormatter``): ``TOOLRT_LOG_FORMAT=text`` (the default)
gives ``2026-12-07T10:00:00Z [info     ] tool executed  agent_id=... tool_id=...`` lines for people,
``json`` one JSON object per line for log shippers (``toolrt serve`` under a process manager).
structlog is imported when the first record is written, not when the CLI starts: most commands
write none, and importing it costs about 0.1 s.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

from toolrt.adapters.cli.output import strip_controls
from toolrt.logs import ROOT_LOGGER

__all__ = ["LOG_FORMATS", "configure", "log_format"]

LOG_FORMATS = ("text", "json")


def log_format() -> str:
    """The format ``TOOLRT_LOG_FORMAT`` names (``text`` when unset); a clear error for anything else."""
    chosen = os.environ.get("TOOLRT_LOG_FORMAT", "text").strip().lower() or "text"
    if chosen not in LOG_FORMATS:
        raise ValueError(f"TOOLRT_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {chosen!r}")
    return chosen


def _inert(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """Strip terminal control characters from every value: names, errors and ids may come from agents."""
    return {key: strip_controls(value) if isinstance(value, str) else value for key, value in event_dict.items()}


def _toolrt_fields(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Put a toolrt record's own event name and fields in place of its pre-formatted message."""
    record = event_dict.get("_record")
    fields = getattr(record, "toolrt", None)
    if isinstance(fields, dict):
        event_dict["event"] = getattr(record, "toolrt_event", event_dict.get("event"))
        for key, value in fields.items():
            event_dict.setdefault(key, value)
    return event_dict


class StructlogFormatter(logging.Formatter):
    """A formatter that builds structlog's ``ProcessorFormatter`` on its first record."""

    def __init__(self, fmt: str = "text") -> None:
        super().__init__()
        self._format = fmt
        self._inner: logging.Formatter | None = None

    def _build(self) -> logging.Formatter:
        import structlog

        renderer: Any = (
            structlog.processors.JSONRenderer(sort_keys=False)
            if self._format == "json"
            else structlog.dev.ConsoleRenderer(
                colors=False, pad_event_to=0, exception_formatter=structlog.dev.plain_traceback
            )
        )
        return structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                _toolrt_fields,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info if self._format == "json" else _inert,
                renderer,
            ],
        )

    def format(self, record: logging.LogRecord) -> str:
        """The record rendered as one line (with its traceback, if any)."""
        if self._inner is None:
            self._inner = self._build()
        return self._inner.format(record)


def configure(level: int, fmt: str = "text") -> None:
    """Send toolrt's records at ``level`` and above to stderr, rendered as ``fmt`` (idempotent).

    Only toolrt's own loggers are set up: the CLI is an application, but the libraries under it keep
    their defaults. stderr, because stdout carries results (and the MCP stdio protocol).
    """
    logger = logging.getLogger(ROOT_LOGGER)
    for handler in list(logger.handlers):
        if getattr(handler, "toolrt_cli", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(StructlogFormatter(fmt))
    handler.toolrt_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
