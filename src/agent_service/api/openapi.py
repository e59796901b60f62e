"""The OpenAPI description at ``/openapi.json``: FastAPI's, plus what only settings and the
agent config in force know, so that the description says what the server enforces.

``create_app`` installs ``describe`` as ``app.openapi``. On top of the schema FastAPI derives
from the pydantic models it sets, per config generation:

* ``model`` and ``agent`` of the run bodies, and ``model`` of the OpenAI bodies: the configured
  names (an ``enum``), since any other name is refused;
* ``message``: at most ``AGENT_API_MAX_MESSAGE_CHARS`` characters;
* ``webhook_url``: an https URL (http too when ``AGENT_WEBHOOKS_ALLOW_HTTP``) whose host is a
  name, since literal private addresses are refused;
* the conversation rules of the OpenAI bodies: ``messages`` holds a user message with text, and
  a Responses body has such an input item or a ``previous_response_id``; a client function
  does not take the name of one of the agents' own tools.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from agent_service.runtime import Snapshot
from agent_service.settings import Settings

_HOST = r"[A-Za-z][A-Za-z0-9-]{0,62}(\.[A-Za-z0-9-]{1,63})*(:[0-9]{1,5})?(/[^\s#]*)?$"
_USER_TEXT: dict[str, Any] = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"const": "user"},
        "content": {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "array",
                    "contains": {
                        "type": "object",
                        "required": ["type", "text"],
                        "properties": {
                            "type": {"enum": ["text", "input_text", "output_text"]},
                            "text": {"type": "string", "minLength": 1},
                        },
                    },
                },
            ]
        },
    },
}


_USER_ITEM: dict[str, Any] = {
    **_USER_TEXT,
    "required": ["type", "role", "content"],
    "properties": {**_USER_TEXT["properties"], "type": {"const": "message"}},
}


# A Responses body needs a user turn: in its input, or in the conversation it continues.
_RESPONSE_INPUT: list[dict[str, Any]] = [
    {
        "required": ["previous_response_id"],
        "properties": {"previous_response_id": {"type": "string"}},
    },
    {"required": ["input"], "properties": {"input": {"type": "string", "minLength": 1}}},
    {
        "required": ["input"],
        "properties": {"input": {"type": "array", "contains": _USER_ITEM}},
    },
]
# webhook_url is for background responses, which are stored.
_RESPONSE_RULES: list[dict[str, Any]] = [
    {
        "anyOf": [
            {"not": {"required": ["webhook_url"]}},
            {"properties": {"webhook_url": {"type": "null"}}},
            {"required": ["background"], "properties": {"background": {"const": True}}},
        ]
    },
    {
        "anyOf": [
            {"not": {"required": ["background"]}},
            {"properties": {"background": {"enum": [False, None]}}},
            {"not": {"required": ["store"]}},
            {"properties": {"store": {"enum": [True, None]}}},
        ]
    },
]


def _nullable_enum(names: list[str]) -> dict[str, Any]:
    return {"anyOf": [{"type": "string", "enum": names}, {"type": "null"}]}


def described(
    base: dict[str, Any], settings: Settings, snapshot: Snapshot | None
) -> dict[str, Any]:
    """``base`` (FastAPI's description) with the settings' and the config's constraints."""
    schema = copy.deepcopy(base)
    components = schema["components"]["schemas"]
    run, task = components["RunBody"]["properties"], components["TaskBody"]["properties"]
    for body in (run, task):
        body["message"]["maxLength"] = settings.api.max_message_chars
    task["stream"] = {"type": "boolean", "const": False, "default": False, "title": "Stream"}
    scheme = "https?" if settings.webhooks.allow_http else "https"
    task["webhook_url"]["anyOf"][0]["pattern"] = f"^{scheme}://{_HOST}"
    response = components["ResponseBody"]
    response["properties"]["webhook_url"]["anyOf"][0]["pattern"] = f"^{scheme}://{_HOST}"
    response["allOf"] = [{"anyOf": _RESPONSE_INPUT}, *_RESPONSE_RULES]
    components["CompletionBody"]["properties"]["messages"]["contains"] = _USER_TEXT
    if snapshot is not None:
        models = list(snapshot.config.model_names)
        agents = list(snapshot.agents)
        for body in (run, task):
            body["model"] = _nullable_enum(models)
            body["agent"] = _nullable_enum(agents)
        for name in ("CompletionBody", "ResponseBody"):
            components[name]["properties"]["model"]["enum"] = [*agents, *models]
        # A client function may not take the name of one of the agents' own tools.
        server_tools = sorted(
            {tool for agent in snapshot.agents.values() for tool in agent.tool_names}
        )
        for name in ("FunctionDefinition", "FunctionTool"):
            components[name]["properties"]["name"]["not"] = {"enum": server_tools}
    return schema


def describe(
    base: Callable[[], dict[str, Any]], settings: Settings, snapshot: Callable[[], Snapshot | None]
) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: the description, made again when the config generation changes."""
    cache: dict[int | None, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        current = snapshot()
        generation = current.version.generation if current is not None else None
        if generation not in cache:
            cache.clear()
            cache[generation] = described(base(), settings, current)
        return cache[generation]

    return openapi
