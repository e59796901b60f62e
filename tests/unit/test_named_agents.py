"""Named agents in the agent config (profiles, references, compatibility), structured output,
and the simulator's JSON answers: pure tests, table-driven."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_service.agent import structured
from agent_service.agentconfig.load import ConfigError, parse_agent_config, parse_config_document
from agent_service.agentconfig.model import AgentConfig
from agent_service.domain.errors import ErrorType
from agent_service.domain.runs import RunRequest
from agent_service.sim.structured import instance, structured_text
from tests.unit.fakes import ScriptedLLM, make_agent

ROOT = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "defaultModel": "big",
    "models": [
        {"name": "big", "model": "openai/big"},
        {"name": "small", "model": "openai/small"},
    ],
    "systemPrompt": "Be brief.",
    "limits": {"maxIterations": 6, "memoryTurns": 4},
    "tools": {"http": [{"name": "weather", "description": "w", "url": "https://w.example/x"}]},
    "mcpServers": [{"name": "orders", "url": "https://mcp.example/mcp"}],
}


def config(**fields: Any) -> AgentConfig:
    return AgentConfig.model_validate({**BASE, **fields})


def errors(**fields: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_agent_config(json.dumps({**BASE, **fields}))
    return caught.value.errors


def test_a_config_without_agents_is_one_default_agent_from_the_top_level() -> None:
    plain = config()
    assert plain.default_agent_name == "default"
    profile = plain.profiles()["default"]
    assert (profile.system_prompt, profile.model) == ("Be brief.", "big")
    assert profile.tools.calculator and profile.tools.current_time
    assert profile.tools.http == ["weather"]
    assert [ref.server for ref in profile.tools.mcp] == ["orders"]
    assert profile.limits.max_iterations == 6 and profile.allows("anyone")


def test_agents_inherit_what_they_do_not_set() -> None:
    named = config(
        agents=[
            {"name": "a", "limits": {"maxIterations": 2}},
            {"name": "b", "model": "small", "systemPrompt": "Be b.", "tenants": ["t1"]},
        ]
    )
    a, b = named.profiles()["a"], named.profiles()["b"]
    assert named.default_agent_name == "a", "the first agent when defaultAgent is unset"
    assert (a.model, a.system_prompt) == ("big", "Be brief.")
    assert (a.limits.max_iterations, a.limits.memory_turns) == (2, 4)
    assert not a.tools.calculator, "an agent has the built-ins it switches on"
    assert (b.model, b.system_prompt) == ("small", "Be b.")
    assert b.allows("t1") and not b.allows("t2")
    assert config(agents=[{"name": "a"}, {"name": "b"}], defaultAgent="b").default_agent_name == "b"


@pytest.mark.parametrize(
    ("fields", "path", "reason"),
    [
        ({"agents": [{"name": "a"}, {"name": "b", "model": "gpt-9"}]}, "agents[1].model",
         "'gpt-9' is not a configured model"),
        ({"agents": [{"name": "a", "tools": {"http": ["nope"]}}]}, "agents[0].tools.http[0]",
         "'nope' is not a tools.http entry"),
        ({"agents": [{"name": "a", "tools": {"mcp": [{"server": "crm"}]}}]},
         "agents[0].tools.mcp[0].server", "'crm' is not an mcpServers entry"),
        ({"agents": [{"name": "a"}, {"name": "a"}]}, "agents[1].name", "duplicate agent name"),
        ({"agents": [{"name": "small"}]}, "agents[0].name", "also the name of a model"),
        ({"agents": [{"name": "a"}], "defaultAgent": "z"}, "defaultAgent", "'z' is not an agent"),
        ({"defaultAgent": "z"}, "defaultAgent", "the config lists no agents"),
        ({"agents": [{"name": "a", "responseFormat": {"type": "nope"}}]},
         "agents[0].responseFormat", "not a valid JSON schema"),
        ({"agents": [{"name": "a", "tenants": ["Not A Tenant"]}]}, "agents[0].tenants[0]",
         "pattern"),
        ({"mcpServers": [{"name": "x", "url": "https://a/mcp"}, {"name": "x", "url": "https://b/mcp"}]},
         "mcpServers[1].name", "duplicate MCP server name"),
    ],
)  # fmt: skip
def test_invalid_agents_are_refused_at_their_path(
    fields: dict[str, Any], path: str, reason: str
) -> None:
    found = errors(**fields)
    assert any(where == path and reason in why for where, why in found), found


def test_configs_from_before_named_agents_load_unchanged() -> None:
    """The example resource and a plain file of the earlier releases: one default agent."""
    example = (ROOT / "k8s/examples/agentconfig.yaml").read_text()
    resource, _ = parse_config_document(example, "example")
    assert list(resource.profiles()) == ["default"]
    legacy = parse_agent_config(
        "defaultModel: sim\nmodels:\n  - {name: sim, model: openai/sim, apiBase: http://s/v1}\n"
        "tools: {calculator: false}\nlimits: {maxIterations: 3}\n"
    )
    profile = legacy.profiles()["default"]
    assert not profile.tools.calculator and profile.tools.current_time
    assert profile.limits.max_iterations == 3


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        ('{"answer": "x", "confident": true}', True),
        ('```json\n{"answer": "x", "confident": false}\n```', True),
        ('{"answer": "x"}', False),
        ('{"answer": 3, "confident": true}', False),
        ("not json", False),
    ],
)
def test_structured_check(answer: str, ok: bool) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "confident": {"type": "boolean"}},
        "required": ["answer", "confident"],
    }
    assert structured.check(answer, schema).ok is ok


async def test_an_invalid_structured_answer_gets_one_repair_then_fails() -> None:
    schema_config = config(agents=[{"name": "x", "responseFormat": {"type": "object"}}])
    repaired = ScriptedLLM(["not json", '{"a": 1}'])
    result = await make_agent(schema_config, repaired, {}).run(RunRequest(message="go"))
    assert result.output == {"a": 1} and len(result.steps) == 2
    assert repaired.response_formats[0] == structured.response_format({"type": "object"}, "x")
    assert "does not match the required JSON schema" in (repaired.calls[1][-1].content or "")

    hopeless = ScriptedLLM(["not json", "still not json"])
    with pytest.raises(Exception) as caught:
        await make_agent(schema_config, hopeless, {}).run(RunRequest(message="go"))
    assert getattr(caught.value, "type", None) == ErrorType.INVALID_OUTPUT


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}}},
         {"n": 7, "s": "text"}),
        ({"type": "array", "items": {"enum": ["a", "b"]}}, ["a"]),
        ({"anyOf": [{"type": "boolean"}, {"type": "string"}]}, True),
        ({"type": ["null", "number"]}, 7.0),
        ({"const": 3}, 3),
    ],
)  # fmt: skip
def test_simulator_builds_a_value_of_the_schema(schema: dict[str, Any], expected: Any) -> None:
    assert instance(schema, "text", 7.0) == expected


def test_simulator_invalid_json_markers() -> None:
    fmt = {"type": "json_object"}
    ask = [{"role": "user", "content": "[[invalid-json-once]] hi"}]
    assert not _is_json(structured_text(fmt, "hi", ask, "hi"))
    repair = [*ask, {"role": "assistant", "content": "bad"}, {"role": "user", "content": "fix"}]
    assert json.loads(structured_text(fmt, "hi", repair, "fix")) == {"answer": "hi"}
    always = [{"role": "user", "content": "[[invalid-json]] hi"}, *repair[1:]]
    assert not _is_json(structured_text(fmt, "hi", always, "fix"))


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
