"""Approvals as pure decisions (which calls are gated, what a decision means) and as config
(every problem at its path); the simulator's request counts; ``submit``'s retries."""

from __future__ import annotations

from typing import Any

import pytest

from agent_service.agent.approvals import ApprovalPolicy, apply_decision
from agent_service.agentconfig.approvals import ApprovalsSpec
from agent_service.agentconfig.load import ConfigError, parse_agent_config
from agent_service.domain.approvals import ApprovalDecision
from agent_service.domain.errors import AgentError, ErrorType
from agent_service.sim.conversations import ConversationCounter, conversation_id
from agent_service.submit import Client, SubmitError, submit

ABOVE_100 = {"properties": {"amount": {"exclusiveMinimum": 100}}, "required": ["amount"]}
POLICY = ApprovalPolicy(
    ApprovalsSpec.model_validate(
        {
            "tools": [
                {"tool": "refund"},
                {"tool": "transfer", "approval": "rule", "rule": ABOVE_100},
            ]
        }
    )
)


@pytest.mark.parametrize(
    ("tool", "arguments", "gated"),
    [
        ("refund", {}, True),
        ("refund", {"amount": 1}, True),
        ("transfer", {"amount": 500}, True),
        ("transfer", {"amount": 100}, False),
        # JSON schema: exclusiveMinimum ignores strings, so "lots" matches: it waits (fail-safe)
        ("transfer", {"amount": "lots"}, True),
        ("transfer", {}, False),
        ("calculator", {"expression": "1+1"}, False),
    ],
)
def test_which_calls_are_gated(tool: str, arguments: dict[str, Any], gated: bool) -> None:
    assert POLICY.gates(tool, arguments) is gated


def test_an_agent_without_gated_tools_needs_no_journal() -> None:
    assert not ApprovalPolicy(ApprovalsSpec()).enabled
    assert POLICY.enabled and POLICY.tools == ("refund", "transfer")


def _decision(decision: str, **fields: Any) -> ApprovalDecision:
    return ApprovalDecision.model_validate({"approval_id": "a", "decision": decision, **fields})


@pytest.mark.parametrize(
    ("decision", "arguments", "refusal"),
    [
        (_decision("approve"), {"amount": 5}, None),
        (_decision("approve", arguments={"amount": 1}), {"amount": 1}, None),
        (_decision("reject"), None, "rejected it. It was not made"),
        (_decision("reject", comment="no"), None, "rejected it: no. It was not made"),
        (_decision("timeout", timeout_seconds=90), None, "not approved within 90 s"),
    ],
)
def test_what_a_decision_means(
    decision: ApprovalDecision, arguments: dict[str, Any] | None, refusal: str | None
) -> None:
    outcome = apply_decision(decision, "refund", {"amount": 5})
    assert outcome.arguments == arguments
    if refusal is None:
        assert outcome.refusal is None
    else:
        assert outcome.refusal is not None and outcome.refusal.startswith("error: ")
        assert refusal in outcome.refusal


def test_an_expiry_fails_the_run_when_the_agent_says_so() -> None:
    with pytest.raises(AgentError) as failed:
        apply_decision(_decision("timeout", on_timeout="fail", timeout_seconds=5), "refund", {})
    assert failed.value.type == ErrorType.APPROVAL_TIMEOUT


CONFIG = """
defaultModel: m
models: [{name: m, model: openai/m}]
tools: {http: [{name: refund, description: d, url: "http://x"}]}
mcpServers: [{name: orders, url: "http://x/mcp"}]
agents:
  - name: a
    tools: {calculator: true, http: [refund], mcp: [{server: orders, exclude: [drop]}]}
    approvals:
      tools:
%s
"""


@pytest.mark.parametrize(
    ("entries", "path", "message"),
    [
        ("        - {tool: current_time}", "tools[0].tool", "'current_time' is not one"),
        ("        - {tool: nope}", "tools[0].tool", "its tools: calculator, refund, orders__*"),
        ("        - {tool: orders__drop}", "tools[0].tool", "filtered out of MCP server 'orders'"),
        ("        - {tool: other__x}", "tools[0].tool", "'other__x' is not one"),
        (
            "        - {tool: refund}\n        - {tool: refund}",
            "tools[1].tool",
            "duplicate gated tool name 'refund'",
        ),
        (
            "        - {tool: refund, approval: rule, rule: {type: 12}}",
            "tools[0].rule",
            "not a valid JSON schema",
        ),
        ("        - {tool: refund, approval: rule}", "tools[0]", "needs a rule"),
        ("        - {tool: refund, rule: {}}", "tools[0]", "only read with approval: rule"),
    ],
)
def test_config_problems_are_reported_at_their_path(entries: str, path: str, message: str) -> None:
    with pytest.raises(ConfigError) as failed:
        parse_agent_config(CONFIG % entries)
    [(where, reason)] = failed.value.errors
    assert where == f"agents[0].approvals.{path}"
    assert message in reason


def test_gated_tools_of_every_kind_are_accepted() -> None:
    entries = "\n".join(
        f"        - {{tool: {t}}}" for t in ("calculator", "refund", "orders__lookup")
    )
    config = parse_agent_config(CONFIG % entries)
    assert [t.tool for t in config.profiles()["a"].approvals.tools] == [
        "calculator", "refund", "orders__lookup",
    ]  # fmt: skip


def test_the_simulator_counts_requests_per_conversation_and_repeats() -> None:
    counter = ConversationCounter(max_conversations=2)
    first = [{"role": "system", "content": "s"}, {"role": "user", "content": "hello"}]
    later = [*first, {"role": "assistant", "content": "hi"}, {"role": "user", "content": "more"}]
    key = counter.count(first)
    assert key == conversation_id("hello")
    counter.count(later)
    counter.count(first)  # the first step again
    view = counter.view()[key]
    assert (view["requests"], view["distinct"], view["repeated"]) == (3, 2, 1)
    assert view["by_messages"] == {"2": 2, "4": 1}
    counter.count([{"role": "user", "content": "b"}])
    counter.count([{"role": "user", "content": "c"}])
    assert key not in counter.view()  # the oldest is forgotten beyond the bound


class FlakyClient(Client):
    """Answers the scripted (status, body) pairs, or raises for ``None``."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]] | None]) -> None:
        super().__init__("http://api", None)
        object.__setattr__(self, "answers", answers)
        object.__setattr__(self, "sent", [])

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, **headers: str
    ) -> tuple[int, dict[str, Any]]:
        self.sent.append(headers)  # type: ignore[attr-defined]
        answer = self.answers.pop(0)  # type: ignore[attr-defined]
        if answer is None:
            raise SubmitError(3, "cannot reach http://api")
        return answer  # type: ignore[no-any-return]


def test_submit_retries_only_when_an_idempotency_key_makes_it_safe() -> None:
    sleeps: list[float] = []
    keyed = FlakyClient([None, (503, {}), (202, {"task_id": "t1"})])
    assert submit(keyed, {"message": "x"}, "k1", sleeps.append) == "t1"
    assert [h["Idempotency-Key"] for h in keyed.sent] == ["k1"] * 3  # type: ignore[attr-defined]
    assert sleeps == [0.5, 1.0]
    unkeyed = FlakyClient([(503, {"error": {"type": "dependency_unavailable", "message": "m"}})])
    with pytest.raises(SubmitError) as failed:
        submit(unkeyed, {"message": "x"}, None, sleeps.append)
    assert failed.value.code == 3 and "dependency_unavailable" in str(failed.value)
    refused = FlakyClient([(404, {"error": {"type": "not_found", "message": "agent"}})])
    with pytest.raises(SubmitError) as failed:
        submit(refused, {"message": "x"}, "k2", sleeps.append)
    assert failed.value.code == 2
