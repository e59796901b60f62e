// The alert region: every error the console meets is shown here (role="alert", so screen
// readers announce it) until the user dismisses it. Nothing is swallowed.
import { h } from "./dom.js";

const region = () => document.getElementById("alerts");

/** Show an error (an ApiError, an Error or a string), with what the user was doing. */
export function showError(error, doing) {
  const message = error && error.message ? error.message : String(error);
  const details = [];
  if (error && error.status) details.push(`HTTP ${error.status}`);
  if (error && error.type) details.push(error.type);
  if (error && error.requestId) details.push(`request ${error.requestId}`);
  const alert = h(
    "div",
    { class: "alert", dataset: { kind: "error" } },
    h(
      "div",
      {},
      h("p", {}, doing ? `${doing}: ` : "", h("strong", { class: "message", text: message })),
      details.length ? h("p", { class: "meta", text: details.join(" · ") }) : null,
    ),
    h("button", {
      type: "button",
      class: "secondary",
      text: "Dismiss",
      "aria-label": "Dismiss this message",
      on: { click: () => alert.remove() },
    }),
  );
  region().append(alert);
  return alert;
}

/** A notice (not an error), dismissable like one. */
export function showNotice(text) {
  const notice = h(
    "div",
    { class: "alert notice", dataset: { kind: "notice" } },
    h("p", { text }),
    h("button", { type: "button", class: "secondary", text: "Dismiss", on: { click: () => notice.remove() } }),
  );
  region().append(notice);
  return notice;
}

export function clearAlerts() {
  region().replaceChildren();
}

/** Run `work`; any failure is shown (an aborted request is not a failure). */
export async function guarded(doing, work) {
  try {
    return await work();
  } catch (error) {
    if (error && error.name === "AbortError") return undefined;
    showError(error, doing);
    return undefined;
  }
}
