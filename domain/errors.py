"""The toolrt error family: one base, one subclass per kind of failure a caller can act on."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toolrt.domain.validation import ValidationReport


class ToolRuntimeError(Exception):
    """Base of every error toolrt raises on purpose.

    ``retryable`` says whether trying the same thing again may help; ``user_error`` whether the
    caller can fix it by changing what it asked (the CLI's exit code 2, the MCP server's hint). Both
    are decided here, once, by the kind of error; no driving adapter decides them again.
    """

    retryable: bool = False
    user_error: bool = False


class ValidationError(ToolRuntimeError):
    """A tool definition, its code or call parameters broke a rule; ``report`` lists every finding."""

    user_error = True

    def __init__(self, message: str, report: ValidationReport | None = None) -> None:
        from toolrt.domain.validation import ValidationReport

        self.report = report if report is not None else ValidationReport()
        detail = self.report.summary()
        super().__init__(f"{message}: {detail}" if detail and detail not in message else message)

    def describe(self) -> str:
        """The message, then every finding of the report it does not already quote, each once."""
        text = str(self)
        rest = list(dict.fromkeys(str(f) for f in self.report.findings if str(f) not in text))
        return "\n".join([text, *rest])


class EgressDeniedError(ValidationError):
    """A tool asks for network access the runtime owner's egress policy does not permit.

    ``entries`` lists the refused ``host:port`` entries; nothing was stored.
    """

    def __init__(self, message: str, report: ValidationReport | None = None, entries: tuple[str, ...] = ()) -> None:
        self.entries = entries
        super().__init__(message, report)


class RegistrationError(ToolRuntimeError):
    """Registration failed after validation (for example the gateway refused); nothing was kept.

    ``retryable`` is given when the failure underneath was transient.
    """

    def __init__(self, message: str, *, tool_name: str = "", step: str = "", retryable: bool = False) -> None:
        self.tool_name = tool_name
        self.step = step
        self.retryable = retryable
        super().__init__(message)


class ExecutionError(ToolRuntimeError):
    """A tool could not be executed at all (as opposed to a tool that ran and failed)."""


class StorageError(ToolRuntimeError):
    """A store could not read or write; ``backend`` names it."""

    def __init__(self, message: str, *, backend: str = "") -> None:
        self.backend = backend
        super().__init__(f"{backend}: {message}" if backend else message)


class NotFoundError(ToolRuntimeError):
    """No such tool, version, artifact or execution."""

    user_error = True

    def __init__(self, kind: str, key: str, hint: str = "") -> None:
        self.kind = kind
        self.key = key
        self.hint = hint
        super().__init__(f"{kind} {key!r} not found" + (f"; {hint}" if hint else ""))


class OwnershipError(ToolRuntimeError):
    """The agent is not allowed to do this to a tool it does not own (or cannot see)."""

    user_error = True

    def __init__(self, agent_id: str, tool_id: str, action: str) -> None:
        self.agent_id = agent_id
        self.tool_id = tool_id
        self.action = action
        super().__init__(f"agent {agent_id!r} may not {action} tool {tool_id!r}")


class TeamMembershipError(OwnershipError):
    """The agent tried to share a tool with a team it does not belong to. Membership is the
    runtime owner's to grant (``rt.add_team_member`` / ``toolrt teams add``), never an agent's."""

    def __init__(self, agent_id: str, team: str) -> None:
        self.agent_id = agent_id
        self.tool_id = ""
        self.action = f"share tools with team {team!r}"
        self.team = team
        ToolRuntimeError.__init__(
            self,
            f"agent {agent_id!r} is not a member of team {team!r}, so it cannot share tools with it; "
            f"the runtime's owner adds members (toolrt teams add {team} {agent_id})",
        )


class ConflictError(ToolRuntimeError):
    """A concurrent change or a uniqueness rule won: re-read and try again, or pick another name."""

    user_error = True


class LimitExceededError(ToolRuntimeError):
    """A request asked for more than the configured maxima (size, timeout, memory, ...)."""

    user_error = True


class TransientError(ToolRuntimeError):
    """A backend failed in a way that may pass (throttling, a 5xx, a busy database): retry later."""

    retryable = True


class MissingDependencyError(ToolRuntimeError):
    """An optional part of toolrt is not installed: the message names the extra that brings it."""

    user_error = True

    def __init__(self, feature: str, module: str, extra: str) -> None:
        self.feature = feature
        self.module = module
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional package {module!r}, which is not installed: pip install 'toolrt[{extra}]'"
        )
