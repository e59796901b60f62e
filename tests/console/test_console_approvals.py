"""The approvals inbox in a real Chromium against a real stack whose agent gates a tool: a chat
reaches the gated call and hands over to a task, the inbox lists it, a person approves it with a
comment, and the task resumes and answers.

Approvals come with durable runs (``agents[].approvals``): on a build without them this module
skips, saying so (the "not enabled" page is tested in ``test_console_browser.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import expect

from agent_service.agentconfig.agents import AgentSpec
from tests.conftest import RedisServer, Sim
from tests.console.browser import Tab, sign_in
from tests.integration.stack import model, secured_env, wait_for_file
from tests.procs import Proc

if "approvals" not in AgentSpec.model_fields:
    pytest.skip("this build has no approvals (agents[].approvals)", allow_module_level=True)

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(180)]

TENANT = "acme"
ASK = 'call tool calculator with {"expression": "6*7"}'


def gated_config(path: Path, sim_url: str) -> Path:
    """One agent, ``gated``, whose calculator calls wait for a person."""
    doc: dict[str, Any] = {
        "defaultModel": "sim",
        "models": [model("sim", sim_url)],
        "agents": [
            {
                "name": "gated",
                "description": "Arithmetic, each calculation approved by a person.",
                "tools": {"calculator": True},
                "approvals": {"tools": [{"tool": "calculator", "approval": "always"}]},
            }
        ],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def stack(
    redis_server: RedisServer, sim: Sim, log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    root = tmp_path_factory.mktemp("console-approvals")
    keys = {TENANT: f"ak_test_{TENANT}_{'x' * 20}"}
    config = gated_config(root / "agent.yaml", sim.url)
    env = secured_env(redis_server.url, sim.url, log_dir, root, keys, AGENT_CONFIG_FILE=str(config))
    worker, ready = env.launch_worker()
    procs: list[Proc] = [worker]
    try:
        api, url = env.start_api()
        procs.append(api)
        wait_for_file(worker, ready, timeout=60)
        yield url, keys
    finally:
        for proc in reversed(procs):
            proc.stop()


@pytest.fixture(scope="module")
def console_url(stack: tuple[str, dict[str, str]]) -> str:
    return stack[0]


def test_a_gated_tool_call_is_approved_in_the_inbox_and_the_task_answers(
    tab: Tab, stack: tuple[str, dict[str, str]], shots: Path
) -> None:
    page = tab.page
    sign_in(tab, stack[1][TENANT])
    message = page.get_by_role("textbox", name="Message")
    message.fill(ASK)
    message.press("Enter")
    turn = page.locator("li.turn.agent").last
    expect(turn).to_have_attribute("data-state", "awaiting_approval")
    expect(turn).to_contain_text("needs a person's approval")
    task_link = turn.locator("a[href^='#/tasks/']")
    task_id = (task_link.get_attribute("href") or "").rsplit("/", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{32}", task_id)

    turn.get_by_role("link", name="Open the approvals inbox").click()
    item = page.locator("li.approval").filter(has_text=task_id)
    expect(item).to_contain_text("calculator")
    expect(item).to_contain_text("pending")
    assert json.loads(item.locator("pre").inner_text()) == {"expression": "6*7"}
    item.get_by_label(re.compile("^Comment")).fill("fine by me")
    tab.screenshot(shots, "approvals")
    item.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("No pending approval.")).to_be_visible()

    page.locator("form.filters").get_by_label("Status").select_option("approved")
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("li.approval").filter(has_text=task_id)).to_contain_text("approved")

    tab.open(f"/tasks/{task_id}")
    events = page.get_by_role("list", name="Events")
    expect(events.locator("li[data-event=approval_required]").first).to_contain_text("calculator")
    expect(events.locator("li[data-event=done]")).to_contain_text("42")
    expect(page.locator(".record .status")).to_have_text("succeeded")
