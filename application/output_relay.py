"""Hands a tool's stdout and stderr to the caller's ``on_output`` as the call runs, and the rest at its end.

Sandboxes that can stream (the local Python and Node workers) call the relay as the tool prints;
the others never do. When the call ends the relay delivers whatever part of the final, bounded
stdout and stderr the callback has not seen yet, so every sandbox honours ``on_output`` and the
callback always sees exactly the text that the execution records, in order.
"""

from __future__ import annotations

import threading

from toolrt.logs import get_logger
from toolrt.ports import OutputCallback

log = get_logger(__name__)


class OutputRelay:
    """An ``on_output`` for one call; :meth:`finish` completes what streaming did not deliver."""

    def __init__(self, callback: OutputCallback) -> None:
        self._callback: OutputCallback | None = callback
        self._sent = {"stdout": 0, "stderr": 0}
        self._lock = threading.Lock()

    def __call__(self, stream: str, text: str) -> None:
        with self._lock:
            if stream not in self._sent or not text:
                return
            self._sent[stream] += len(text)
            self._deliver(stream, text)

    def finish(self, stdout: str, stderr: str) -> None:
        """Deliver the part of the final streams the callback has not had (all of it if nothing streamed)."""
        with self._lock:
            for stream, text in (("stdout", stdout), ("stderr", stderr)):
                rest = text[self._sent[stream] :]
                self._sent[stream] = max(self._sent[stream], len(text))
                if rest:
                    self._deliver(stream, rest)

    def _deliver(self, stream: str, text: str) -> None:
        if self._callback is None:
            return
        try:
            self._callback(stream, text)
        except Exception as exc:  # the caller's code must not fail the call or lose its record
            log.warning("on_output callback failed; not called again for this call", error=str(exc))
            self._callback = None
