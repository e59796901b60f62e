// Tasks: the history of finished runs (GET /v1/tasks) with filters and cursor pagination, a box
// to open any task by id (queued and running ones are not in the history yet), and a form to
// submit a new task.
import { get, post } from "../api.js";
import { guarded } from "../alerts.js";
import { field, h, replace, select, statusBadge } from "../dom.js";
import { count, ms, usd, when } from "../format.js";

const STATUSES = [["", "any"], ["succeeded", "succeeded"], ["failed", "failed"], ["cancelled", "cancelled"]];
const KINDS = [["", "any"], ["task", "queued tasks"], ["sync", "chats (sync runs)"]];

/** A datetime-local value (local time) as Unix seconds, or null. */
const seconds = (value) => (value ? new Date(value).getTime() / 1000 : null);

export async function render(main, { query, signal }) {
  main.append(h("h1", { text: "Tasks" }));
  const agents = await guarded("Loading the agents", () => get("/v1/agents", {}, { signal }));
  const agentNames = agents ? agents.data.map((a) => a.name) : [];

  main.append(submitForm(agentNames, agents ? agents.default_agent : null));
  main.append(openForm());

  const status = select(STATUSES, query.get("status") || "");
  const agent = select([["", "any"], ...agentNames.map((n) => [n, n])], query.get("agent") || "");
  const kind = select(KINDS, query.get("kind") || "");
  const from = h("input", { type: "datetime-local", value: query.get("from") || "" });
  const to = h("input", { type: "datetime-local", value: query.get("to") || "" });
  const filters = h(
    "form",
    { class: "filters", "aria-label": "Filters" },
    h("h2", { text: "History" }),
    h(
      "div",
      { class: "row" },
      field("Status", status).field,
      field("Agent", agent).field,
      field("Kind", kind).field,
      field("From", from).field,
      field("To", to).field,
      h("button", { type: "submit", text: "Apply filters" }),
    ),
  );
  const body = h("tbody");
  const table = h(
    "table",
    { "aria-label": "Finished runs" },
    h(
      "thead",
      {},
      h("tr", {}, ["Created", "Run", "Kind", "Status", "Agent", "Model", "User", "Duration", "Tokens", "Cost", "Feedback"].map(
        (name, index) => h("th", { scope: "col", class: index >= 7 && index <= 9 ? "num" : null, text: name }),
      )),
    ),
    body,
  );
  const more = h("button", { type: "button", class: "secondary", text: "Load more", hidden: true });
  const summary = h("p", { class: "hint", role: "status", "aria-live": "polite" });
  main.append(filters, table, h("div", { class: "pager" }, more, summary));

  let cursor = null;
  let shown = 0;
  const load = async (reset) => {
    if (reset) {
      cursor = null;
      shown = 0;
      replace(body);
    }
    const page = await guarded("Listing tasks", () =>
      get("/v1/tasks", {
        status: status.value,
        agent: agent.value,
        kind: kind.value,
        from: seconds(from.value),
        to: seconds(to.value),
        cursor,
        limit: 25,
      }, { signal }),
    );
    if (!page) return;
    for (const run of page.items) body.append(row(run));
    shown += page.items.length;
    cursor = page.next_cursor;
    more.hidden = !cursor;
    summary.textContent = shown ? `${shown} ${shown === 1 ? "run" : "runs"} shown${cursor ? "; more on the next page" : ""}.` : "No finished run matches.";
  };
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    load(true);
  });
  more.addEventListener("click", () => load(false));
  await load(true);
}

function row(run) {
  return h(
    "tr",
    { dataset: { runId: run.run_id } },
    h("td", { text: when(run.created_at) }),
    h("td", {}, h("a", { href: `#/tasks/${run.run_id}`, class: "mono", text: run.run_id.slice(0, 12), "aria-label": `Open run ${run.run_id}` })),
    h("td", { text: run.kind }),
    h("td", {}, statusBadge(run.status), run.error_type ? ` ${run.error_type}` : ""),
    h("td", { text: run.agent }),
    h("td", { text: run.model || "–" }),
    h("td", { text: run.user || "–" }),
    h("td", { class: "num", text: ms(run.duration_ms) }),
    h("td", { class: "num", text: count(run.usage.total_tokens) }),
    h("td", { class: "num", text: usd(run.usage.cost_usd) }),
    h("td", { text: run.feedback_score === 1 ? "good" : run.feedback_score === -1 ? "bad" : "–" }),
  );
}

function openForm() {
  const id = h("input", { type: "text", name: "task-id", pattern: "[A-Za-z0-9._:\\-]+", required: true, spellcheck: "false" });
  const form = h(
    "form",
    { class: "filters", "aria-label": "Open a task" },
    h("h2", { text: "Open a task" }),
    h("div", { class: "row" }, field("Task or run id", id).field, h("button", { type: "submit", text: "Open" })),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    window.location.hash = `#/tasks/${encodeURIComponent(id.value.trim())}`;
  });
  return form;
}

function submitForm(agentNames, defaultAgent) {
  const message = h("textarea", { name: "task-message", required: true, rows: "2" });
  const agent = select(agentNames.map((n) => [n, n]), defaultAgent);
  const button = h("button", { type: "submit", text: "Submit task" });
  const form = h(
    "form",
    { class: "filters", "aria-label": "Submit a task" },
    h("h2", { text: "Submit a task" }),
    field("Message", message).field,
    h("div", { class: "row" }, field("Agent", agent).field, button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    const accepted = await guarded("Submitting the task", () =>
      post("/v1/tasks", { message: message.value, agent: agent.value || undefined }),
    );
    button.disabled = false;
    if (accepted) window.location.hash = `#/tasks/${accepted.task_id}`;
  });
  return form;
}
