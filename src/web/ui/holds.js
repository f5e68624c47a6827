/* The audit page's report (GET /audit/report) and legal holds (GET/POST/DELETE /legal-holds).
 * Runs beside audit.js, which owns the key prompt (MUTT.init). */
"use strict";
(() => {
  const { api, el, text, toast, time } = MUTT;
  const $ = (id) => document.getElementById(id);
  const SECTIONS = [["by_operation", "By operation"], ["by_user", "By user"], ["by_table", "By table"], ["by_day", "By day"]];

  async function report() {
    const f = $("report-form"), p = new URLSearchParams();
    if (f.from.value) p.set("from", f.from.value);
    if (f.to.value) p.set("to", f.to.value);
    try {
      const r = await api("GET", "/audit/report?" + p.toString());
      $("report-total").textContent = `${r.total} changes from ${time(r.from)} to ${time(r.to)} (UTC)`;
      $("report-sections").replaceChildren(...SECTIONS.map(([k, title]) => el("div", { class: "card", "data-section": k },
        el("div", { class: "label" }, title),
        ...Object.entries(r[k] || {}).map(([name, n]) => el("div", { class: "row" }, el("span", {}, text(name)), el("span", { class: "spacer" }), el("b", {}, String(n)))))));
      $("report-top").tBodies[0].replaceChildren(...r.top_records.map((t) => el("tr", {},
        el("td", {}, text(t.table_name) + ":" + text(t.record)), el("td", { class: "num" }, String(t.changes)), el("td", {}, time(t.last_changed_at)))));
    } catch (e) { toast(e.message, true); }
  }

  async function holds() {
    try {
      const d = await api("GET", "/legal-holds");
      $("holds-table").tBodies[0].replaceChildren(...d.legal_holds.map((h) => el("tr", { "data-hold-id": h.id },
        el("td", {}, String(h.id)), el("td", {}, h.table), el("td", {}, time(h.from)), el("td", {}, time(h.to)),
        el("td", {}, text(h.hostname)), el("td", {}, text(h.changed_by)), el("td", {}, text(h.reason)), el("td", {}, text(h.created_by)),
        el("td", {}, el("button", { class: "btn danger", type: "button", onclick: () => lift(h) }, "Lift")))));
    } catch (e) { toast(e.message, true); }
  }

  async function lift(h) {
    const reason = prompt("Lift legal hold " + h.id + " (" + h.reason + ")? Reason:", "");
    if (reason === null) return;
    try { await api("DELETE", "/legal-holds/" + h.id, { reason }); toast("hold " + h.id + " lifted"); holds(); }
    catch (e) { toast(e.message, true); }
  }

  async function place(e) {
    e.preventDefault();
    const f = e.target, body = { table: f.table.value, from: f.from.value, to: f.to.value, reason: f.reason.value.trim() };
    for (const k of ["hostname", "changed_by"]) if (f[k].value.trim()) body[k] = f[k].value.trim();
    try { const h = await api("POST", "/legal-holds", body); toast("hold " + h.id + " placed"); f.reset(); holds(); }
    catch (err) { toast(err.message, true); }
  }

  $("report-form").addEventListener("submit", (e) => { e.preventDefault(); report(); });
  $("hold-form").addEventListener("submit", place);
  /* after the key is known: audit.js's MUTT.init calls its own loader; these wait for the key */
  function start() { if (MUTT.key()) { report(); holds(); } else setTimeout(start, 200); }
  start();
})();
