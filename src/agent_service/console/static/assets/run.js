// What a run did, shared by the chat and a task's page: its steps (tool calls with arguments,
// results and durations; LLM calls with model, tokens and cost), its sources, its usage and trace
// id, and the thumbs up/down feedback control.
import { post } from "./api.js";
import { showError } from "./alerts.js";
import { definitions, h, svg } from "./dom.js";
import { count, ms, prettyJson, usd } from "./format.js";

function disclosure(summary, text) {
  if (text === null || text === undefined || text === "") return null;
  return h("details", {}, h("summary", { text: summary }), h("pre", { text: prettyJson(text) }));
}

/** One step as a list item (`kind`: llm or tool). */
export function stepItem(step) {
  const head = h("p", { class: "step-head" });
  if (step.kind === "tool") {
    head.append(h("span", { class: "badge", text: "tool" }), step.name, ` · ${ms(step.duration_ms)}`);
  } else {
    const usage = step.usage || {};
    head.append(
      h("span", { class: "badge", text: "LLM" }),
      step.name,
      ` · ${ms(step.duration_ms)} · ${count(usage.input_tokens)} in / ${count(usage.output_tokens)} out tokens · ${usd(usage.cost_usd)}`,
    );
  }
  if (step.status === "error") head.append(" · ", h("span", { class: "status status-error", text: "error" }));
  const body = [];
  if (step.kind === "llm" && step.tool_calls && step.tool_calls.length) {
    body.push(h("p", { class: "hint", text: `asked for: ${step.tool_calls.join(", ")}` }));
  }
  if (step.fallback_from) body.push(h("p", { class: "hint", text: `fell back from ${step.fallback_from}` }));
  if (step.kind === "tool") {
    body.push(disclosure("arguments", step.input), disclosure("result", step.output));
  } else {
    body.push(disclosure("output", step.output));
  }
  if (step.error) body.push(h("p", { class: "status-error", text: step.error }));
  return h(
    "li",
    { class: `step kind-${step.kind} step-${step.status || "ok"}`, dataset: { kind: step.kind, name: step.name } },
    head,
    body,
  );
}

export function stepList(steps = []) {
  return h("ol", { class: "steps", "aria-label": "Steps" }, steps.map(stepItem));
}

/** The knowledge hits an answer used (kb, document, title or uri, excerpt, score). */
export function sourceList(sources) {
  if (!Array.isArray(sources) || sources.length === 0) return null;
  return h(
    "section",
    { "aria-label": "Sources" },
    h("h3", { text: "Sources" }),
    h(
      "ol",
      { class: "sources" },
      sources.map((source) => {
        const title = source.title || source.uri || source.document_id || "document";
        const link = source.uri && /^https?:\/\//.test(source.uri)
          ? h("a", { href: source.uri, rel: "noopener noreferrer", target: "_blank", text: title })
          : h("strong", { text: title });
        const where = [source.kb && `kb ${source.kb}`, source.document_id && `document ${source.document_id}`,
          typeof source.score === "number" && `score ${source.score.toFixed(3)}`].filter(Boolean).join(" · ");
        return h("li", { class: "source" }, link, where ? h("span", { class: "hint", text: ` (${where})` }) : null,
          source.excerpt ? h("blockquote", { text: source.excerpt }) : null);
      }),
    ),
  );
}

/** Usage, duration, model, agent, run and trace ids of a result. */
export function resultMeta(result, runId) {
  const usage = result.usage || {};
  return definitions(
    [
      ["agent", result.agent],
      ["model", result.model],
      ["duration", ms(result.duration_ms)],
      ["tokens", `${count(usage.input_tokens)} in / ${count(usage.output_tokens)} out`],
      ["cost", usd(usage.cost_usd)],
      ["run", runId || result.run_id ? h("code", { text: runId || result.run_id }) : null],
      ["trace", result.trace_id ? h("code", { class: "trace-id", text: result.trace_id }) : null],
      ["cached", result.cached ? "yes" : null],
    ],
    "run-meta",
  );
}

const sleep = (seconds, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, seconds * 1000);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    });
  });

// A thumb drawn as SVG (no emoji font needed); pointing down when `down`.
function thumb(down) {
  return svg(
    "svg",
    { viewBox: "0 0 24 24", width: "18", height: "18", "aria-hidden": "true", focusable: "false", class: "thumb" },
    svg("path", {
      transform: down ? "rotate(180 12 12)" : null,
      d: "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z",
    }),
  );
}

/**
 * Thumbs up/down for a finished run. `path` is the feedback route (POST /v1/runs/{id}/feedback
 * or /v1/tasks/{id}/feedback). A run archived a moment ago may answer 409 with Retry-After:
 * the control waits and sends again (a few times), saying so.
 */
export function feedbackControl(path, initial = null, signal = undefined) {
  const status = h("span", { class: "saved", role: "status", "aria-live": "polite" });
  const comment = h("input", { type: "text", maxlength: "2000", "aria-label": "Feedback comment (optional)", placeholder: "comment (optional)" });
  const up = h("button", { type: "button", "aria-pressed": String(initial === 1), "aria-label": "Good answer" }, thumb(false));
  const down = h("button", { type: "button", "aria-pressed": String(initial === -1), "aria-label": "Bad answer" }, thumb(true));
  const give = async (score) => {
    up.disabled = down.disabled = true;
    status.textContent = "saving…";
    const body = { score };
    if (comment.value.trim()) body.comment = comment.value.trim();
    try {
      for (let attempt = 0; ; attempt += 1) {
        try {
          await post(path, body, { signal });
          break;
        } catch (error) {
          if (error.status === 409 && error.retryAfter && attempt < 5) {
            status.textContent = `waiting for the run to be archived (${error.retryAfter} s)…`;
            await sleep(error.retryAfter, signal);
            continue;
          }
          throw error;
        }
      }
      up.setAttribute("aria-pressed", String(score === 1));
      down.setAttribute("aria-pressed", String(score === -1));
      status.textContent = score === 1 ? "Thanks: marked good" : "Thanks: marked bad";
    } catch (error) {
      status.textContent = "";
      if (error.name !== "AbortError") showError(error, "Saving feedback");
    } finally {
      up.disabled = down.disabled = false;
    }
  };
  up.addEventListener("click", () => give(1));
  down.addEventListener("click", () => give(-1));
  return h("div", { class: "feedback", role: "group", "aria-label": "Feedback" }, up, down, comment, status);
}
