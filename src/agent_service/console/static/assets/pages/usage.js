// Usage: totals, then charts over time (runs, cost, error rate, p95 latency; runs per agent and
// per model; cost and p95 per model) and the top users and tools, all from GET /v1/usage.
import { get } from "../api.js";
import { guarded } from "../alerts.js";
import { definitions, field, h, replace, select } from "../dom.js";
import { count, ms, percent, usd } from "../format.js";
import { timeChart } from "../charts.js";

const WINDOWS = [
  ["1h", "last hour", 3600, "1m"],
  ["24h", "last 24 hours", 86400, "1h"],
  ["7d", "last 7 days", 7 * 86400, "6h"],
  ["30d", "last 30 days", 30 * 86400, "1d"],
];
const STEP = { "1m": 60, "1h": 3600, "6h": 21600, "1d": 86400 };

export async function render(main, { query, signal }) {
  main.append(h("h1", { text: "Usage" }));
  const windowSelect = select(WINDOWS.map(([v, label]) => [v, label]), query.get("window") || "24h");
  const form = h(
    "form",
    { class: "filters", "aria-label": "Window" },
    h("div", { class: "row" }, field("Window", windowSelect).field, h("button", { type: "submit", text: "Show" })),
  );
  const body = h("div", { "aria-live": "polite", "aria-busy": "true" });
  main.append(form, body);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    window.location.hash = `#/usage?window=${windowSelect.value}`;
  });
  const [, , span, interval] = WINDOWS.find(([v]) => v === windowSelect.value) || WINDOWS[1];
  const end = Math.ceil(Date.now() / 1000);
  const start = end - span;
  const ask = (more) => get("/v1/usage", { from: start, to: end, ...more }, { signal });
  const report = await guarded("Reading usage", () =>
    Promise.all([
      ask({}),
      ask({ interval }),
      ask({ interval, group_by: "agent" }),
      ask({ interval, group_by: "model" }),
      ask({ group_by: "user", limit: 10 }),
      ask({ group_by: "tool", limit: 10 }),
    ]),
  );
  body.setAttribute("aria-busy", "false");
  if (!report) return;
  const [totals, overall, perAgent, perModel, users, tools] = report;
  const step = STEP[interval];
  const first = Math.floor(start / step) * step;
  const buckets = [];
  for (let t = first; t < end; t += step) buckets.push(t);
  const chart = (id, title, kind, rows, value, format, key) => {
    const groups = new Map();
    for (const row of rows) {
      const name = key ? row.group[key] ?? "(none)" : "";
      if (!groups.has(name)) groups.set(name, new Map());
      groups.get(name).set(row.bucket, value(row));
    }
    if (!groups.size) groups.set("", new Map());
    const series = [...groups.entries()].slice(0, 6).map(([name, byBucket]) => ({
      name,
      points: buckets.map((t) => [t, byBucket.has(t) ? byBucket.get(t) : kind === "bar" ? 0 : null]),
    }));
    return timeChart({ id, title, kind, series, start: first, end: first + buckets.length * step, step, format });
  };
  const whole = totals.rows[0];
  replace(
    body,
    whole
      ? definitions(
          [
            ["runs", count(whole.runs)],
            ["errors", `${count(whole.errors)} (${percent(whole.runs ? whole.errors / whole.runs : 0)})`],
            ["tokens", count(whole.total_tokens)],
            ["cost", usd(whole.cost_usd)],
            ["p50 latency", ms(whole.latency_ms_p50)],
            ["p95 latency", ms(whole.latency_ms_p95)],
            ["feedback", `${whole.feedback_up} good · ${whole.feedback_down} bad`],
          ].map(([term, value]) => [term, value]),
          "cards",
        )
      : h("p", { text: "No runs in this window." }),
    h("h2", { text: "Over time" }),
    h(
      "div",
      { class: "charts" },
      chart("runs", "Runs", "bar", overall.rows, (r) => r.runs, count),
      chart("cost", "Cost (USD)", "bar", overall.rows, (r) => r.cost_usd, usd),
      chart("error-rate", "Error rate", "line", overall.rows, (r) => (r.runs ? r.errors / r.runs : null), percent),
      chart("p95", "p95 latency", "line", overall.rows, (r) => r.latency_ms_p95, ms),
    ),
    h("h2", { text: "Per agent and model" }),
    h(
      "div",
      { class: "charts" },
      chart("runs-by-agent", "Runs per agent", "bar", perAgent.rows, (r) => r.runs, count, "agent"),
      chart("runs-by-model", "Runs per model", "bar", perModel.rows, (r) => r.runs, count, "model"),
      chart("cost-by-model", "Cost per model (USD)", "bar", perModel.rows, (r) => r.cost_usd, usd, "model"),
      chart("p95-by-model", "p95 latency per model", "line", perModel.rows, (r) => r.latency_ms_p95, ms, "model"),
    ),
    h(
      "div",
      { class: "tables" },
      topTable("Top users", "user", users.rows, [["Runs", (r) => count(r.runs)], ["Errors", (r) => count(r.errors)], ["Tokens", (r) => count(r.total_tokens)], ["Cost", (r) => usd(r.cost_usd)]]),
      topTable("Top tools", "tool", tools.rows, [["Runs", (r) => count(r.runs)], ["Calls", (r) => count(r.tool_calls)], ["Tool errors", (r) => count(r.tool_errors)], ["Cost", (r) => usd(r.cost_usd)]]),
    ),
  );
}

function topTable(title, key, rows, columns) {
  return h(
    "section",
    { "aria-label": title },
    h("h2", { text: title }),
    rows.length
      ? h(
          "table",
          { dataset: { table: key } },
          h("thead", {}, h("tr", {}, h("th", { scope: "col", text: key }), columns.map(([name]) => h("th", { scope: "col", class: "num", text: name })))),
          h("tbody", {}, rows.map((row) => h("tr", {}, h("th", { scope: "row", text: row.group[key] ?? "(none)" }), columns.map(([, value]) => h("td", { class: "num", text: value(row) }))))),
        )
      : h("p", { class: "hint", text: `No ${key} in this window.` }),
  );
}
