"""The OpenAI-compatible face, with the official ``openai`` SDK as the client (sync, async,
streaming), authenticated with a tenant's key, against a real API process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from agent_service.api.auth import generate_key
from tests.conftest import RedisServer, Sim
from tests.integration.stack import secured_env

pytestmark = pytest.mark.integration

KEY = generate_key()
QUESTION = "what is 12*(3+4)?"


@pytest.fixture(scope="module")
def api_url(
    redis_server: RedisServer, sim: Sim, log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("openai")
    env = secured_env(redis_server.url, sim.url, log_dir, root, {"sdk-users": KEY})
    api, url = env.start_api()
    yield url
    api.stop()


def _client(url: str, key: str = KEY) -> openai.OpenAI:
    # trust_env=False: never a developer's proxy between the SDK and the test server.
    return openai.OpenAI(
        base_url=f"{url}/v1",
        api_key=key,
        max_retries=0,
        http_client=httpx.Client(trust_env=False, timeout=30),
    )


def test_models_list(api_url: str) -> None:
    with _client(api_url) as client:
        models = client.models.list()
    assert [m.id for m in models.data] == ["default", "sim", "sim-backup"]


def test_sync_completion_runs_the_agent_with_its_tools(api_url: str) -> None:
    with _client(api_url) as client:
        completion = client.chat.completions.create(
            model="sim", messages=[{"role": "user", "content": QUESTION}]
        )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert "84" in (choice.message.content or "")
    usage = completion.usage
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens > 0


async def test_async_client_and_conversation_history(api_url: str) -> None:
    client = openai.AsyncOpenAI(
        base_url=f"{api_url}/v1",
        api_key=KEY,
        max_retries=0,
        http_client=httpx.AsyncClient(trust_env=False, timeout=30),
    )
    completion = await client.chat.completions.create(
        model="sim",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Hello Ada."},
            {"role": "user", "content": [{"type": "text", "text": "what time is it in UTC?"}]},
        ],
    )
    await client.close()
    assert completion.choices[0].message.content


def test_streaming_with_a_final_usage_chunk(api_url: str) -> None:
    with _client(api_url) as client:
        stream = client.chat.completions.create(
            model="sim",
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "84" in text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0


def test_errors_reach_the_sdk_as_typed_exceptions(api_url: str) -> None:
    with _client(api_url, key="ak_wrong") as stranger, pytest.raises(openai.AuthenticationError):
        stranger.chat.completions.create(model="sim", messages=[{"role": "user", "content": "hi"}])
    with _client(api_url) as client:
        with pytest.raises(openai.NotFoundError) as unknown_model:
            client.chat.completions.create(
                model="gpt-5", messages=[{"role": "user", "content": "hi"}]
            )
        assert "does not exist" in str(unknown_model.value)
        assert unknown_model.value.code == "not_found"
        assert unknown_model.value.param == "model"
        with pytest.raises(openai.UnprocessableEntityError):
            client.chat.completions.create(
                model="sim", messages=[{"role": "assistant", "content": "no user message"}]
            )
        with pytest.raises(openai.UnprocessableEntityError) as clash:
            client.chat.completions.create(
                model="sim",
                messages=[{"role": "user", "content": "hi"}],
                tools=[{"type": "function", "function": {"name": "calculator"}}],
            )
        assert clash.value.param == "tools"
        with pytest.raises(openai.UnprocessableEntityError) as two:
            client.chat.completions.create(
                model="sim", messages=[{"role": "user", "content": "hi"}], n=2
            )
        assert two.value.param == "n"


def test_unknown_fields_are_refused(api_url: str) -> None:
    resp = httpx.post(
        f"{api_url}/v1/chat/completions",
        json={"model": "sim", "messages": [{"role": "user", "content": "hi"}], "bogus": 1},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_request"
    assert error["param"] == "bogus"
