"""The ``openai`` npm package and the Vercel AI SDK (``ai`` + ``@ai-sdk/openai``) against a real
API and worker: each client x scenario of tests/openai_js/clients.mjs runs under the machine's
Node, and what it saw is checked here.

The packages are installed by ``npm ci`` from tests/openai_js/package-lock.json (once, when
node_modules is missing or older than the lockfile). Without node or npm the tests skip, except
under CI=true, where they fail (scripts/test.sh installs Debian's nodejs and npm).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import OpenAIStack

pytestmark = pytest.mark.integration

JS_DIR = Path(__file__).resolve().parents[1] / "openai_js"
CHAT_CLIENTS = ("openai-chat", "ai-chat")
RESPONSE_CLIENTS = ("openai-responses", "ai-responses")
SCENARIOS = ("plain", "stream", "history", "tool_round_trip", "structured")
FORECAST = "18 degrees and sunny"


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def node() -> str:
    binary, npm = shutil.which("node"), shutil.which("npm")
    if binary is None or npm is None:
        _missing("node and npm are not installed (scripts/test.sh installs Debian's nodejs, npm)")
    assert binary is not None and npm is not None
    installed = JS_DIR / "node_modules" / ".package-lock.json"
    lock = JS_DIR / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return binary


def _run(node: str, stack: OpenAIStack, client: str, scenario: str) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "AGENT_BASE_URL": stack.base_url,
        "AGENT_API_KEY": stack.key,
    }
    done = subprocess.run(
        [node, "clients.mjs", client, scenario],
        cwd=JS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{client} {scenario} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("client", CHAT_CLIENTS + RESPONSE_CLIENTS)
def test_client_scenario(node: str, openai_stack: OpenAIStack, client: str, scenario: str) -> None:
    seen = _run(node, openai_stack, client, scenario)
    if scenario in ("plain", "stream"):
        assert "84" in seen["text"]
        assert seen.get("tokens", 1) > 0
    elif scenario == "history":
        assert "84" in seen["text"]
    elif scenario == "tool_round_trip":
        assert seen["called"] == "get_weather" and seen["args"] == {"city": "Paris"}
        assert FORECAST in seen["text"]
    else:
        report = seen["object"]
        assert set(report) == {"city", "temperature", "sunny"} and report["temperature"] == 18
    if client == "openai-responses" and scenario == "plain":
        assert seen["items"] == ["mcp_call", "message"]
    if client == "openai-responses" and scenario == "stream":
        types = seen["types"]
        assert types[0] == "response.created" and types[-1] == "response.completed"
        assert "response.output_text.delta" in types


@pytest.mark.parametrize("client", RESPONSE_CLIENTS)
def test_background_polled(node: str, openai_stack: OpenAIStack, client: str) -> None:
    seen = _run(node, openai_stack, client, "background")
    assert seen["status"] == "completed" and "84" in seen["text"]


@pytest.mark.parametrize("client", RESPONSE_CLIENTS)
def test_previous_response_chain(node: str, openai_stack: OpenAIStack, client: str) -> None:
    seen = _run(node, openai_stack, client, "chain")
    first, second, third = seen["tokens"]
    assert first < second < third  # each turn held the ones before it, on the server
    assert seen["previous"].startswith("resp_") and "What is my name" in seen["text"]
