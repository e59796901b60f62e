"""The web console in a real Chromium against a real stack: a simulator, Redis, Postgres (history
on), the API over HTTP and a Celery worker, one of each for the module, and one browser.

Each test opens a fresh browser context (its own sessionStorage) and ends with no console
error, page error or CSP violation. A screenshot of each page is saved (``browser.py`` says
where); ``docs/images/console-*.png`` are made by running this module with
``AGENT_TEST_CONSOLE_SCREENSHOTS=docs/images``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import RedisServer, Sim
from tests.console.browser import Tab, sign_in
from tests.history.service import Service, history_stack_env, run_chat, wait_archived
from tests.integration.stack import wait_for_file
from tests.postgres import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(180)]

TENANT = "acme"


@pytest.fixture(scope="module")
def service(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    sim: Sim,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    with postgres_server.database() as pg_url:
        env, keys = history_stack_env(
            redis_server.url, {"sim": sim.url}, pg_url, log_dir, tmp_path_factory.mktemp("console")
        )
        worker, ready = env.launch_worker()  # starts while the API does
        running = Service("", pg_url, keys, env, 0, [worker])
        try:
            api, running.url = env.start_api()
            running.procs.append(api)
            wait_for_file(worker, ready, timeout=60)
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def console_url(service: Service) -> str:
    return service.url


def test_sign_in_refuses_a_wrong_key_then_shows_the_agents(
    tab: Tab, service: Service, shots: Path
) -> None:
    page = tab.page
    tab.expect_error(401, r"/v1/agents$")
    tab.open("/usage")
    expect(page).to_have_url(re.compile(r"#/signin\?next=%2Fusage$"))
    page.get_by_label("API key").fill("ak_not_a_key_of_this_service")
    page.get_by_role("button", name="Sign in").click()
    alert = page.locator("#alerts .alert")
    expect(alert).to_contain_text("invalid API key")
    expect(alert).to_contain_text("HTTP 401")
    tab.screenshot(shots, "signin")
    assert page.evaluate("sessionStorage.length") == 0

    page.get_by_label("API key").fill(service.keys[TENANT])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#/usage$"))  # back where the user was going
    page.get_by_role("link", name="Chat").click()
    expect(page.get_by_role("heading", name="Chat", level=1)).to_be_focused()
    expect(page.get_by_label("Agent")).to_contain_text("default")
    # The key lives in this tab's sessionStorage only.
    assert page.evaluate("Object.values(sessionStorage)") == [service.keys[TENANT]]
    assert page.evaluate("localStorage.length") == 0
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_chat_streams_the_answer_with_its_tool_step_and_takes_feedback(
    tab: Tab, service: Service, shots: Path
) -> None:
    page = tab.page
    sign_in(tab, service.keys[TENANT])
    message = page.get_by_role("textbox", name="Message")
    message.fill("what is 12*(3+4)?")
    message.press("Enter")
    turn = page.locator("li.turn.agent").last
    expect(turn).to_have_attribute("data-state", "done")
    assert int(turn.get_attribute("data-deltas") or 0) >= 1  # the answer came as SSE deltas
    expect(turn.locator(".answer")).to_contain_text("84")
    tool = turn.locator("li.step[data-kind=tool][data-name=calculator]")
    expect(tool).to_contain_text("calculator")
    tool.get_by_text("arguments").click()
    expect(tool.locator("pre").first).to_contain_text("12*(3+4)")
    llm = turn.locator("li.step[data-kind=llm]").first
    expect(llm).to_contain_text(re.compile(r"sim · .* in / .* out tokens · \$"))
    run_id = turn.get_attribute("data-run-id")
    assert run_id
    expect(turn.locator(".run-meta")).to_contain_text(run_id)

    turn.get_by_role("button", name="Good answer").click()
    expect(turn.get_by_role("status")).to_have_text("Thanks: marked good")
    expect(turn.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")
    tab.screenshot(shots, "chat")
    with service.client(TENANT) as client:
        runs = client.get("/v1/tasks", params={"kind": "sync"}).json()["items"]
    assert {run["run_id"]: run["feedback_score"] for run in runs}[run_id] == 1


def test_a_task_shows_its_events_and_takes_feedback_and_lists_in_history(
    tab: Tab, service: Service, shots: Path
) -> None:
    page = tab.page
    sign_in(tab, service.keys[TENANT], "/tasks")
    submit = page.get_by_role("form", name="Submit a task")
    submit.get_by_role("textbox", name="Message").fill("what is 12*(3+4)?")
    submit.get_by_role("button", name="Submit task").click()
    expect(page).to_have_url(re.compile(r"#/tasks/[0-9a-f]{32}$"))
    task_id = page.url.rsplit("/", 1)[1]
    events = page.get_by_role("list", name="Events")
    expect(events.locator("li[data-event=done]")).to_contain_text("84")
    expect(events.locator("li[data-event=step]")).to_contain_text(["sim", "calculator", "sim"])
    expect(events.locator("li[data-event=status]").first).to_be_visible()
    expect(page.locator(".record .status")).to_have_text("succeeded")
    page.get_by_role("button", name="Bad answer").click()
    expect(page.get_by_role("group", name="Feedback").get_by_role("status")).to_have_text(
        "Thanks: marked bad"
    )
    tab.screenshot(shots, "task")
    with service.client(TENANT) as client:
        runs = client.get("/v1/tasks", params={"kind": "task"}).json()["items"]
    assert {run["run_id"]: run["feedback_score"] for run in runs}[task_id] == -1

    page.get_by_role("link", name="← All tasks").click()
    row = page.locator(f"tr[data-run-id='{task_id}']")
    expect(row).to_contain_text("succeeded")
    filters = page.get_by_role("form", name="Filters")
    filters.get_by_label("Status").select_option("failed")
    filters.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_text("No finished run matches.")).to_be_visible()
    expect(row).to_have_count(0)
    filters.get_by_label("Status").select_option("succeeded")
    filters.get_by_label("Kind").select_option("task")
    filters.get_by_role("button", name="Apply filters").click()
    expect(row).to_be_visible()
    tab.screenshot(shots, "tasks")


def test_the_approvals_page_says_when_the_server_has_no_approvals(
    tab: Tab, service: Service, shots: Path
) -> None:
    with service.client(TENANT) as client:
        offered = client.get("/v1/approvals", params={"status": "pending"}).status_code
    tab.expect_error(404, r"/v1/approvals$")
    sign_in(tab, service.keys[TENANT], "/approvals")
    page = tab.page
    if offered == 404:
        expect(page.locator("#approvals-disabled")).to_contain_text(
            "Approvals are not enabled on this server"
        )
    else:
        assert offered == 200
        expect(page.get_by_text("No pending approval.")).to_be_visible()
    tab.screenshot(shots, "approvals-disabled")


def test_the_usage_page_draws_the_runs_made(tab: Tab, service: Service, shots: Path) -> None:
    with service.client(TENANT) as client:
        run_id, answer = run_chat(client, metadata={"user": "alice"})
        assert answer.status_code == 200, answer.text
    wait_archived(service.pg_url, [run_id])
    sign_in(tab, service.keys[TENANT], "/usage")
    page = tab.page
    for chart in ("runs", "cost", "error-rate", "p95", "runs-by-agent", "runs-by-model"):
        marks = page.locator(f"figure[data-chart='{chart}'] svg .mark")
        expect(marks.first).to_be_attached()
    assert page.locator("figure[data-chart='runs'] svg rect.mark").count() >= 1
    expect(page.locator("figure[data-chart='runs-by-agent'] .legend")).to_contain_text("default")
    expect(page.locator("table[data-table=user]")).to_contain_text("alice")
    expect(page.locator("table[data-table=tool]")).to_contain_text("calculator")
    expect(page.locator(".cards")).to_contain_text("runs")
    tab.screenshot(shots, "usage")


def test_keyboard_skip_link_and_sources_rendered_as_text(tab: Tab, service: Service) -> None:
    page = tab.page
    sign_in(tab, service.keys[TENANT])
    expect(page.get_by_role("heading", name="Chat", level=1)).to_be_focused()
    # Backwards from the page's heading, the tab order is the header's, then the skip link.
    for role, name in [
        ("button", "Sign out"),
        ("link", "Usage"),
        ("link", "Approvals"),
        ("link", "Tasks"),
        ("link", "Chat"),
        ("link", "Skip to content"),
    ]:
        page.keyboard.press("Shift+Tab")
        expect(page.get_by_role(role, name=name, exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    expect(page).to_have_url(re.compile(r"#/chat$"))
    # An answer's sources (knowledge hits) through the console's own module, with a title that
    # looks like markup: shown as text, and only http(s) URIs become links.
    page.evaluate(
        """async () => {
        const app = document.querySelector("script[type=module]").src;
        const { sourceList } = await import(app.replace(/app\\.js$/, "run.js"));
        document.getElementById("main").append(sourceList([
          {kb: "handbook", document_id: "doc-7", title: "<img src=x onerror=alert(1)>",
           uri: "https://docs.example.com/refunds", excerpt: "Refunds within 30 days.",
           score: 0.8123},
          {kb: "handbook", document_id: "doc-9", uri: "file:///etc/passwd", excerpt: "x",
           score: 0.5},
        ]));
      }"""
    )
    sources = page.get_by_role("region", name="Sources")
    items = sources.locator("li.source")
    expect(items).to_have_count(2)
    link = items.nth(0).get_by_role("link")
    expect(link).to_have_text("<img src=x onerror=alert(1)>")
    expect(link).to_have_attribute("href", "https://docs.example.com/refunds")
    expect(items.nth(0)).to_contain_text("kb handbook · document doc-7 · score 0.812")
    expect(items.nth(0).locator("blockquote")).to_have_text("Refunds within 30 days.")
    expect(sources.locator("img")).to_have_count(0)
    expect(items.nth(1).get_by_role("link")).to_have_count(0)
    expect(items.nth(1)).to_contain_text("file:///etc/passwd")
