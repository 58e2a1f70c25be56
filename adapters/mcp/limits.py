"""The MCP server's limits per agent and the rule for agent tokens (no mcp SDK needed to read them)."""

from __future__ import annotations

from collections.abc import Mapping

from toolrt.domain import ValidationError

#: The shortest agent token accepted (as for operator tokens): guessing one must be hopeless.
MIN_TOKEN_CHARS = 16
#: Default limits: open sessions and subscriptions/listen streams per agent, and how long a session
#: may go without any request in flight (or an open GET stream) before it ends.
SESSIONS_PER_AGENT = 32
LISTENS_PER_AGENT = 8
SESSION_IDLE_MINUTES = 10.0
#: Listen streams of all agents together when no tokens are configured (any caller names any agent).
LISTENS_WITHOUT_TOKENS = 1024


def check_agent_tokens(tokens: Mapping[str, str]) -> None:
    """ValidationError naming the agent when a token is shorter than MIN_TOKEN_CHARS (or holds
    whitespace), or an agent id is empty; the token itself is never repeated."""
    for token, agent in tokens.items():
        if not isinstance(agent, str) or not agent.strip():
            raise ValidationError("every agent token needs an agent id: --token TOKEN=AGENT")
        if not isinstance(token, str) or len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
            raise ValidationError(
                f"the token for agent {agent!r} is too weak: agent tokens must be at least {MIN_TOKEN_CHARS} "
                "characters without spaces; let `toolrt serve --new-token AGENT` make one"
            )
