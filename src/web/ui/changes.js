/* The dashboard's Changes tab (issue 17, D47): change requests filed by writes that need a second
 * person, with approve / reject for pending ones and after-the-fact decisions for emergency ones.
 * The server refuses a decision by the requester or a read-only key (403); this page only shows
 * its answer. Registers its loader in MUTT_TABS for dashboard.js. */
"use strict";
(() => {
  const { api, el, text, toast, time } = MUTT;
  const $ = (id) => document.getElementById(id);

  function describe(ch) {
    if (!ch) return "";
    let path = ch.path || "";
    for (const [k, v] of Object.entries(ch.params || {})) path = path.replace("{" + k + "}", v);
    return `${text(ch.method)} ${path}` + (ch.body ? " " + JSON.stringify(ch.body) : "");
  }

  async function decide(id, action) {
    const reason = prompt(`${action === "approve" ? "Approve" : "Reject"} change request ${id}? Reason:`, "");
    if (reason === null) return;
    try {
      const r = await api("POST", `/changes/${id}/${action}`, { reason: reason.trim() || null });
      toast(`Change request ${id}: ${r.status}`);
    } catch (err) { toast(err.message, true); }
    loadChanges().catch((e) => toast(e.message, true));
  }

  async function loadChanges() {
    const status = $("changes-status").value;
    const d = await api("GET", "/changes" + (status ? "?status=" + encodeURIComponent(status) : ""));
    $("changes-note").textContent = d.approval_required ? "" : "APPROVAL_REQUIRED is off: writes apply at once";
    const rows = d.changes.map((c) => {
      const open = c.status === "pending" || c.status === "emergency";
      const why = [c.emergency_reason ? "EMERGENCY: " + c.emergency_reason : null, c.justification, c.impact ? "impact: " + c.impact : null,
        c.rollback_plan ? "rollback: " + c.rollback_plan : null].filter(Boolean).join(" / ");
      return el("tr", { "data-id": c.id }, el("td", {}, c.id), el("td", { class: c.status === "emergency" ? "warn" : "" }, c.status),
        el("td", {}, text(c.scope)), el("td", {}, text(c.requested_by)), el("td", {}, time(c.created_at)),
        el("td", { class: "muted" }, c.status === "pending" ? time(c.expires_at) : ""),
        el("td", {}, el("code", {}, describe(c.change))), el("td", { class: "muted" }, why), el("td", {}, text(c.decided_by)),
        el("td", { class: "row" }, open ? el("button", { class: "btn", type: "button", onclick: () => decide(c.id, "approve") }, "Approve") : null,
          open ? el("button", { class: "btn danger", type: "button", onclick: () => decide(c.id, "reject") }, "Reject") : null));
    });
    $("changes-table").tBodies[0].replaceChildren(...rows);
  }

  $("changes-status").addEventListener("change", () => loadChanges().catch((e) => toast(e.message, true)));
  window.MUTT_TABS = window.MUTT_TABS || {};
  window.MUTT_TABS.changes = loadChanges;
})();
