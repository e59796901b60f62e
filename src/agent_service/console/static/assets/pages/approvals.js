// Approvals: the tenant's tool calls waiting for a person (GET /v1/approvals), approved or
// rejected with an optional comment (POST /v1/tasks/{task_id}/approvals/{approval_id}). A server
// without durable runs answers 404: the page says approvals are not enabled there.
import { get, post } from "../api.js";
import { guarded, showError } from "../alerts.js";
import { definitions, field, h, replace, select, statusBadge } from "../dom.js";
import { prettyJson, when } from "../format.js";

const STATUSES = [["pending", "pending"], ["approved", "approved"], ["rejected", "rejected"], ["expired", "expired"], ["cancelled", "cancelled"]];

export async function render(main, { signal }) {
  main.append(h("h1", { text: "Approvals" }));
  const status = select(STATUSES, "pending");
  const refresh = h("button", { type: "submit", text: "Refresh" });
  const form = h("form", { class: "filters", "aria-label": "Filter approvals" }, h("div", { class: "row" }, field("Status", status).field, refresh));
  const list = h("ol", { class: "approvals", "aria-label": "Approvals" });
  const summary = h("p", { class: "hint", role: "status", "aria-live": "polite" });
  main.append(form, summary, list);

  const load = async () => {
    replace(list);
    summary.textContent = "Loading…";
    let page;
    try {
      page = await get("/v1/approvals", { status: status.value, limit: 100 }, { signal });
    } catch (error) {
      summary.textContent = "";
      if (error.name === "AbortError") return;
      if (error.status === 404) {
        form.hidden = true;
        replace(list);
        main.append(
          h("p", { class: "alert notice", id: "approvals-disabled", text: "Approvals are not enabled on this server: it does not offer GET /v1/approvals (a version without durable runs)." }),
        );
        return;
      }
      showError(error, "Listing approvals");
      return;
    }
    summary.textContent = page.data.length ? `${page.data.length} ${status.value} ${page.data.length === 1 ? "approval" : "approvals"}.` : `No ${status.value} approval.`;
    for (const approval of page.data) list.append(item(approval, load));
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  await load();
}

function item(approval, reload) {
  const comment = h("textarea", { rows: "2", maxlength: "2000" });
  const pending = approval.status === "pending";
  const decide = async (decision, button) => {
    button.disabled = true;
    const body = { decision };
    if (comment.value.trim()) body.comment = comment.value.trim();
    const answer = await guarded(`Deciding on ${approval.tool}`, () =>
      post(`/v1/tasks/${encodeURIComponent(approval.task_id)}/approvals/${encodeURIComponent(approval.approval_id)}`, body),
    );
    button.disabled = false;
    if (answer) await reload();
  };
  const approve = h("button", { type: "button", text: "Approve" });
  const reject = h("button", { type: "button", class: "danger", text: "Reject" });
  approve.addEventListener("click", () => decide("approve", approve));
  reject.addEventListener("click", () => decide("reject", reject));
  return h(
    "li",
    { class: "approval", dataset: { approvalId: approval.approval_id } },
    h("h2", {}, `${approval.tool} `, statusBadge(approval.status)),
    definitions([
      ["task", h("a", { href: `#/tasks/${approval.task_id}`, class: "mono", text: approval.task_id })],
      ["agent", approval.agent],
      ["step", approval.step],
      ["asked", when(approval.created_at)],
      ["expires", approval.expires_at ? when(approval.expires_at) : null],
      ["on timeout", approval.on_timeout],
      ["reasoning", approval.reasoning],
      ["decision", approval.decision ? (typeof approval.decision === "string" ? approval.decision : JSON.stringify(approval.decision)) : null],
    ]),
    h("h3", { text: "Arguments" }),
    h("pre", { text: prettyJson(approval.arguments ?? {}) }),
    pending ? [field("Comment (optional; a rejection's comment reaches the model)", comment).field, h("div", { class: "actions" }, approve, reject)] : null,
  );
}
