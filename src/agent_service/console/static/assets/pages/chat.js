// Chat: pick an agent, talk to it with streaming (POST /v1/chat, "stream": true, read as SSE),
// and see for each answer its steps, sources, usage, trace id, and give it a thumbs up or down.
import { get, readEvents, send } from "../api.js";
import { guarded, showError } from "../alerts.js";
import { add, field, h, replace, select } from "../dom.js";
import { feedbackControl, resultMeta, sourceList, stepItem } from "../run.js";

const newSession = () => `console-${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;

export async function render(main, { signal }) {
  main.append(h("h1", { text: "Chat" }));
  const agents = await guarded("Loading the agents", () => get("/v1/agents", {}, { signal }));
  if (!agents) return;
  if (agents.data.length === 0) {
    main.append(h("p", { text: "No agent is available to this key's tenant." }));
    return;
  }
  const agentSelect = select(
    agents.data.map((a) => [a.name, `${a.name}${a.default ? " (default)" : ""} · ${a.model}`]),
    agents.default_agent,
  );
  agentSelect.name = "agent";
  const describe = h("p", { class: "hint", id: "agent-description" });
  const showAgent = () => {
    const agent = agents.data.find((a) => a.name === agentSelect.value);
    describe.textContent = agent
      ? `${agent.description || "No description."} Tools: ${agent.tools.length ? agent.tools.join(", ") : "none"}.`
      : "";
  };
  agentSelect.addEventListener("change", showAgent);
  showAgent();
  let sessionId = newSession();
  const transcript = h("ol", { class: "transcript", "aria-label": "Conversation" });
  const restart = h("button", {
    type: "button",
    class: "secondary",
    text: "New conversation",
    on: {
      click: () => {
        sessionId = newSession();
        replace(transcript);
        message.focus();
      },
    },
  });
  const agentField = field("Agent", agentSelect);
  main.append(h("div", { class: "chat-setup" }, agentField.field, restart), describe, transcript);

  const message = h("textarea", { name: "message", required: true, rows: "3" });
  const messageField = field("Message", message, "Enter sends; Shift+Enter starts a new line.");
  const sendButton = h("button", { type: "submit", text: "Send" });
  const stopButton = h("button", { type: "button", class: "secondary", text: "Stop", disabled: true });
  const composer = h(
    "form",
    { class: "composer", "aria-label": "Send a message" },
    messageField.field,
    h("div", { class: "actions" }, sendButton, stopButton),
  );
  main.append(composer);
  message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  let running = null;
  stopButton.addEventListener("click", () => running && running.abort());
  signal.addEventListener("abort", () => running && running.abort());
  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = message.value.trim();
    if (!text || running) return;
    message.value = "";
    running = new AbortController();
    sendButton.disabled = true;
    stopButton.disabled = false;
    try {
      await ask(transcript, { message: text, agent: agentSelect.value, session_id: sessionId }, running.signal);
    } finally {
      running = null;
      sendButton.disabled = false;
      stopButton.disabled = true;
      if (!signal.aborted) message.focus();
    }
  });
}

/** One question and its streamed answer, appended to the transcript. */
async function ask(transcript, body, signal) {
  transcript.append(
    h("li", { class: "turn user" }, h("p", { class: "who-said", text: "You" }), h("p", { class: "answer", text: body.message })),
  );
  const answer = h("p", { class: "answer", "aria-live": "polite", "aria-busy": "true" });
  const steps = h("ol", { class: "steps", "aria-label": "Steps" });
  const after = h("div", { class: "after" });
  const turn = h(
    "li",
    { class: "turn agent", dataset: { state: "streaming" } },
    h("p", { class: "who-said", text: body.agent }),
    answer,
    h("details", { class: "steps-box", open: true }, h("summary", { text: "Steps" }), steps),
    after,
  );
  transcript.append(turn);
  turn.scrollIntoView({ block: "nearest" });
  let runId = null;
  let ended = false;
  try {
    const response = await send("POST", "/v1/chat", { body: { ...body, stream: true }, signal, headers: { Accept: "text/event-stream" } });
    runId = response.headers.get("X-Run-Id");
    turn.dataset.runId = runId || "";
    await readEvents(response, ({ event, data }) => {
      if (event === "delta") {
        turn.dataset.deltas = String(Number(turn.dataset.deltas || 0) + 1);
        answer.append(typeof data === "string" ? data : data.text ?? data.content ?? "");
      } else if (event === "step") {
        steps.append(stepItem(data));
      } else if (event === "done") {
        ended = true;
        finish(turn, answer, after, data, runId || data.run_id);
      } else if (event === "error") {
        ended = true;
        turn.dataset.state = "failed";
        showError({ message: data.message, type: data.type }, "The run failed");
        after.append(h("p", { class: "status-error", text: `Run failed (${data.type}): ${data.message}` }));
      } else if (event === "approval_required") {
        ended = true;
        turn.dataset.state = "awaiting_approval";
        after.append(approvalNotice(data));
      }
    });
    if (!ended) throw new Error("the stream ended before the run did");
  } catch (error) {
    if (error.name === "AbortError") {
      turn.dataset.state = "stopped";
      after.append(h("p", { class: "hint", text: "Stopped." }));
    } else {
      turn.dataset.state = "failed";
      showError(error, "Chatting");
    }
  } finally {
    answer.setAttribute("aria-busy", "false");
  }
}

function finish(turn, answer, after, result, runId) {
  turn.dataset.state = "done";
  if (!answer.textContent && result.answer) answer.textContent = result.answer;
  add(after, sourceList(result.sources), resultMeta(result, runId));
  if (runId) after.append(feedbackControl(`/v1/runs/${encodeURIComponent(runId)}/feedback`));
}

function approvalNotice(data) {
  return h(
    "div",
    { class: "alert notice" },
    h(
      "p",
      {},
      `The tool ${data.tool} needs a person's approval; the run continues as task `,
      h("a", { href: `#/tasks/${data.task_id}`, text: data.task_id }),
      ". ",
      data.message || "",
      " ",
      h("a", { href: "#/approvals", text: "Open the approvals inbox" }),
    ),
  );
}
