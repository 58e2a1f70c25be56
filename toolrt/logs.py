"""toolrt's loggers: standard ``logging`` under the ``toolrt`` name, silent until the application says otherwise.

A library must not decide where its logs go. Every toolrt logger is a small bound logger (so code can
``bind(tool_id=..., agent_id=...)`` and log key-value events) around a standard ``logging.Logger``
named ``toolrt.<module>``; no logging framework's global configuration is read or changed. A
``NullHandler`` on ``toolrt`` keeps everything silent (not even warnings reach stderr) until the
application configures ``logging``; a disabled level is dropped before any formatting, so logging
costs nothing on the hot path. Each record's message reads ``event key=value ...`` and the fields are
also on the record as ``record.toolrt`` (a dict, the event's name alone as ``record.toolrt_event``)
for structured handlers. The CLI and the MCP server log to stderr, rendered by structlog (see
``toolrt.adapters.cli.logs``).

Why not structlog's bound loggers in the library, which this mirrors: importing structlog brings
rich and asyncio with it (about 0.1 s on every ``import toolrt``), and a library needs only binding
and one formatting step. structlog renders where output is configured, in the applications, and is
imported only when the first record is written.

Why here, at the package root beside ``settings``: every layer but the domain logs (use cases,
adapters, the bootstrap), and logging is none of theirs. Under ``toolrt.application`` an adapter
had to reach into the application layer for a logger; here it depends on nothing of toolrt, and
import-linter keeps it the lowest layer (it imports no other toolrt module) and out of the domain.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["ROOT_LOGGER", "BoundLogger", "get_logger"]

ROOT_LOGGER = "toolrt"
logging.getLogger(ROOT_LOGGER).addHandler(logging.NullHandler())


def _text(value: Any) -> str:
    text = str(value)
    return repr(text) if not text or any(c.isspace() for c in text) else text


class BoundLogger:
    """A standard logger with context fields bound to it: ``log.bind(tool_id=...).info("event", key=value)``."""

    __slots__ = ("_context", "_logger")

    def __init__(self, logger: logging.Logger, context: dict[str, Any] | None = None) -> None:
        self._logger = logger
        self._context = context or {}

    def bind(self, **fields: Any) -> BoundLogger:
        """A logger that adds ``fields`` to every event (this one is unchanged)."""
        return BoundLogger(self._logger, {**self._context, **fields})

    def _log(self, level: int, event: str, fields: dict[str, Any], exc_info: Any = None) -> None:
        if not self._logger.isEnabledFor(level):
            return
        merged = {**self._context, **fields}
        exc_info = merged.pop("exc_info", exc_info)
        message = " ".join([event, *(f"{k}={_text(v)}" for k, v in merged.items())])
        # stacklevel 3: the record names the caller of info()/warning(), not this module.
        extra = {"toolrt": merged, "toolrt_event": event}
        self._logger.log(level, message, exc_info=exc_info or None, extra=extra, stacklevel=3)

    def debug(self, event: str, **fields: Any) -> None:
        """Log ``event`` at DEBUG."""
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log ``event`` at INFO."""
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log ``event`` at WARNING."""
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log ``event`` at ERROR."""
        self._log(logging.ERROR, event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """Log ``event`` at ERROR with the exception being handled."""
        self._log(logging.ERROR, event, fields, exc_info=True)


def get_logger(name: str) -> BoundLogger:
    """The logger for module ``name`` (pass ``__name__``): ``toolrt.<...>`` in standard logging."""
    if not name.startswith(ROOT_LOGGER):
        name = f"{ROOT_LOGGER}.{name}"
    return BoundLogger(logging.getLogger(name))
