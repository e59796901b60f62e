"""The simulator's decisions and token counts, table-driven (no server)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from agent_service.sim.behaviour import (
    Reply,
    asks_for_time,
    decide,
    find_expression,
    find_timezone,
    tool_call_id,
)
from agent_service.sim.options import SimOptions, add_arguments, options_from_args
from agent_service.sim.tokens import count_tokens, prompt_tokens, split_tokens, tool_call_tokens


def _tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


TOOLS = [_tool("calculator"), _tool("current_time")]


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": text}]


def _after_call(name: str, result: str, arguments: str = "{}") -> list[dict[str, Any]]:
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return [
        {"role": "user", "content": "question"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": result},
    ]


def _only_call(reply: Reply) -> tuple[str, dict[str, Any]]:
    assert reply.text is None
    assert len(reply.tool_calls) == 1
    call = reply.tool_calls[0]
    return call.name, json.loads(call.arguments)


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("what is 12*(3+4)?", "12*(3+4)"),
        ("What is 2+2.", "2+2"),
        ("compute 2 ** 10 please", "2 ** 10"),
        ("7 // 2 and 10 % 3", "7 // 2"),
        ("(1.5 + 2.25) / 3", "(1.5 + 2.25) / 3"),
        ("((2+3)*4)/5 = ?", "((2+3)*4)/5"),
        ("what is (1+2", "1+2"),
        ("-5 + 3", "-5 + 3"),
        ("small 1+1 or bigger 100 * 200 - 3", "100 * 200 - 3"),
        ("计算 6*7 等于多少", "6*7"),
        ("version 3.11 is out", None),
        ("I have 3 apples and 4 pears", None),
        ("1. first 2. second", None),
        ("3 4+5", None),
        ("no numbers here", None),
    ],
)
def test_find_expression(text: str, expression: str | None) -> None:
    assert find_expression(text) == expression


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("What time is it?", True),
        ("what's the DATE today", True),
        ("check the clock", True),
        ("What day is it in Paris?", True),
        ("现在几点？", True),
        ("上海时间", True),
        ("今天的日期", True),
        ("please update the file", False),
        ("sometimes it rains", False),
        ("hello", False),
    ],
)
def test_asks_for_time(text: str, asks: bool) -> None:
    assert asks_for_time(text) is asks


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("time in Europe/Paris?", "Europe/Paris"),
        ("上海Asia/Shanghai现在几点", "Asia/Shanghai"),
        ("America/Argentina/Buenos_Aires clock", "America/Argentina/Buenos_Aires"),
        ("what time is it", None),
    ],
)
def test_find_timezone(text: str, zone: str | None) -> None:
    assert find_timezone(text) == zone


@pytest.mark.parametrize(
    ("text", "tools", "name", "arguments"),
    [
        ("what is 12*(3+4)?", TOOLS, "calculator", {"expression": "12*(3+4)"}),
        ("What time is it?", TOOLS, "current_time", {"timezone": "UTC"}),
        ("What time is it in Europe/Paris?", TOOLS, "current_time", {"timezone": "Europe/Paris"}),
        ("Asia/Shanghai 现在几点？", TOOLS, "current_time", {"timezone": "Asia/Shanghai"}),
        # arithmetic wins over time when both appear
        ("what time is 2+3", TOOLS, "calculator", {"expression": "2+3"}),
        # a named tool that is offered: called with the rest of the message
        (
            "Use the lookup tool: weather in Paris",
            [_tool("lookup")],
            "lookup",
            {"query": "weather in Paris"},
        ),
        ("please use the lookup tool", [*TOOLS, _tool("lookup")], "lookup", {"query": "please"}),
        # the built-in rules still win for their own questions
        ("use the calculator tool for 2+3", TOOLS, "calculator", {"expression": "2+3"}),
    ],
)
def test_tool_calls(text: str, tools: list[dict[str, Any]], name: str, arguments: Any) -> None:
    assert _only_call(decide(_user(text), tools)) == (name, arguments)


@pytest.mark.parametrize(
    ("text", "tools"),
    [
        ("what is 12*(3+4)?", []),
        ("what is 12*(3+4)?", [_tool("current_time")]),
        ("What time is it?", [_tool("calculator")]),
        ("hello there", TOOLS),
        ("use the lookup tool: weather", TOOLS),  # named, but not offered
    ],
)
def test_text_when_no_matching_tool(text: str, tools: list[dict[str, Any]]) -> None:
    reply = decide(_user(text), tools, model="sim-agent")
    assert reply.tool_calls == ()
    assert reply.text is not None
    assert reply.text.startswith(f"You said: {text}.")
    assert "sim-agent" in reply.text


def test_tool_choice_none_disables_tools() -> None:
    reply = decide(_user("what is 1+2"), TOOLS, tool_choice="none")
    assert reply.text is not None


@pytest.mark.parametrize(
    ("messages", "text"),
    [
        (_after_call("calculator", "84"), "The answer is 84."),
        (_after_call("calculator", '{"result": 84}'), "The answer is 84."),
        (
            _after_call("current_time", "2025-01-01T12:00:00+01:00"),
            "The current time is 2025-01-01T12:00:00+01:00.",
        ),
        (_after_call("search", "three hits"), "The search tool returned: three hits"),
        (
            _after_call("calculator", "Error: division by zero"),
            "I could not use the calculator tool (Error: division by zero). "
            "Please check the input and try again.",
        ),
        (
            _after_call("calculator", "ERROR bad input"),
            "I could not use the calculator tool (ERROR bad input). "
            "Please check the input and try again.",
        ),
        (
            [{"role": "tool", "name": "calculator", "tool_call_id": "x", "content": "5"}],
            "The answer is 5.",
        ),
    ],
)
def test_answers_from_tool_results(messages: list[dict[str, Any]], text: str) -> None:
    assert decide(messages, TOOLS) == Reply(text=text)


def test_several_tool_results_are_all_reported() -> None:
    calls = [
        {"id": "a", "type": "function", "function": {"name": "calculator", "arguments": "{}"}},
        {"id": "b", "type": "function", "function": {"name": "current_time", "arguments": "{}"}},
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "a", "content": "4"},
        {"role": "tool", "tool_call_id": "b", "content": "noon"},
    ]
    assert decide(messages, TOOLS).text == "The answer is 4. The current time is noon."


def test_text_answer_keeps_chinese_intact() -> None:
    text = "你好，世界！请介绍一下你自己。"
    reply = decide(_user(text), [])
    assert reply.text is not None
    assert f"You said: {text}." in reply.text


def test_text_answer_truncates_long_messages() -> None:
    reply = decide(_user("x" * 100), [])
    assert reply.text is not None
    assert reply.text.startswith("You said: " + "x" * 60 + ". ")


def test_multimodal_content_parts_are_read() -> None:
    content = [{"type": "text", "text": "what is 2*3"}, {"type": "image_url", "image_url": {}}]
    messages = [{"role": "user", "content": content}]
    assert _only_call(decide(messages, TOOLS)) == ("calculator", {"expression": "2*3"})


def test_decisions_are_deterministic() -> None:
    for text in ("what is 1+1", "hello", "几点了"):
        assert decide(_user(text), TOOLS, seed=3) == decide(_user(text), TOOLS, seed=3)
    first = decide(_user("what is 1+1"), TOOLS, seed=1).tool_calls[0].id
    assert first == tool_call_id(1, 2, "calculator")
    assert first != decide(_user("what is 1+1"), TOOLS, seed=2).tool_calls[0].id
    assert first.startswith("call_")


def test_wording_varies_with_seed() -> None:
    answers = {decide(_user("hello"), [], seed=seed).text for seed in range(20)}
    assert len(answers) > 1
    assert all(a is not None and a.startswith("You said: hello.") for a in answers)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("   \n\t ", 0),
        ("hello", 1),
        ("hello world", 2),
        ("Hello, world!", 4),
        ("12*(3+4)", 7),
        ("abc123def", 1),
        ("你好世界", 4),
        ("café", 2),
        ('{"expression": "12*(3+4)"}', 15),
    ],
)
def test_count_tokens(text: str, tokens: int) -> None:
    assert count_tokens(text) == tokens


@pytest.mark.parametrize("text", ["", "a", "Hello, world!  ", " lead", "你好 世界\n", "a\n\nb"])
def test_split_tokens_round_trips(text: str) -> None:
    pieces = split_tokens(text)
    assert "".join(pieces) == text
    assert len(pieces) == max(count_tokens(text), 1 if text else 0)


def test_prompt_tokens() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},  # 3 + 4
        {"role": "user", "content": "what is 1+1"},  # 5 + 4
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c",
                    "type": "function",
                    "function": {"name": "calculator", "arguments": "{}"},
                }
            ],
        },  # 1 + 2 + 4
        {"role": "tool", "tool_call_id": "c", "content": "2"},  # 1 + 4
    ]
    assert prompt_tokens(messages) == 7 + 9 + 7 + 5 + 2


def test_tool_call_tokens() -> None:
    assert tool_call_tokens("calculator", '{"expression": "1+1"}') == 1 + 11


def _parse(*flags: str) -> SimOptions:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return options_from_args(parser.parse_args(list(flags)))


def test_options_from_flags() -> None:
    assert _parse() == SimOptions()
    options = _parse(
        "--port", "0", "--ttft", "1", "--tokens-per-second", "50", "--fail-429", "0.25",
        "--fail-500", "0.25", "--hang", "0.5", "--hang-seconds", "3",
        "--fail-model", "a", "--fail-model", "b", "--seed", "9",
    )  # fmt: skip
    assert options == SimOptions(
        port=0, ttft_seconds=1.0, tokens_per_second=50.0, fail_429=0.25, fail_500=0.25,
        hang=0.5, hang_seconds=3.0, fail_models=("a", "b"), seed=9,
    )  # fmt: skip


@pytest.mark.parametrize(
    "flags",
    [
        ("--fail-429", "1.5"),
        ("--fail-500", "-0.1"),
        ("--hang", "x"),
        ("--ttft", "-1"),
        ("--fail-429", "0.6", "--fail-500", "0.5"),
    ],
)
def test_invalid_flags_exit(flags: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit):
        _parse(*flags)


def test_options_validate_themselves() -> None:
    with pytest.raises(ValueError, match="more than 1"):
        SimOptions(fail_429=0.5, hang=0.6)


MCP_TOOLS = [*TOOLS, _tool("orders__lookup_order"), _tool("orders__list_recent_orders")]


@pytest.mark.parametrize(
    ("text", "tools", "name", "arguments"),
    [
        # an order id and a lookup_order tool, bare or behind an MCP server's prefix
        (
            "where is order OD-20240502?",
            MCP_TOOLS,
            "orders__lookup_order",
            {"order_id": "OD-20240502"},
        ),
        (
            "status of od-20240611",
            [_tool("lookup_order")],
            "lookup_order",
            {"order_id": "OD-20240611"},
        ),
        # the order rule comes before the time rule
        (
            "what time will OD-20240502 arrive",
            MCP_TOOLS,
            "orders__lookup_order",
            {"order_id": "OD-20240502"},
        ),
        # "call tool NAME with {json}": exact name, or the one <server>__NAME
        (
            'call tool list_recent_orders with {"customer_email": "bob@example.com", "limit": 2}',
            MCP_TOOLS,
            "orders__list_recent_orders",
            {"customer_email": "bob@example.com", "limit": 2},
        ),
        ("Call the tool orders__lookup_order with {}", MCP_TOOLS, "orders__lookup_order", {}),
        ("call tool calculator", MCP_TOOLS, "calculator", {}),
        # it wins over every other rule, the order rule included
        (
            'call tool test__slow with {"seconds": 5} about OD-20240502',
            [_tool("test__slow"), *MCP_TOOLS],
            "test__slow",
            {"seconds": 5},
        ),
    ],
)
def test_mcp_tool_calls(text: str, tools: list[dict[str, Any]], name: str, arguments: Any) -> None:
    assert _only_call(decide(_user(text), tools)) == (name, arguments)


@pytest.mark.parametrize(
    ("text", "tools"),
    [
        ("where is order OD-20240502?", TOOLS),  # no lookup_order offered
        ("call tool missing with {}", MCP_TOOLS),  # not offered
        ("call tool lookup_order with {}", [_tool("a__lookup_order"), _tool("b__lookup_order")]),
        ("call tool calculator with [1, 2]", [_tool("calculator")]),  # not an object
        ("call tool calculator with {not json}", [_tool("calculator")]),
    ],
)
def test_no_mcp_call_without_a_matching_tool(text: str, tools: list[dict[str, Any]]) -> None:
    reply = decide(_user(text), tools)
    assert reply.tool_calls == ()
    assert reply.text is not None


def test_each_order_id_is_looked_up_once_with_distinct_call_ids() -> None:
    reply = decide(_user("OD-20240502, OD-20240611 and od-20240502 again"), MCP_TOOLS)
    assert [json.loads(call.arguments) for call in reply.tool_calls] == [
        {"order_id": "OD-20240502"},
        {"order_id": "OD-20240611"},
    ]
    assert len({call.id for call in reply.tool_calls}) == 2


@pytest.mark.parametrize(
    ("result", "text"),
    [
        (
            {
                "order_id": "OD-20240502",
                "status": "shipped",
                "carrier": "DHL",
                "tracking_number": "JD014600003828",
                "estimated_delivery": "2024-05-07",
            },
            "Order OD-20240502 is shipped: DHL tracking number JD014600003828, "
            "estimated delivery 2024-05-07.",
        ),
        (
            {
                "order_id": "OD-20240528",
                "status": "cancelled",
                "currency": "EUR",
                "refund": {"amount": 59.0, "issued_at": "2024-05-29"},
            },
            "Order OD-20240528 is cancelled: refund of 59.0 EUR issued on 2024-05-29.",
        ),
        ({"order_id": "OD-1", "status": "processing"}, "Order OD-1 is processing."),
    ],
)
def test_answers_from_an_order_lookup(result: dict[str, Any], text: str) -> None:
    messages = _after_call("orders__lookup_order", json.dumps(result))
    assert decide(messages, MCP_TOOLS) == Reply(text=text)


def test_an_mcp_tool_error_is_reported_as_such() -> None:
    messages = _after_call("orders__lookup_order", "error: no order 'OD-1'")
    assert decide(messages, MCP_TOOLS).text == (
        "I could not use the orders__lookup_order tool (error: no order 'OD-1'). "
        "Please check the input and try again."
    )


def test_a_forced_tool_choice_makes_a_call_when_no_rule_did() -> None:
    tools = [{"type": "function", "function": {"name": n}} for n in ("zeta", "alpha")]
    messages = [{"role": "user", "content": "hello"}]
    named = {"type": "function", "function": {"name": "zeta"}}
    assert [c.name for c in decide(messages, tools, tool_choice=named).tool_calls] == ["zeta"]
    assert [c.name for c in decide(messages, tools, tool_choice="required").tool_calls] == ["alpha"]
    assert decide(messages, tools, tool_choice="auto").text is not None
