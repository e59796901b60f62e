// The console's entry module: hash routing between the pages, the signed-in state, and the
// last-resort error handlers (an error no page caught is still shown).
import { onUnauthorized, session } from "./api.js";
import { clearAlerts, showError } from "./alerts.js";
import { replace } from "./dom.js";
import * as approvals from "./pages/approvals.js";
import * as chat from "./pages/chat.js";
import * as signin from "./pages/signin.js";
import * as task from "./pages/task.js";
import * as tasks from "./pages/tasks.js";
import * as usage from "./pages/usage.js";

const ROUTES = [
  [/^\/signin$/, signin, "signin"],
  [/^\/chat$/, chat, "chat"],
  [/^\/tasks$/, tasks, "tasks"],
  [/^\/tasks\/([A-Za-z0-9._:-]+)$/, task, "tasks"],
  [/^\/approvals$/, approvals, "approvals"],
  [/^\/usage$/, usage, "usage"],
];

let current = null; // AbortController of the page on screen: aborted when it is left

function path() {
  const hash = window.location.hash.replace(/^#/, "");
  const [route, query = ""] = hash.split("?");
  return { route: route || "/chat", query: new URLSearchParams(query) };
}

function showChrome(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  document.getElementById("who-text").textContent = signedIn ? `key …${session.key.slice(-4)}` : "";
}

async function render() {
  if (current) current.abort();
  current = new AbortController();
  const { route, query } = path();
  const signedIn = Boolean(session.key);
  if (!signedIn && route !== "/signin") {
    window.location.replace(`#/signin?next=${encodeURIComponent(route)}`);
    return;
  }
  showChrome(signedIn);
  const found = ROUTES.find(([pattern]) => pattern.test(route));
  const main = document.getElementById("main");
  for (const link of document.querySelectorAll("#nav a")) {
    if (found && link.dataset.route === found[2]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!found) {
    replace(main);
    showError(`no page ${route}`, "Opening a page");
    return;
  }
  const [pattern, page] = found;
  const params = route.match(pattern).slice(1);
  replace(main);
  try {
    await page.render(main, { params, query, signal: current.signal });
  } catch (error) {
    if (error.name !== "AbortError") showError(error, "Showing the page");
  }
  // Move focus to the new page's heading so keyboard and screen reader users land on it.
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
  document.title = `${heading ? heading.textContent : "console"} · agent-service`;
}

// The skip link moves focus to the page without touching the URL fragment (the router's).
document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});

document.getElementById("sign-out").addEventListener("click", () => {
  session.key = null;
  clearAlerts();
  window.location.hash = "#/signin";
});

onUnauthorized(() => {
  // The key was refused (revoked, or the server's keys changed): sign in again.
  session.key = null;
  showChrome(false);
  if (!window.location.hash.startsWith("#/signin")) {
    window.location.hash = `#/signin?next=${encodeURIComponent(path().route)}`;
  }
});

window.addEventListener("hashchange", render);
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason && event.reason.name === "AbortError") return;
  showError(event.reason, "Unexpected error");
});
window.addEventListener("error", (event) => showError(event.error || event.message, "Unexpected error"));

render();
