"""The benchmark's agent for LangGraph, which ``bench/peers.py`` serves with ``langgraph dev``.

Not imported by this project (LangGraph lives in its own virtual environment, see
``bench/peer_runtimes.py``): ``peer_runtimes.write_langgraph_app`` copies this file next to a
``langgraph.json`` that names ``graph``. It is the agent-service agent, rebuilt the way
LangGraph's documentation builds a tool-calling agent: a ``StateGraph`` over ``MessagesState``
whose model node calls ``ChatOpenAI`` (the ``openai`` SDK) on the project's LLM simulator, and a
``ToolNode`` with the same two tools (same names, descriptions and system prompt as the service's
built-in agent, so the model sees the same request). "what is 12*(3+4)?" makes the simulator call
the calculator once and then answer: 2 LLM calls and 1 tool call per run, as on our side.
"""

from __future__ import annotations

import ast
import operator
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from langchain_core.messages import SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

# The service's DEFAULT_SYSTEM_PROMPT (src/agent_service/domain/agent_config.py).
SYSTEM_PROMPT = (
    "You are a helpful assistant. Use the calculator tool for arithmetic and the current_time "
    "tool for the date and time. Answer briefly."
)

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


def _evaluate(node: ast.expr) -> float:
    """Numbers, binary operators, unary signs: the calculator's arithmetic without ``eval``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_evaluate(node.left), _evaluate(node.right))  # type: ignore[no-any-return]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        value = _evaluate(node.operand)
        return value if isinstance(node.op, ast.UAdd) else -value
    raise ValueError("only numbers, + - * / // % ** and parentheses are allowed")


@tool(parse_docstring=True)
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression. Supports numbers, + - * / // % ** and parentheses, e.g. '12*(3+4)' or '2**0.5'.

    Args:
        expression: The expression to evaluate, at most 200 characters.
    """  # noqa: E501 - the docstring is the tool description the model sees, as on our side
    value = _evaluate(ast.parse(expression[:200].strip(), mode="eval").body)
    return str(int(value)) if float(value).is_integer() else f"{value:.12g}"


@tool(parse_docstring=True)
def current_time(timezone: str = "UTC") -> str:
    """The current date, time and weekday in a time zone (default UTC).

    Args:
        timezone: IANA time zone name, e.g. 'Europe/Paris' or 'America/New_York'.
    """
    return datetime.now(ZoneInfo(timezone)).strftime("%A %Y-%m-%d %H:%M:%S %Z")


TOOLS = [calculator, current_time]
MODEL = ChatOpenAI(
    model="sim-agent",
    base_url=os.environ["PEERS_SIM_URL"],
    api_key="sim",  # type: ignore[arg-type]
    timeout=30,
    max_tokens=1024,
).bind_tools(TOOLS)


async def agent(state: MessagesState) -> dict[str, list[Any]]:
    """The model node: the system prompt, the conversation, the tools; one LLM call."""
    reply = await MODEL.ainvoke([SystemMessage(SYSTEM_PROMPT), *state["messages"]])
    return {"messages": [reply]}


builder = StateGraph(MessagesState)
builder.add_node("agent", agent)
builder.add_node("tools", ToolNode(TOOLS))
builder.add_edge(START, "agent")
builder.add_conditional_edges("agent", tools_condition)
builder.add_edge("tools", "agent")
graph = builder.compile()
