"""The agent loop with a step journal and gated tools, against fakes: what is recorded, what a
resumed run replays instead of calling, idempotency keys, pauses and decisions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from agent_service.agent.journal import MemoryJournal
from agent_service.agent.loop import RunFailedError
from agent_service.agent.tools.calculator import CalculatorTool
from agent_service.agentconfig.model import AgentConfig, ModelSpec
from agent_service.domain.approvals import ApprovalDecision, ApprovalPending
from agent_service.domain.errors import ErrorType
from agent_service.domain.journal import JournalEntry
from agent_service.domain.messages import ChatMessage
from agent_service.domain.runs import RunEvent, RunRequest
from tests.unit.fakes import (
    EchoTool,
    GuardFake,
    MemoryFake,
    ScriptedLLM,
    make_agent,
    text,
    tool_calls,
)


class Journal(MemoryJournal):
    """A task's journal as a resumed attempt sees it: earlier entries, decisions, keys."""

    def __init__(
        self,
        entries: Sequence[JournalEntry] = (),
        decisions: Mapping[int, ApprovalDecision] | None = None,
    ) -> None:
        super().__init__()
        self._entries.extend(entries)
        self._decided = dict(decisions or {})

    @property
    def decisions(self) -> Mapping[int, ApprovalDecision]:
        return self._decided

    def idempotency_key(self, step: int) -> str:
        return f"task-1:{step}"


def config(approvals: dict[str, Any] | None = None, calculator: bool = False) -> AgentConfig:
    agent: dict[str, Any] = {"name": "a", "tools": {"calculator": calculator}}
    if approvals is not None:
        agent["approvals"] = approvals
    return AgentConfig.model_validate(
        {
            "defaultModel": "m1",
            "models": [ModelSpec(name="m1", model="openai/m1").model_dump()],
            "agents": [agent],
        }
    )


GATED = {"tools": [{"tool": "calculator"}], "timeoutSeconds": 60}
RULE = {
    "tools": [
        {
            "tool": "calculator",
            "approval": "rule",
            "rule": {
                "properties": {"expression": {"pattern": "\\*\\*"}},
                "required": ["expression"],
            },
        }
    ]
}


def with_calculator(approvals: dict[str, Any] | None) -> AgentConfig:
    return config(approvals, calculator=True)


CALCULATOR = {"calculator": CalculatorTool()}


async def _events(agent: Any, request: RunRequest, journal: Journal) -> tuple[Any, list[RunEvent]]:
    events: list[RunEvent] = []

    async def sink(event: RunEvent) -> None:
        events.append(event)

    guard = GuardFake()
    result = await agent.run(request, mode="async", sink=sink, guard=guard, journal=journal)
    return (result, guard), events


async def test_every_step_is_journaled_before_the_next_and_tools_get_their_key() -> None:
    tool = EchoTool()
    llm = ScriptedLLM([tool_calls(("echo", '{"x": 1}'), ("echo", '{"x": 2}')), "done"])
    journal = Journal()
    agent = make_agent(config(), llm, {"echo": tool})
    result = await agent.run(RunRequest(message="go"), journal=journal)
    assert [(e.kind, e.step.index) for e in journal.entries] == [
        ("llm", 0), ("tool", 1), ("tool", 2), ("llm", 3),
    ]  # fmt: skip
    first = journal.entries[0]
    assert first.completion is not None and [c.name for c in first.completion.tool_calls] == [
        "echo", "echo",
    ]  # fmt: skip
    assert [e.output for e in journal.entries[1:3]] == ["echo:{'x': 1}", "echo:{'x': 2}"]
    assert tool.keys == ["task-1:1", "task-1:2"]
    assert [s.model_dump() for s in result.steps] == [e.step.model_dump() for e in journal.entries]


async def test_a_resumed_run_replays_the_journal_and_calls_only_what_is_missing() -> None:
    first_tool = EchoTool()
    llm = ScriptedLLM([tool_calls(("echo", '{"x": 1}'), ("echo", '{"x": 2}')), "done"])
    recorded = Journal()
    await make_agent(config(), llm, {"echo": first_tool}).run(
        RunRequest(message="go"), journal=recorded
    )
    # The worker died after the first tool call: the journal holds the LLM step and one call.
    resumed = Journal(recorded.entries[:2])
    tool = EchoTool()
    llm_again = ScriptedLLM(["done again"])
    (result, guard), events = await _events(
        make_agent(config(), llm_again, {"echo": tool}), RunRequest(message="go"), resumed
    )
    assert tool.calls == [{"x": 2}] and tool.keys == ["task-1:2"]  # only the missing call
    assert len(llm_again.calls) == 1  # only the answer: the first LLM step was replayed
    # The conversation was rebuilt as it was: the first call's result is in it.
    sent = llm_again.calls[0]
    assert [m.role for m in sent] == ["system", "user", "assistant", "tool", "tool"]
    assert sent[3].content == "echo:{'x': 1}" and sent[4].content == "echo:{'x': 2}"
    assert result.answer == "done again"
    assert [s.index for s in result.steps] == [0, 1, 2, 3]
    assert result.usage.total_tokens == 30  # both LLM steps, the replayed one included
    # Replayed steps are neither emitted again nor charged again.
    assert [e.data["index"] for e in events if e.type == "step"] == [2, 3]
    assert len(guard.charged) == 1


async def test_the_first_entry_pins_the_session_memory_the_run_began_with() -> None:
    memory = MemoryFake()
    memory.turns["default:s1"] = [
        ChatMessage(role="user", content="my name is Ada"),
        ChatMessage(role="assistant", content="hello Ada"),
    ]
    journal = Journal()
    agent = make_agent(config(), ScriptedLLM(["hi"]), {}, memory=memory)
    await agent.run(RunRequest(message="who am I?", session_id="s1"), journal=journal)
    pinned = journal.entries[0].history
    assert pinned is not None and [m.content for m in pinned] == ["my name is Ada", "hello Ada"]
    # The session moved on meanwhile: a resumed run still sees the memory it began with.
    memory.turns["default:s1"] = [ChatMessage(role="user", content="something else")]
    llm = ScriptedLLM([tool_calls(("echo", "{}")), "fine"])
    first = Journal()
    await make_agent(config(), llm, {"echo": EchoTool()}, memory=MemoryFake()).run(
        RunRequest(message="x", session_id="s2"), journal=first
    )
    resumed = Journal(
        [journal.entries[0].model_copy(update={"completion": first.entries[0].completion})]
    )
    llm_again = ScriptedLLM(["answer"])
    await make_agent(config(), llm_again, {"echo": EchoTool()}, memory=memory).run(
        RunRequest(message="who am I?", session_id="s1"), journal=resumed
    )
    assert [m.content for m in llm_again.calls[0][1:3]] == ["my name is Ada", "hello Ada"]


async def test_a_gated_call_pauses_the_run_with_what_a_reviewer_needs() -> None:
    llm = ScriptedLLM([tool_calls(("calculator", '{"expression": "2+2"}'))])
    llm.script[0] = llm.script[0].model_copy(update={"content": "I will add them."})
    journal = Journal()
    agent = make_agent(with_calculator(GATED), llm, CALCULATOR)
    with pytest.raises(ApprovalPending) as paused:
        await agent.run(RunRequest(message="add"), journal=journal)
    request = paused.value.request
    assert (request.step, request.tool, request.arguments) == (
        1,
        "calculator",
        {"expression": "2+2"},
    )
    assert request.reasoning == "I will add them."
    assert paused.value.timeout_seconds == 60 and paused.value.on_timeout == "reject"
    assert [e.kind for e in journal.entries] == ["llm"]  # the LLM step is kept for the resume


@pytest.mark.parametrize(("expression", "gated"), [("2**8", True), ("2+8", False)])
async def test_a_rule_gates_only_the_calls_it_matches(expression: str, gated: bool) -> None:
    llm = ScriptedLLM([tool_calls(("calculator", f'{{"expression": "{expression}"}}')), "ok"])
    agent = make_agent(with_calculator(RULE), llm, CALCULATOR)
    if gated:
        with pytest.raises(ApprovalPending):
            await agent.run(RunRequest(message="x"), journal=Journal())
    else:
        result = await agent.run(RunRequest(message="x"), journal=Journal())
        assert result.steps[1].output == "10"


async def _resume_with(decision: ApprovalDecision) -> tuple[Any, ScriptedLLM, Journal]:
    llm = ScriptedLLM([tool_calls(("calculator", '{"expression": "2+2"}'))])
    paused = Journal()
    tools = CALCULATOR
    with pytest.raises(ApprovalPending):
        await make_agent(with_calculator(GATED), llm, tools).run(
            RunRequest(message="x"), journal=paused
        )
    resumed = Journal(paused.entries, {1: decision})
    llm_again = ScriptedLLM(["the end"])
    result = await make_agent(with_calculator(GATED), llm_again, tools).run(
        RunRequest(message="x"), journal=resumed
    )
    return result, llm_again, resumed


async def test_an_approval_with_edited_arguments_calls_the_tool_with_them() -> None:
    decision = ApprovalDecision(
        approval_id="a1", decision="approve", arguments={"expression": "3*3"}
    )
    result, llm, journal = await _resume_with(decision)
    step = result.steps[1]
    assert (step.status, step.output, step.input) == ("ok", "9", '{"expression": "3*3"}')
    assert llm.calls[0][-1].content == "9"
    assert journal.entries[1].approval == decision


async def test_a_rejection_is_told_to_the_model_and_the_tool_is_not_called() -> None:
    decision = ApprovalDecision(approval_id="a1", decision="reject", comment="not today")
    result, llm, _ = await _resume_with(decision)
    told = llm.calls[0][-1].content or ""
    assert told.startswith("error: ") and "rejected it: not today" in told
    assert result.steps[1].status == "error" and result.answer == "the end"


async def test_an_expiry_rejects_or_fails_as_the_agent_says() -> None:
    rejected = ApprovalDecision(approval_id="a1", decision="timeout", timeout_seconds=60)
    _, llm, _ = await _resume_with(rejected)
    assert "not approved within 60 s" in (llm.calls[0][-1].content or "")
    failing = rejected.model_copy(update={"on_timeout": "fail"})
    with pytest.raises(RunFailedError) as failed:
        await _resume_with(failing)
    assert failed.value.type == ErrorType.APPROVAL_TIMEOUT


async def test_a_journal_that_does_not_match_the_replay_fails_the_run() -> None:
    recorded = Journal()
    await make_agent(config(), ScriptedLLM(["plain"]), {}).run(
        RunRequest(message="x"), journal=recorded
    )
    tool_step = recorded.entries[0].model_copy(
        update={"step": recorded.entries[0].step.model_copy(update={"kind": "tool"})}
    )
    with pytest.raises(RunFailedError) as failed:
        await make_agent(config(), ScriptedLLM([]), {}).run(
            RunRequest(message="x"), journal=Journal([tool_step])
        )
    assert failed.value.type == ErrorType.INTERNAL


async def test_without_a_journal_nothing_changes_and_no_key_is_sent() -> None:
    tool = EchoTool()
    llm = ScriptedLLM([tool_calls(("echo", "{}")), text("done")])
    await make_agent(config(), llm, {"echo": tool}).run(RunRequest(message="x"))
    assert tool.keys == [None]
