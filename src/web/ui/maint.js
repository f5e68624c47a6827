/* The dashboard's Maintenance tab (issue 16 §3): create a window (hostname glob, optional team,
 * start/end in local time sent as ISO 8601 UTC, reason, summary on/off), list windows with their
 * state, and end an active one (DELETE: ends it now, its summary is still sent) or remove a
 * scheduled one. Registers its loader in MUTT_TABS; dashboard.js calls it when the tab shows. */
"use strict";
(() => {
  const { api, el, text, toast, time } = MUTT;
  const $ = (id) => document.getElementById(id);
  const form = $("maint-form");

  /* <input type=datetime-local> value (local time) -> ISO 8601 UTC; "" -> null */
  function isoOf(v) { return v ? new Date(v).toISOString() : null; }
  function localValue(d) {
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }
  function defaults() {
    const now = new Date();
    form.starts_at.value = localValue(now);
    form.ends_at.value = localValue(new Date(now.getTime() + 3600e3));
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      hostname_pattern: form.hostname_pattern.value.trim(),
      starts_at: isoOf(form.starts_at.value),
      ends_at: isoOf(form.ends_at.value),
      summary: form.summary.value === "true",
    };
    if (form.team.value.trim()) body.team = form.team.value.trim();
    if (form.reason.value.trim()) body.reason = form.reason.value.trim();
    try {
      const w = await api("POST", "/maintenance-windows", body);
      toast(`Maintenance window ${w.id} created (${w.state})`);
      form.reset();
      defaults();
      load();
    } catch (err) { toast(err.message, true); }
  });

  async function end(w) {
    const what = w.state === "active" ? "End" : "Delete";
    const reason = prompt(`${what} maintenance window ${w.id} (${w.hostname_pattern})? Reason:`, "");
    if (reason === null) return;
    try {
      const r = await api("DELETE", "/maintenance-windows/" + w.id, reason.trim() ? { reason: reason.trim() } : undefined);
      toast(r.message);
      load();
    } catch (err) { toast(err.message, true); }
  }

  async function load() {
    const d = await api("GET", "/maintenance-windows");
    const cls = { active: "warn", scheduled: "", ended: "muted" };
    $("maint-table").tBodies[0].replaceChildren(...d.maintenance_windows.map((w) => el("tr", { "data-id": w.id },
      el("td", {}, String(w.id)), el("td", { class: cls[w.state] || "" }, w.state), el("td", {}, w.hostname_pattern),
      el("td", {}, text(w.team)), el("td", {}, time(w.starts_at)), el("td", {}, time(w.ends_at)),
      el("td", {}, w.summary ? "yes" : "no"), el("td", {}, text(w.reason)), el("td", { class: "muted" }, text(w.created_by)),
      el("td", {}, w.state === "ended" ? null : el("button", { class: "btn danger", type: "button", onclick: () => end(w) },
        w.state === "active" ? "End now" : "Delete")))));
  }

  defaults();
  window.MUTT_TABS = window.MUTT_TABS || {};
  window.MUTT_TABS.maint = load;
})();
