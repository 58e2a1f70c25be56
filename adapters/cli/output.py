"""What makes values from the store inert in a terminal: control characters stripped, markup escaped.

The JSON shapes of results (``--json``) are ``toolrt.adapters.views``, shared with the MCP server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, RenderableType
from rich.markup import escape
from rich.segment import Segment

# C0 controls but tab and newline, DEL, and C1 controls: what a terminal may act on (cursor moves,
# screen clears, title and hyperlink sequences, 8-bit CSI) rather than show.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: object) -> str:
    """``text`` without C0/C1 control characters (tab and newline are kept)."""
    return _CONTROL.sub("", str(text))


def inert(text: object) -> str:
    """``text`` for a rich markup string: control characters stripped and markup escaped, so a value
    from the store (a name, an owner, a description, a tool's output) shows as written and does nothing."""
    return escape(strip_controls(text))


class InertConsole(Console):
    """A rich Console that writes no control character it did not make itself.

    Every text segment is stripped of C0/C1 control characters as it is rendered, whatever printed
    it (a table cell, a status line, a traceback); rich's own styling and cursor control are not in
    the text and stay. Markup in a value must still be escaped where markup is on (:func:`inert`).
    """

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        """Render as rich does, with each text segment stripped of control characters."""
        for segment in super().render(renderable, options):
            if segment.control is None and _CONTROL.search(segment.text):
                yield Segment(strip_controls(segment.text), segment.style)
            else:
                yield segment
