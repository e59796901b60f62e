"""Human approval of an agent's tool calls, and what a message for a busy session does.

``agents[].approvals`` names the tools whose calls wait for a person: every call
(``approval: always``) or the calls whose arguments match a rule (``approval: rule``, a JSON
schema over the arguments). ``agents[].multitask`` says what a new message for a session whose
run is still going does. ``references`` checks the tool names against the agent's tools and the
rules as JSON schemas, each problem at its path. See docs/durability.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from agent_service.agentconfig.spec import Spec

Multitask = Literal["reject", "enqueue", "interrupt"]
"""``reject``: 409 while the session's run is going; ``enqueue``: the new run starts after it
ends; ``interrupt``: it is cancelled at its next step and the new run starts."""

TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class ToolApprovalSpec(Spec):
    """One gated tool, by the name the model calls it (``<server>__<tool>`` for MCP tools)."""

    tool: str = Field(
        pattern=TOOL_NAME_PATTERN, description="The tool's name as the model sees it."
    )
    approval: Literal["always", "rule"] = Field(
        default="always",
        description="`always`: every call waits for a person; `rule`: only calls whose "
        "arguments match `rule`.",
    )
    rule: dict[str, Any] | None = Field(
        default=None,
        description="A JSON schema over the call's arguments (an object): a call whose "
        "arguments are valid against it needs approval, e.g. `{properties: {amount: "
        "{exclusiveMinimum: 100}}, required: [amount]}`. Only with `approval: rule`.",
    )

    @model_validator(mode="after")
    def _rule_goes_with_approval(self) -> ToolApprovalSpec:
        if self.approval == "rule" and self.rule is None:
            raise ValueError("approval: rule needs a rule (a JSON schema over the arguments)")
        if self.approval == "always" and self.rule is not None:
            raise ValueError("a rule is only read with approval: rule")
        return self


class ApprovalsSpec(Spec):
    """Which of an agent's tool calls wait for a person's decision, and for how long."""

    tools: list[ToolApprovalSpec] = Field(
        default_factory=list, max_length=64, description="The gated tools (none: no approvals)."
    )
    timeout_seconds: float = Field(
        default=86_400.0,
        gt=0,
        le=30 * 86_400,
        description="How long a call waits for a decision (it holds no worker meanwhile).",
    )
    on_timeout: Literal["reject", "fail"] = Field(
        default="reject",
        description="At expiry: `reject` the call (the model is told it was not approved in "
        "time and goes on), or `fail` the task with error `approval_timeout`.",
    )

    def for_tool(self, name: str) -> ToolApprovalSpec | None:
        """The entry gating tool ``name``, if any."""
        for entry in self.tools:
            if entry.tool == name:
                return entry
        return None
