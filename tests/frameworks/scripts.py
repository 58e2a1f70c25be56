"""What every framework's scripted model does, and what the matrix expects it to see."""

from __future__ import annotations

import time
from typing import Any

# Each step: the tool the scripted model calls, its arguments, and what the model must then be told.
CALL_ADD = ("add", {"a": 2, "b": 3})
BAD_ADD = ("add", {"a": "two", "b": 3})
FAIL = ("boom", {"reason": "kaput"})
PRINT = ("chatty", {"text": "hi"})

# toolrt's own words for arguments that break the schema (never an ExceptionGroup or "internal error").
BAD_ARGUMENTS_SAY = "'two' is not of type 'integer'"
FAILURE_SAYS = "ValueError: kaput"
TOOLRT_OWN = {"search_tools", "manage_tools"}
AGENTS_OWN = {"add", "boom", "chatty"}


def toolrts_own(names: Any) -> set[str]:
    """The listed names that are neither the agent's tools nor a tool registered mid-session (double_*)."""
    return {n for n in names if n not in AGENTS_OWN and not n.startswith("double_")}


def plain_text(value: Any) -> str:
    """Whatever a framework hands its model as a tool's output, as one string."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return " ".join(plain_text(v) for v in value)
    if isinstance(value, dict):  # a content block ({"type": "text", "text": ...}) reads as its text
        if isinstance(value.get("text"), str):
            return str(value["text"])
        return " ".join(f"{k} {plain_text(v)}" for k, v in value.items())
    return str(value)


def wait_until(predicate: Any, timeout_s: float = 30.0, interval_s: float = 0.25) -> Any:
    """Poll ``predicate`` until it returns something true (the store watcher hears a change within seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval_s)
