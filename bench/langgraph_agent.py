"""The benchmark's agent for LangGraph, which ``bench/peers.py`` serves with ``langgraph dev``.

Not imported by this project (LangGraph lives in its own virtual environment, see
``bench/peer_runtimes.py``): ``peer_runtimes.write_langgraph_app`` copies this file next to a
``langgraph.json`` that names ``graph``, and puts the project's ``src`` on ``PYTHONPATH``. It is
the agent-service agent rebuilt the way LangGraph's documentation builds a tool-calling agent: a
``StateGraph`` over ``MessagesState`` whose model node calls ``ChatOpenAI`` (the ``openai`` SDK)
on the project's LLM simulator, and a ``ToolNode``. The tools are ours (``calculator`` and
``current_time``: same code, names, descriptions and parameter schemas) and so is the system
prompt, so the model sees the same request on both sides. "what is 12*(3+4)?" makes the
simulator call the calculator once and then answer: 2 LLM calls and 1 tool call per run.
"""

from __future__ import annotations

import os
from typing import Any

from langchain_core.messages import SystemMessage
from langchain_core.tools import StructuredTool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from agent_service.agent.tools.calculator import CalculatorTool
from agent_service.agent.tools.clock import CurrentTimeTool

# The service's DEFAULT_SYSTEM_PROMPT (the agent config's default), copied rather than imported:
# that module imports the whole config model.
SYSTEM_PROMPT = (
    "You are a helpful assistant. Use the calculator tool for arithmetic and the current_time "
    "tool for the date and time. Answer briefly."
)


def langchain_tool(tool: CalculatorTool | CurrentTimeTool) -> StructuredTool:
    """One of our tools as a LangChain tool: its spec as the schema, its ``invoke`` as the body."""

    async def call(**arguments: Any) -> str:
        return await tool.invoke(arguments)

    spec = tool.spec
    return StructuredTool.from_function(
        coroutine=call, name=spec.name, description=spec.description, args_schema=spec.parameters
    )


TOOLS = [langchain_tool(CalculatorTool()), langchain_tool(CurrentTimeTool())]
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
