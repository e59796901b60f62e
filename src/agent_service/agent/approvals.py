"""Which tool calls wait for a person, and what a decision means to the run: pure decisions.

The agent loop asks ``ApprovalPolicy.gates`` before each fresh tool call of an agent with
``approvals``; a gated call with no decision yet makes the loop raise ``ApprovalPending``. When
the run resumes, ``apply_decision`` turns the person's decision into what the loop does: call
the tool (with the approver's arguments, if given) or tell the model why it was not called.
Table-tested in tests/unit/test_approvals.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from agent_service.agentconfig.approvals import ApprovalsSpec
from agent_service.domain.approvals import ApprovalDecision
from agent_service.domain.errors import AgentError, ErrorType


class ApprovalPolicy:
    """An agent's gated tools (``agents[].approvals``), with their rules compiled once."""

    def __init__(self, spec: ApprovalsSpec) -> None:
        self.spec = spec
        self._rules: dict[str, Validator | None] = {
            entry.tool: _compile(entry.rule) if entry.rule is not None else None
            for entry in spec.tools
        }

    @property
    def enabled(self) -> bool:
        """Whether any tool is gated (runs of other agents need no journal for approvals)."""
        return bool(self._rules)

    @cached_property
    def tools(self) -> tuple[str, ...]:
        return tuple(self._rules)

    def gates(self, tool: str, arguments: Mapping[str, Any]) -> bool:
        """Whether a call of ``tool`` with ``arguments`` needs a person's approval: every call
        of an ``always`` tool, and the calls whose arguments are valid against a ``rule``."""
        if tool not in self._rules:
            return False
        rule = self._rules[tool]
        return rule is None or rule.is_valid(dict(arguments))


def _compile(schema: dict[str, Any]) -> Validator:
    cls = validator_for(schema, default=Draft202012Validator)
    validator: Validator = cls(schema)
    return validator


@dataclass(frozen=True)
class Outcome:
    """What the loop does with a decided call: ``arguments`` to call the tool with, or the
    ``refusal`` the model reads instead (the tool is not called)."""

    arguments: dict[str, Any] | None = None
    refusal: str | None = None


def apply_decision(decision: ApprovalDecision, tool: str, arguments: dict[str, Any]) -> Outcome:
    """The outcome of ``decision`` on a call of ``tool`` the model made with ``arguments``.

    Raises ``AgentError(approval_timeout)`` when nobody decided in time and the agent is set to
    fail then.
    """
    if decision.decision == "approve":
        chosen = decision.arguments if decision.arguments is not None else arguments
        return Outcome(arguments=dict(chosen))
    if decision.decision == "reject":
        why = f": {decision.comment}" if decision.comment else ""
        return Outcome(
            refusal=f"error: a person reviewing this call of {tool} rejected it{why}. "
            "It was not made; do not call it again for this request."
        )
    waited = f"{decision.timeout_seconds:g} s"
    if decision.on_timeout == "fail":
        raise AgentError(
            ErrorType.APPROVAL_TIMEOUT, f"the call of {tool!r} was not approved within {waited}"
        )
    return Outcome(
        refusal=f"error: this call of {tool} was not approved within {waited}, so it was not made."
    )
