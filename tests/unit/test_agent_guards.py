"""What may stop or shape a run: guards (cancel, budgets), the per-run cost cap, degradation
when tools keep failing, the cheap-model router, the response cache, caller-sent history."""

from __future__ import annotations

from typing import Any

import pytest

from agent_service.agent import policy
from agent_service.agent.loop import RunFailedError
from agent_service.agentconfig.model import (
    AgentConfig,
    CacheSpec,
    Limits,
    ModelSpec,
    RouterSpec,
)
from agent_service.domain.errors import AgentError, ErrorType, ToolError
from agent_service.domain.messages import ChatMessage
from agent_service.domain.runs import RunRequest
from tests.unit.fakes import CacheFake, EchoTool, GuardFake, ScriptedLLM, make_agent, tool_calls


def config(**extra: Any) -> AgentConfig:
    return AgentConfig(
        default_model="big",
        models=[
            ModelSpec(name="big", model="openai/big"),
            ModelSpec(name="small", model="openai/s"),
        ],
        **extra,
    )


async def test_guard_is_checked_before_every_llm_and_tool_call_and_charged_after_llm() -> None:
    guard = GuardFake()
    llm = ScriptedLLM([tool_calls(("echo", "{}"), ("echo", "{}")), "done"])
    await make_agent(config(), llm, {"echo": EchoTool()}).run(RunRequest(message="go"), guard=guard)
    assert guard.checks == 4, "LLM, tool, tool, LLM"
    assert [u.total_tokens for u in guard.charged] == [15, 15]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (AgentError(ErrorType.CANCELLED, "the task was cancelled"), ErrorType.CANCELLED),
        (AgentError(ErrorType.BUDGET_EXCEEDED, "daily budget"), ErrorType.BUDGET_EXCEEDED),
    ],
)
async def test_a_guard_stops_the_run_at_a_step_boundary(error: AgentError, expected: str) -> None:
    guard = GuardFake(stop_at=2, error=error)  # after the first LLM call, before the tool
    tool = EchoTool()
    llm = ScriptedLLM([tool_calls(("echo", "{}")), "never"])
    with pytest.raises(RunFailedError) as caught:
        await make_agent(config(), llm, {"echo": tool}).run(RunRequest(message="go"), guard=guard)
    assert caught.value.type == expected
    assert tool.calls == [] and len(llm.calls) == 1
    assert [s.kind for s in caught.value.steps] == ["llm"]
    assert caught.value.usage.total_tokens == 15


async def test_run_cost_cap_stops_the_run() -> None:
    llm = ScriptedLLM([tool_calls(("echo", "{}")), tool_calls(("echo", "{}")), "done"])
    agent = make_agent(
        config(limits=Limits(max_cost_usd_per_run=0.0015)), llm, {"echo": EchoTool()}
    )
    with pytest.raises(RunFailedError) as caught:
        await agent.run(RunRequest(message="go"))
    assert caught.value.type == ErrorType.BUDGET_EXCEEDED
    assert "maxCostUsdPerRun" in caught.value.message
    assert len(llm.calls) == 2, "stopped after the call that crossed the cap"


async def test_tools_failing_in_a_row_make_the_agent_answer_without_them() -> None:
    broken = EchoTool(fail=ToolError("backend down"))
    llm = ScriptedLLM(
        [tool_calls(("echo", "{}"), ("echo", "{}")), tool_calls(("echo", "{}")), "from memory"]
    )
    agent = make_agent(
        config(limits=Limits(max_consecutive_tool_failures=3)), llm, {"echo": broken}
    )
    result = await agent.run(RunRequest(message="go"))
    assert result.answer == "from memory" and result.degraded
    assert llm.tools_offered == [["echo"], ["echo"], []]
    assert "no longer offered" in (llm.calls[2][-1].content or "")
    assert len(broken.calls) == 3


async def test_a_success_resets_the_failure_streak() -> None:
    flaky = EchoTool(fail=ToolError("down"))
    ok = EchoTool(name="ok")
    llm = ScriptedLLM(
        [tool_calls(("echo", "{}"), ("ok", "{}"), ("echo", "{}")), tool_calls(("echo", "{}")), "a"]
    )
    agent = make_agent(
        config(limits=Limits(max_consecutive_tool_failures=3)), llm, {"echo": flaky, "ok": ok}
    )
    result = await agent.run(RunRequest(message="go"))
    assert not result.degraded and llm.tools_offered[-1] == ["echo", "ok"]


ROUTER = RouterSpec(enabled=True, model="small", max_chars=40)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (RunRequest(message="hello, who are you?"), "small"),
        (RunRequest(message="what is 12*(3+4)?"), None),
        (RunRequest(message="what time is it in Tokyo?"), None),
        (RunRequest(message="x" * 41), None),
        (RunRequest(message="hello", model="big"), None),
        (RunRequest(message="hi", history=[ChatMessage(role="user", content="a")]), None),
    ],
    ids=["short", "arithmetic", "time", "long", "named-model", "with-history"],
)
def test_router_picks_the_cheap_model_only_for_short_tool_free_requests(
    request_: RunRequest, expected: str | None
) -> None:
    assert policy.routed_model(request_, ROUTER) == expected
    assert policy.routed_model(request_, RouterSpec()) is None, "off by default"


async def test_a_routed_run_uses_the_cheap_model_without_tools() -> None:
    llm = ScriptedLLM(["hi!"])
    agent = make_agent(config(router=ROUTER), llm, {"echo": EchoTool()})
    await agent.run(RunRequest(message="hello"))
    assert llm.tools_offered == [[]]


def test_router_model_must_be_configured() -> None:
    with pytest.raises(ValueError, match=r"router\.model: 'tiny' is not a configured model"):
        config(router=RouterSpec(enabled=True, model="tiny"))


async def test_cache_serves_a_repeated_stateless_run_without_an_llm_call() -> None:
    cache = CacheFake()
    llm = ScriptedLLM(["forty-two"])
    agent = make_agent(config(cache=CacheSpec(enabled=True, ttl_seconds=60)), llm, {}, cache=cache)
    first = await agent.run(RunRequest(message="meaning?"))
    second = await agent.run(RunRequest(message="meaning?"))
    assert len(llm.calls) == 1 and cache.ttls == [60]
    assert second.answer == first.answer and second.cached and not first.cached
    assert second.usage.total_tokens == 0, "a cached answer costs nothing"


async def test_cache_is_per_tenant_and_skips_sessions_and_streams() -> None:
    cache = CacheFake()
    llm = ScriptedLLM(["a", "b", "c", "d"])
    agent = make_agent(config(cache=CacheSpec(enabled=True)), llm, {}, cache=cache)
    await agent.run(RunRequest(message="q", tenant="t1"))
    await agent.run(RunRequest(message="q", tenant="t2"))
    await agent.run(RunRequest(message="q", tenant="t1", session_id="s"))
    await agent.run(RunRequest(message="q", tenant="t1"), mode="stream")
    assert len(llm.calls) == 4
    assert len(cache.items) == 2


async def test_runs_that_used_a_tool_are_not_cached() -> None:
    cache = CacheFake()
    llm = ScriptedLLM([tool_calls(("echo", "{}")), "it is noon", tool_calls(("echo", "{}")), "1pm"])
    agent = make_agent(
        config(cache=CacheSpec(enabled=True)), llm, {"echo": EchoTool()}, cache=cache
    )
    first = await agent.run(RunRequest(message="what time is it?"))
    second = await agent.run(RunRequest(message="what time is it?"))
    assert (first.answer, second.answer) == ("it is noon", "1pm")
    assert cache.items == {}


async def test_cache_off_by_default() -> None:
    cache = CacheFake()
    llm = ScriptedLLM(["a", "b"])
    agent = make_agent(config(), llm, {}, cache=cache)
    await agent.run(RunRequest(message="q"))
    await agent.run(RunRequest(message="q"))
    assert len(llm.calls) == 2 and cache.items == {}


def test_cache_key_changes_with_the_config() -> None:
    request = RunRequest(message="q")
    assert policy.cache_key(request, "big", "hash-1") != policy.cache_key(request, "big", "hash-2")
    assert policy.cache_key(request, "big", "h") != policy.cache_key(request, "small", "h")


async def test_history_sent_by_the_caller_replaces_session_memory() -> None:
    llm = ScriptedLLM(["fine"])
    history = [
        ChatMessage(role="user", content="earlier question"),
        ChatMessage(role="assistant", content="earlier answer"),
    ]
    await make_agent(config(), llm, {}).run(RunRequest(message="and now?", history=history))
    assert [m.content for m in llm.calls[0]][1:] == [
        "earlier question",
        "earlier answer",
        "and now?",
    ]
