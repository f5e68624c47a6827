/* The audit viewer (GET /audit): filters, 20 rows a page, Prev/Next, change summaries and, for
 * dynamic config rows, a rollback button (POST /config/rollback). */
"use strict";
(() => {
  const { api, el, text, toast, time } = MUTT;
  const $ = (id) => document.getElementById(id);
  const LIMIT = 20;
  let page = 1, pages = 0;

  function query() {
    const f = $("filters");
    const p = new URLSearchParams({ page: String(page), limit: String(LIMIT) });
    for (const k of ["q", "changed_by", "operation", "table_name", "record_id"]) if (f[k].value.trim()) p.set(k, f[k].value.trim());
    /* datetime-local has no zone: the viewer reads and sends UTC */
    for (const k of ["start_date", "end_date"]) if (f[k].value) p.set(k, f[k].value + (f[k].value.length === 16 ? ":00" : "") + "Z");
    return p.toString();
  }

  function summary(r) {
    if (r.operation === "CREATE") return "Created with " + Object.keys(r.new_values || {}).length + " fields";
    if (r.operation === "DELETE") return "Record deleted";
    if (r.operation === "UPDATE" || r.operation === "ROLLBACK") {
      const o = r.old_values || {}, n = r.new_values || {};
      const changed = Object.keys(n).filter((k) => JSON.stringify(o[k]) !== JSON.stringify(n[k]) && k !== "source" && k !== "rolled_back_audit_id");
      return "Updated " + changed.length + " field(s): " + changed.map((k) => `${k} ${text(JSON.stringify(o[k]))} -> ${text(JSON.stringify(n[k]))}`).join(", ");
    }
    return JSON.stringify(r.new_values || {});
  }

  async function rollback(r) {
    const reason = prompt("Roll back change " + r.id + " of " + r.record_key + "? Reason:", "");
    if (reason === null) return;
    try { const x = await api("POST", "/config/rollback", { audit_id: r.id, reason }); toast(`${x.key}: ${text(x.old_value)} -> ${x.new_value}`); load(); }
    catch (e) { toast(e.message, true); }
  }

  async function load() {
    try {
      const d = await api("GET", "/audit?" + query());
      pages = d.pagination.pages;
      $("audit-table").tBodies[0].replaceChildren(...d.logs.map((r) => el("tr", { "data-audit-id": r.id },
        el("td", {}, time(r.changed_at)), el("td", {}, r.changed_by), el("td", {}, r.operation), el("td", {}, r.table_name),
        el("td", {}, text(r.record_id !== null ? r.record_id : r.record_key)), el("td", {}, summary(r)), el("td", {}, text(r.reason)),
        el("td", {}, r.table_name === "dynamic_config" ? el("button", { class: "btn secondary", type: "button", onclick: () => rollback(r) }, "Roll back") : null))));
      $("pageinfo").textContent = `page ${d.pagination.page} of ${Math.max(1, pages)} (${d.pagination.total} entries)`;
      $("prev").disabled = page <= 1;
      $("next").disabled = page >= pages;
    } catch (e) { toast(e.message, true); }
  }

  $("filters").addEventListener("submit", (e) => { e.preventDefault(); page = 1; load(); });
  $("filters").addEventListener("reset", () => { page = 1; setTimeout(load, 0); });
  $("prev").addEventListener("click", () => { if (page > 1) { page--; load(); } });
  $("next").addEventListener("click", () => { if (page < pages) { page++; load(); } });
  MUTT.init(load);
})();
