"""The names agents see tools by: a tool's own name, or ``<qualifier>__<name>`` derived from its owner.

Rules (the same for every listing: MCP, ``tool_schemas``, ``dispatch``):

- ``__`` is reserved for the owner-qualified form: no tool may be registered, or renamed, with it
  in its own name (:func:`check_new_tool_name`). So a plain name never looks like a qualified one,
  and no agent can register a name another agent's tool may be shown as.
- The qualifier is derived from the owner's id alone (:func:`owner_qualifier`) and is different for
  different owners: an id that starts with a letter, of letters and digits joined by single ``_``
  (at most 32 characters), is its own qualifier; any other id (one with ``-``, say) becomes a
  readable prefix of letters, digits and ``_`` and ``_h`` with 16 hex digits of its SHA-256, a form
  no id is used as verbatim. So every name shown is an identifier in every framework: a letter,
  then letters, digits and ``_`` (a tool's own ``-`` is shown as ``_``: :func:`identifier`). A qualifier holds no ``__`` and does not
  end with ``_``, so the first ``__`` of a qualified name always ends the qualifier.
- Tools stored before the rule with ``__`` in their names keep working under their owners, and are
  always shown qualified, never under their own names.
"""

from __future__ import annotations

import hashlib
import re

from toolrt.domain.errors import ValidationError
from toolrt.domain.validation import Finding, Severity, ValidationReport

QUALIFIER_SEPARATOR = "__"
#: The longest owner id used verbatim as its qualifier.
MAX_PLAIN_QUALIFIER = 32
_PLAIN_OWNER = re.compile(rf"[A-Za-z](?:[A-Za-z0-9]|_(?=[A-Za-z0-9])){{0,{MAX_PLAIN_QUALIFIER - 1}}}")
_DIGEST_FORM = re.compile(r".*_h[0-9a-f]{16}")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def owner_qualifier(owner: str) -> str:
    """The qualifier of ``owner``'s tools: ``owner`` itself when it is plain, else a digest form.

    Different owners never share a qualifier (see the module docstring)."""
    if _PLAIN_OWNER.fullmatch(owner) and not _DIGEST_FORM.fullmatch(owner):
        return owner
    readable = _NOT_ALNUM.sub("_", owner).strip("_")[:12].strip("_")
    if not readable[:1].isalpha():  # a name starts with a letter
        readable = f"agent_{readable}".strip("_")[:12].strip("_")
    return f"{readable}_h{hashlib.sha256(owner.encode()).hexdigest()[:16]}"


def identifier(name: str) -> str:
    """``name`` as shown to models: a tool's name with ``-`` written ``_`` (frameworks take identifiers)."""
    return name.replace("-", "_")


def qualified_name(owner: str, name: str) -> str:
    """``name`` qualified by its owner: ``<owner_qualifier(owner)>__<name>``."""
    return f"{owner_qualifier(owner)}{QUALIFIER_SEPARATOR}{identifier(name)}"


def may_show_plain(name: str) -> bool:
    """False for a name holding the reserved ``__`` (a tool stored before the rule): shown qualified only."""
    return QUALIFIER_SEPARATOR not in name


def check_new_tool_name(name: str) -> None:
    """ValidationError when ``name`` may not be given to a new tool (or a renamed one): it holds ``__``
    as models are shown it (:func:`identifier`)."""
    if isinstance(name, str) and QUALIFIER_SEPARATOR in identifier(name):  # '--', '_-' are shown as '__'
        finding = Finding(
            "definition.name",
            Severity.ERROR,
            f"invalid tool name {name!r}: '__' is reserved for owner-qualified names (<owner>__<name>), "
            "and '--', '-_', '_-' are shown as '__'",
            hint="join words with a single '_' or '-', e.g. " + repr(re.sub("[-_]{2,}", "_", name)),
        )
        raise ValidationError(f"invalid tool definition {name!r}", ValidationReport((finding,)))
