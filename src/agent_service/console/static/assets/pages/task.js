// One task (or sync run): its record (GET /v1/tasks/{id}) and its live event stream
// (GET /v1/tasks/{id}/events, SSE read with fetch so the key goes in the Authorization header;
// resumed with Last-Event-ID when the connection drops), then its steps and feedback.
import { get, readEvents, send } from "../api.js";
import { guarded, showError } from "../alerts.js";
import { add, definitions, h, replace, statusBadge } from "../dom.js";
import { ms, usd, when } from "../format.js";
import { feedbackControl, resultMeta, sourceList, stepList } from "../run.js";

const TERMINAL = new Set(["done", "error", "cancelled"]);
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

export async function render(main, { params, signal }) {
  const id = params[0];
  main.append(h("h1", {}, "Task ", h("code", { text: id })), h("p", {}, h("a", { href: "#/tasks", text: "← All tasks" })));
  const recordBox = h("section", { "aria-label": "Record" });
  const events = h("ol", { class: "events", "aria-label": "Events", "aria-live": "polite" });
  const streamState = h("p", { class: "hint", role: "status" });
  main.append(recordBox, h("h2", { text: "Events" }), streamState, events);

  const record = await guarded("Reading the task", () => get(`/v1/tasks/${encodeURIComponent(id)}`, {}, { signal }));
  if (!record) return;
  showRecord(recordBox, record, signal);
  await follow(id, events, streamState, signal, async () => {
    const latest = await guarded("Reading the task", () => get(`/v1/tasks/${encodeURIComponent(id)}`, {}, { signal }));
    if (latest) showRecord(recordBox, latest, signal);
  });
}

function showRecord(box, record, signal) {
  const result = record.result;
  const error = record.error;
  replace(
    box,
    definitions([
      ["status", statusBadge(record.status)],
      ["agent", record.agent],
      ["queue", record.queue || "none (a sync run)"],
      ["created", when(record.created_at)],
      ["started", record.started_at ? when(record.started_at) : null],
      ["finished", record.finished_at ? when(record.finished_at) : null],
      ["attempts", record.attempts],
      ["message", record.request ? h("span", { class: "answer", text: record.request.message }) : null],
      ["usage", record.usage ? `${record.usage.total_tokens} tokens · ${usd(record.usage.cost_usd)}` : null],
      ["trace", record.trace_id ? h("code", { text: record.trace_id }) : null],
      ["approval", record.approval_id ? h("a", { href: "#/approvals", text: record.approval_id }) : null],
      ["error", error ? `${error.type}: ${error.message}` : null],
    ]),
  );
  if (result) {
    add(
      box,
      h("h2", { text: "Answer" }),
      h("p", { class: "answer", text: result.answer }),
      sourceList(result.sources),
      resultMeta(result),
      h("h3", { text: "Steps" }),
      stepList(result.steps),
    );
  }
  if (FINISHED.has(record.status)) {
    box.append(h("h3", { text: "Feedback" }), feedbackControl(`/v1/tasks/${encodeURIComponent(record.task_id)}/feedback`, null, signal));
  }
}

function eventItem({ event, data, id }) {
  let text = "";
  if (event === "status") text = [data.status, data.attempt && `attempt ${data.attempt}`, data.approval_id && `approval ${data.approval_id}`].filter(Boolean).join(" · ");
  else if (event === "step") text = `${data.kind} ${data.name} · ${ms(data.duration_ms)}${data.status === "error" ? " · error" : ""}`;
  else if (event === "done") text = `${data.status || "succeeded"}: ${data.result ? data.result.answer : ""}`;
  else if (event === "error") text = `${data.error ? `${data.error.type}: ${data.error.message}` : JSON.stringify(data)}`;
  else if (event === "approval_required") text = `tool ${data.tool} waits for approval ${data.approval_id}`;
  else text = typeof data === "string" ? data : JSON.stringify(data);
  return h("li", { dataset: { event, id: id || "" } }, h("span", { class: "event-name", text: event }), text);
}

/** Follow the event stream to its terminal event, reconnecting after a drop. */
async function follow(id, list, state, signal, refresh) {
  let lastId = null;
  for (let attempt = 0; attempt < 6 && !signal.aborted; attempt += 1) {
    state.textContent = attempt ? "Reconnecting to the event stream…" : "Following the event stream…";
    try {
      const headers = { Accept: "text/event-stream" };
      if (lastId) headers["Last-Event-ID"] = lastId;
      const response = await send("GET", `/v1/tasks/${encodeURIComponent(id)}/events`, { signal, headers });
      let ended = false;
      await readEvents(response, (item) => {
        if (item.id) lastId = item.id;
        list.append(eventItem(item));
        if (item.event === "status" || item.event === "approval_required") refresh();
        if (TERMINAL.has(item.event)) ended = true;
      });
      if (ended) {
        state.textContent = "The run has ended.";
        await refresh();
        return;
      }
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status && error.status < 500) {
        state.textContent = "";
        showError(error, "Following the events");
        return;
      }
      showError(error, "Following the events (retrying)");
    }
    await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
  }
  if (!signal.aborted) state.textContent = "The event stream stopped; reload the page to follow it again.";
}
