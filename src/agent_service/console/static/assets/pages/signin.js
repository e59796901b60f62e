// Sign in: the key is checked against GET /v1/agents and kept in sessionStorage only.
import { get, session } from "../api.js";
import { clearAlerts, showError } from "../alerts.js";
import { field, h } from "../dom.js";

export async function render(main, { query }) {
  const input = h("input", {
    type: "password",
    name: "api-key",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const key = field("API key", input, "Kept in this browser tab only (sessionStorage); closing the tab forgets it.");
  const button = h("button", { type: "submit", text: "Sign in" });
  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title", text: "Sign in" }),
    h("p", { class: "hint", text: "Use an API key of this service (agent-service up prints one)." }),
    key.field,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const candidate = input.value.trim();
    if (!candidate) {
      showError("enter an API key", "Signing in");
      return;
    }
    button.disabled = true;
    try {
      await get("/v1/agents", {}, { key: candidate });
      clearAlerts();
      session.key = candidate;
      const next = query.get("next");
      window.location.hash = next && next !== "/signin" ? `#${next}` : "#/chat";
    } catch (error) {
      showError(error, "Signing in");
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  main.append(form);
}
