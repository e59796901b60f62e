"""The OpenAI-compatible routes against OpenAI's published OpenAPI description.

Request bodies are generated from OpenAI's own schemas (``createChatCompletion``,
``createResponse``; schemathesis, schema-valid data only) and sent to a real API and worker.
Each is made meaningful first: ``model`` names one of ours and the conversation gets a user
turn; the generator's objects are closed (no properties the spec does not name), since
OpenAI's API refuses unknown parameters too. Every such body must be served, or refused for a
reason docs/openai.md lists (``DOCUMENTED_REFUSALS``); every answer, JSON or each event of a
stream, must validate against the spec's schema of that answer.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis

# Imported at collection, not inside the fixture: its lazy import there parsed (and
# assertion-rewrote) schemathesis' modules deep in a fixture's stack, where CPython 3.11.7's
# ast.parse failed once with "AST constructor recursion depth mismatch".
import schemathesis.specs.openapi.schemas
from hypothesis import HealthCheck, given, settings

from tests.integration.conftest import OpenAIStack
from tests.integration.stack import parse_sse
from tests.openai_spec import OpenAISpec, load_spec

# Many generated requests per operation: longer than the default per-test timeout.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

MAX_EXAMPLES = int(os.environ.get("AGENT_TEST_FUZZ_EXAMPLES", "40"))

# What docs/openai.md says is refused, as regexes of the error's message.
DOCUMENTED_REFUSALS = (
    r"(is|are) not served",  # images, audio, files; custom tools; deprecated functions...
    r"needs a user message",  # an agent answers a user turn
    r"not a valid JSON Schema",  # response_format / text.format / function parameters
    r"^n: Input should be less than or equal to 1",  # one choice only
    r"String should match pattern '\^\[A-Za-z0-9_-\]\{1,64\}\$'",  # function and schema names
    r"^(max_tokens|max_completion_tokens|max_tool_calls): Input should be greater than or equal",
    r"^metadata",  # 16 keys, values of 512 characters at most, as OpenAI's reference says
    r"response .* not found",  # previous_response_id or an item reference of no stored response
    r"item .* not found",
    r"background responses need store: true",
    r"name of one of the agent's own tools",
    r"^messages\.\d+\.tool_calls: List should have at most",
    r"^(top_logprobs|temperature|top_p|presence_penalty|frequency_penalty): Input should be",
)


def _merged(name: str, schemas: dict[str, Any], done: dict[str, Any]) -> Any:
    """Component ``name`` with an ``allOf`` of objects merged into one object (so that closing
    each part does not make their union unsatisfiable)."""
    if name in done:
        return done[name]
    schema = schemas[name]
    parts = schema.get("allOf")
    if not parts:
        done[name] = schema
        return schema
    resolved = [
        _merged(part["$ref"].rsplit("/", 1)[-1], schemas, done) if "$ref" in part else part
        for part in parts
    ]
    if not all("properties" in part and "allOf" not in part for part in resolved):
        done[name] = schema
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    merged.update(type="object", properties={}, required=[])
    for part in resolved:
        merged["properties"].update(part["properties"])
        merged["required"] += part.get("required", [])
    done[name] = merged
    return merged


def _closed(schema: Any) -> Any:
    """A copy of a schema whose objects with declared properties allow no others."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _closed(value) for key, value in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


def _closed_components(components: dict[str, Any]) -> dict[str, Any]:
    schemas = components["schemas"]
    done: dict[str, Any] = {}
    merged = {name: _merged(name, schemas, done) for name in schemas}
    return {**components, "schemas": _closed(merged)}


@pytest.fixture(scope="module")
def spec() -> OpenAISpec:
    return load_spec()


@pytest.fixture(scope="module")
def generator(spec: OpenAISpec) -> schemathesis.BaseSchema:
    document = copy.deepcopy(spec.document)
    document["components"] = _closed_components(document["components"])
    return schemathesis.openapi.from_dict(document)


@pytest.fixture
def http(openai_stack: OpenAIStack) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {openai_stack.key}"}
    with httpx.Client(base_url=openai_stack.url, headers=headers, timeout=60) as client:
        yield client


def _chat_body(body: Any) -> dict[str, Any]:
    body = dict(body) if isinstance(body, dict) else {}
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    body["model"] = "sim"
    body["messages"] = [*messages, {"role": "user", "content": "what is 12*(3+4)?"}]
    return body


def _response_body(body: Any) -> dict[str, Any]:
    body = dict(body) if isinstance(body, dict) else {}
    given_input = body.get("input")
    turn = {"role": "user", "content": "what is 12*(3+4)?"}
    body["model"] = "sim"
    body["input"] = [*given_input, turn] if isinstance(given_input, list) else [turn]
    return body


def _documented(error: dict[str, Any]) -> bool:
    text = f"{error.get('message', '')}"
    return any(re.search(pattern, text) for pattern in DOCUMENTED_REFUSALS)


def _check_answer(
    spec: OpenAISpec, resp: httpx.Response, body: dict[str, Any], names: tuple[str, str]
) -> None:
    """A served body's answer validates; a refused one is a documented refusal."""
    sent = json.dumps(body, default=str)[:1500]
    if resp.status_code >= 400:
        error = resp.json()["error"]
        spec.check(
            "ErrorResponse", {"error": {k: error[k] for k in ("message", "type", "param", "code")}}
        )
        if resp.status_code == 502 and error["code"] == "invalid_output":
            return  # served: the model could not satisfy a generated schema
        assert resp.status_code in (404, 409, 422) and _documented(error), (
            f"refused {resp.status_code}: {error}\nbody: {sent}"
        )
        return
    whole, event = names
    if resp.headers["content-type"].startswith("text/event-stream"):
        for item in parse_sse(resp.text.replace("data: [DONE]\n\n", "")):
            assert not spec.errors(event, item["data"]), (spec.errors(event, item["data"]), sent)
        return
    problems = spec.errors(whole, resp.json())
    assert not problems, f"{problems}\nbody: {sent}"


def _fuzz(
    generator: schemathesis.BaseSchema,
    path: str,
    send: Any,
) -> None:
    operation = generator[path]["POST"]

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not os.environ.get("AGENT_TEST_FUZZ_EXAMPLES"),
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE))
    def check(case: schemathesis.Case) -> None:
        send(case.body)

    check()


def test_chat_completion_bodies_of_the_spec_are_served(
    generator: schemathesis.BaseSchema, spec: OpenAISpec, http: httpx.Client
) -> None:
    def send(generated: Any) -> None:
        body = _chat_body(generated)
        resp = http.post("/v1/chat/completions", json=body)
        _check_answer(
            spec, resp, body, ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse")
        )

    _fuzz(generator, "/chat/completions", send)


def test_response_bodies_of_the_spec_are_served(
    generator: schemathesis.BaseSchema, spec: OpenAISpec, http: httpx.Client
) -> None:
    def send(generated: Any) -> None:
        body = _response_body(generated)
        resp = http.post("/v1/responses", json=body)
        _check_answer(spec, resp, body, ("Response", "ResponseStreamEvent"))

    _fuzz(generator, "/responses", send)


def test_other_answers_match_the_spec(spec: OpenAISpec, http: httpx.Client) -> None:
    models = http.get("/v1/models").json()
    spec.check(
        "ListModelsResponse",
        {
            **models,
            "data": [
                {k: m[k] for k in ("id", "object", "created", "owned_by")} for m in models["data"]
            ],
        },
    )
    created = http.post("/v1/responses", json={"model": "sim", "input": "hi"}).json()
    spec.check("Response", http.get(f"/v1/responses/{created['id']}").json())
    deleted = http.delete(f"/v1/responses/{created['id']}")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    missing = http.get(f"/v1/responses/{created['id']}")
    assert missing.status_code == 404
    spec.check(
        "ErrorResponse",
        {"error": {k: missing.json()["error"][k] for k in ("message", "type", "param", "code")}},
    )
