"""toolrt's loggers: standard ``logging`` under the ``toolrt`` name, silent until the application says otherwise.

A library must not decide where its logs go. Every toolrt logger is a structlog bound logger (so
code can ``bind(tool_id=..., agent_id=...)`` and log key-value events) wrapped around a standard
``logging.Logger`` named ``toolrt.<module>``, with its own processors: structlog's global
configuration, which belongs to the application, is neither read nor changed. A ``NullHandler`` on
``toolrt`` keeps everything silent (not even warnings reach stderr) until the application
configures ``logging``; a disabled level is dropped before any formatting, so logging costs nothing
on the hot path. Each record's message reads ``event key=value ...`` and the fields are also on the
record as ``record.toolrt`` (a dict) for structured handlers. The CLI and the MCP server log to
stderr.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["ROOT_LOGGER", "get_logger"]

ROOT_LOGGER = "toolrt"
logging.getLogger(ROOT_LOGGER).addHandler(logging.NullHandler())


def _text(value: Any) -> str:
    text = str(value)
    return repr(text) if not text or any(c.isspace() for c in text) else text


def _to_record(logger: Any, method: str, event: MutableMapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The last processor: one ``event key=value ...`` message, the fields kept on the record too."""
    name = str(event.pop("event", ""))
    exc_info = event.pop("exc_info", None)
    fields = dict(event)
    message = " ".join([name, *(f"{k}={_text(v)}" for k, v in fields.items())])
    kwargs: dict[str, Any] = {"extra": {"toolrt": fields}}
    if exc_info:
        kwargs["exc_info"] = exc_info
    return (message,), kwargs


_PROCESSORS: list[Any] = [structlog.stdlib.filter_by_level, _to_record]


def get_logger(name: str) -> Any:
    """The logger for module ``name`` (pass ``__name__``): ``toolrt.<...>`` in standard logging."""
    if not name.startswith(ROOT_LOGGER):
        name = f"{ROOT_LOGGER}.{name}"
    return structlog.wrap_logger(
        logging.getLogger(name), processors=_PROCESSORS, wrapper_class=structlog.stdlib.BoundLogger
    )
