"""LangChain's ``ChatOpenAI`` against a real API and worker, on Chat Completions and (with
``use_responses_api=True``) on the Responses API: plain and streamed chat, a history holding
tool calls, a client tool round trip, structured output; on the Responses API also a background
run polled to completion and a ``previous_response_id`` chain of three turns."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.integration.conftest import OpenAIStack

pytestmark = pytest.mark.integration

FORECAST = "18 degrees and sunny"


@tool
def get_weather(city: str) -> str:
    """The weather now in ``city``."""
    return FORECAST


class Report(BaseModel):
    city: str
    temperature: float
    sunny: bool


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    # trust_env=False: never a developer's proxy between the client and the test server.
    with httpx.Client(trust_env=False, timeout=30) as client:
        yield client


@pytest.fixture
def make_llm(openai_stack: OpenAIStack, http_client: httpx.Client) -> Callable[..., ChatOpenAI]:
    def make(*, responses: bool, **extra: Any) -> ChatOpenAI:
        return ChatOpenAI(
            model="sim",
            base_url=openai_stack.base_url,
            api_key=openai_stack.key,  # type: ignore[arg-type]
            max_retries=0,
            use_responses_api=responses,
            http_client=http_client,
            **extra,
        )

    return make


@pytest.fixture(params=[False, True], ids=["chat-completions", "responses"])
def llm(request: pytest.FixtureRequest, make_llm: Callable[..., ChatOpenAI]) -> ChatOpenAI:
    return make_llm(responses=request.param)


def test_plain_and_streamed(llm: ChatOpenAI) -> None:
    answer = llm.invoke("what is 12*(3+4)?")
    assert "84" in answer.text
    assert answer.usage_metadata is not None and answer.usage_metadata["total_tokens"] > 0
    streamed = "".join(chunk.text for chunk in llm.stream("what is 12*(3+4)?"))
    assert "84" in streamed


def test_history_with_tool_calls(llm: ChatOpenAI) -> None:
    history: list[BaseMessage] = [
        SystemMessage("Be brief."),
        HumanMessage("weather in Paris?"),
        AIMessage(
            "",
            tool_calls=[{"id": "call_earlier", "name": "get_weather", "args": {"city": "Paris"}}],
        ),
        ToolMessage(FORECAST, tool_call_id="call_earlier"),
        AIMessage("It is 18 degrees and sunny."),
        HumanMessage("what is 12*(3+4)?"),
    ]
    answer = llm.bind_tools([get_weather]).invoke(history)
    assert "84" in answer.text


def test_client_tool_round_trip(llm: ChatOpenAI) -> None:
    bound = llm.bind_tools([get_weather])
    messages: list[BaseMessage] = [HumanMessage('call tool get_weather with {"city": "Paris"}')]
    first = bound.invoke(messages)
    assert isinstance(first, AIMessage)
    assert [call["name"] for call in first.tool_calls] == ["get_weather"]
    call = first.tool_calls[0]
    assert call["args"] == {"city": "Paris"}
    messages += [first, get_weather.invoke(call)]
    final = bound.invoke(messages)
    assert FORECAST in final.text and not final.tool_calls


def test_structured_output(llm: ChatOpenAI) -> None:
    structured = llm.with_structured_output(Report, method="json_schema")
    report = structured.invoke("report the weather in Paris: 18 degrees")
    assert isinstance(report, Report) and report.temperature == 18


def test_responses_chain_of_three(make_llm: Callable[..., ChatOpenAI]) -> None:
    llm = make_llm(responses=True, use_previous_response_id=True)
    messages: list[BaseMessage] = []
    usages = []
    for said in ("My name is Ada.", "I live in Paris.", "What is my name?"):
        messages.append(HumanMessage(said))
        answer = llm.invoke(messages)
        messages.append(answer)
        assert answer.response_metadata["id"].startswith("resp_")
        assert answer.usage_metadata is not None
        usages.append(answer.usage_metadata["input_tokens"])
    # Only the new message was sent each turn; the server held the rest.
    assert usages[0] < usages[1] < usages[2]


def test_responses_background_polled(make_llm: Callable[..., ChatOpenAI]) -> None:
    llm = make_llm(responses=True)
    queued = llm.invoke("what is 12*(3+4)?", background=True)
    response_id = queued.response_metadata["id"]
    assert queued.response_metadata["status"] in ("queued", "in_progress", "completed")
    deadline = time.monotonic() + 30
    response = llm.root_client.responses.retrieve(response_id)
    while response.status in ("queued", "in_progress"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
        response = llm.root_client.responses.retrieve(response_id)
    assert response.status == "completed" and "84" in response.output_text
