/* The dashboard (GET /): overview with live rates, a 24 h SVG chart, queue/DLQ depths and the
 * breaker; rules (create, edit, test over recent events, activate/deactivate, delete), dev hosts, teams, dynamic config
 * (edit with a reason) and DLQs (newest items, replay). Everything goes through /api/v2. */
"use strict";
(() => {
  const { api, el, text, toast, time } = MUTT;
  const $ = (id) => document.getElementById(id);
  let current = "overview";
  let timer = null;

  /* ---------------------------------------------------------------- tabs */
  function show(tab) {
    current = tab;
    document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === tab));
    document.querySelectorAll("main > section").forEach((s) => s.classList.toggle("active", s.id === tab));
    refresh();
  }
  document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => show(b.dataset.tab)));

  function refresh() {
    const loaders = { overview: loadOverview, rules: loadRules, hosts: loadHosts, teams: loadTeams, config: loadConfig, dlq: loadDlq };
    /* tabs kept in files of their own register in MUTT_TABS (changes.js) */
    const load = loaders[current] || (window.MUTT_TABS || {})[current];
    if (load) load().catch((e) => toast(e.message, true));
  }

  /* ---------------------------------------------------------------- overview */
  function drawChart(labels, data) {
    const svg = $("chart");
    const W = svg.clientWidth || 600, H = svg.clientHeight || 220, L = 40, B = 22, T = 10, R = 8;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const ns = "http://www.w3.org/2000/svg";
    const mk = (tag, a) => { const n = document.createElementNS(ns, tag); for (const k in a) n.setAttribute(k, a[k]); svg.appendChild(n); return n; };
    const max = Math.max(1, ...data);
    const x = (i) => L + (i * (W - L - R)) / Math.max(1, data.length - 1);
    const y = (v) => T + (H - T - B) * (1 - v / max);
    for (let g = 0; g <= 4; g++) {
      const v = (max * g) / 4;
      mk("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#2a3642" });
      mk("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" }).textContent = v >= 10 ? Math.round(v) : v.toFixed(1);
    }
    const step = W < 500 ? 6 : 3;
    labels.forEach((l, i) => { if (i % step === 0 || i === labels.length - 1) mk("text", { x: x(i), y: H - 6, "text-anchor": i === labels.length - 1 ? "end" : i === 0 ? "start" : "middle" }).textContent = l; });
    const pts = data.map((v, i) => `${x(i)},${y(v)}`).join(" ");
    mk("polygon", { points: `${x(0)},${y(0)} ${pts} ${x(data.length - 1)},${y(0)}`, fill: "rgba(74,163,255,.15)" });
    mk("polyline", { points: pts, fill: "none", stroke: "#4aa3ff", "stroke-width": 2 });
    data.forEach((v, i) => { const c = mk("circle", { cx: x(i), cy: y(v), r: 2.5, fill: "#4aa3ff" }); const t = document.createElementNS(ns, "title"); t.textContent = `${labels[i]} UTC: ${v}/min`; c.appendChild(t); });
  }

  async function loadOverview() {
    try {
      const m = await api("GET", "/metrics");
      $("m-cur").textContent = m.summary.current_rate_1m;
      $("m-15").textContent = m.summary.avg_rate_15m;
      $("m-60").textContent = m.summary.avg_rate_1h;
      const st = (m.breaker && m.breaker.state) || "CLOSED";
      $("m-breaker").textContent = st;
      $("m-breaker").className = "value " + (st === "CLOSED" ? "ok" : st === "OPEN" ? "bad" : "warn");
      $("q-ingest").textContent = m.queues.ingest;
      $("q-alert").textContent = m.queues.alert;
      $("q-retry").textContent = m.queues.retry;
      for (const n of ["alerter", "moog", "dead"]) { $("d-" + n).textContent = m.dlq[n]; $("d-" + n).className = "value" + (m.dlq[n] > 0 ? " warn" : ""); }
      drawChart(m.chart_24h.labels, m.chart_24h.data);
      $("updated").textContent = "MUTT | updated " + time(m.generated_at) + " UTC | Refreshes every 10 seconds";
    } catch (e) {
      for (const id of ["m-cur", "m-15", "m-60"]) $(id).textContent = "Error";
      throw e;
    }
    const a = await api("GET", "/audit?limit=8");
    const tb = $("recent").tBodies[0];
    tb.replaceChildren(...a.logs.map((r) => el("tr", {}, el("td", {}, time(r.changed_at)), el("td", {}, text(r.changed_by)),
      el("td", {}, r.operation), el("td", {}, r.table_name), el("td", {}, text(r.record_id !== null ? r.record_id : r.record_key)), el("td", {}, text(r.reason)))));
  }

  /* ---------------------------------------------------------------- rules */
  const form = $("rule-form");
  function resetRuleForm() {
    form.reset();
    form.id.value = "";
    $("rule-form-title").textContent = "New rule";
    $("rule-save").textContent = "Create rule";
    $("rule-test-result").hidden = true;
  }
  $("rule-cancel").addEventListener("click", resetRuleForm);

  function ruleFromForm() {
    const f = form;
    const sev = f.syslog_severity.value.trim();
    const body = {
      match_string: f.match_string.value.trim() || null,
      trap_oid: f.trap_oid.value.trim() || null,
      match_type: f.match_type.value,
      syslog_severity: sev === "" ? null : Number(sev),
      priority: Number(f.priority.value),
      prod_handling: f.prod_handling.value.trim(),
      dev_handling: f.dev_handling.value.trim(),
      team_assignment: f.team_assignment.value.trim(),
      is_active: f.is_active.value === "true",
    };
    if (f.reason.value.trim()) body.reason = f.reason.value.trim();
    return body;
  }

  /* Test: the dry-run of what the form holds (an edit when a rule is loaded), before Save */
  async function testRule() {
    const body = ruleFromForm();
    delete body.reason;
    if (form.id.value) body.rule_id = Number(form.id.value);
    try {
      const r = await api("POST", "/rules/dry-run", body);
      $("dr-examined").textContent = r.examined;
      $("dr-would").textContent = r.would_match;
      $("dr-newly").textContent = r.newly_matched;
      $("dr-unhandled").textContent = r.unhandled_now_handled;
      const taken = Object.entries(r.taken_from).map(([id, n]) => n + " from rule " + id);
      $("dr-taken").textContent = (taken.length ? "Taken from other rules: " + taken.join(", ") : "Taken from no other rule.") +
        (r.held_by_maintenance ? " " + r.held_by_maintenance + " held by an active maintenance window (not paged now)." : "");
      $("dr-examples").tBodies[0].replaceChildren(...r.examples.map((x) => el("tr", {},
        el("td", {}, text(x.event.hostname)), el("td", {}, text(x.event.message)),
        el("td", {}, x.decision.environment), el("td", {}, x.decision.handling_decision),
        el("td", {}, x.decision.forwarded ? "yes" : "no"),
        el("td", {}, x.current.rule_id === null ? "unhandled" : "rule " + x.current.rule_id + " (" + x.current.handling_decision + ")"))));
      $("rule-test-result").hidden = false;
    } catch (err) { toast(err.message, true); }
  }
  $("rule-test").addEventListener("click", testRule);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = form.id.value;
    try {
      if (id) { await api("PUT", "/rules/" + encodeURIComponent(id), ruleFromForm()); toast("Rule " + id + " updated"); }
      else { const r = await api("POST", "/rules", ruleFromForm()); toast("Rule " + r.id + " created"); }
      resetRuleForm();
      loadRules();
    } catch (err) { toast(err.message, true); }
  });

  function editRule(r) {
    form.id.value = r.id;
    for (const k of ["match_string", "trap_oid", "priority", "prod_handling", "dev_handling", "team_assignment"]) form[k].value = text(r[k]);
    form.match_type.value = r.match_type;
    form.syslog_severity.value = r.syslog_severity === null ? "" : r.syslog_severity;
    form.is_active.value = r.is_active ? "true" : "false";
    form.reason.value = "";
    $("rule-form-title").textContent = "Edit rule " + r.id;
    $("rule-save").textContent = "Save rule " + r.id;
    form.scrollIntoView({ behavior: "smooth" });
  }

  async function setActive(r, active) {
    const reason = prompt((active ? "Activate" : "Deactivate") + " rule " + r.id + ": reason?", "");
    if (reason === null) return;
    try { await api("PUT", "/rules/" + r.id, { is_active: active, reason }); toast("Rule " + r.id + (active ? " activated" : " deactivated")); loadRules(); }
    catch (e) { toast(e.message, true); }
  }

  async function deleteRule(r) {
    const reason = prompt("Delete rule " + r.id + "? Reason:", "");
    if (reason === null) return;
    try { await api("DELETE", "/rules/" + r.id, { reason }); toast("Rule " + r.id + " deleted"); loadRules(); }
    catch (e) { toast(e.message, true); }
  }

  async function loadRules() {
    const d = await api("GET", "/rules");
    $("rules-table").tBodies[0].replaceChildren(...d.rules.map((r) => el("tr", { class: r.is_active ? "" : "inactive", "data-rule-id": r.id },
      el("td", { class: "num" }, r.id), el("td", { class: "num" }, r.priority), el("td", {}, r.match_type),
      el("td", {}, text(r.match_string)), el("td", {}, text(r.trap_oid)), el("td", {}, text(r.syslog_severity)),
      el("td", {}, r.prod_handling), el("td", {}, r.dev_handling), el("td", {}, r.team_assignment),
      el("td", {}, r.is_active ? "yes" : "no"),
      el("td", { class: "row" }, el("button", { class: "btn secondary", type: "button", onclick: () => editRule(r) }, "Edit"),
        el("button", { class: "btn secondary", type: "button", onclick: () => setActive(r, !r.is_active) }, r.is_active ? "Deactivate" : "Activate"),
        el("button", { class: "btn danger", type: "button", onclick: () => deleteRule(r) }, "Delete")))));
  }

  /* ---------------------------------------------------------------- hosts, teams */
  $("host-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target;
    try { await api("POST", "/dev-hosts", { hostname: f.hostname.value.trim(), reason: f.reason.value.trim() || null }); f.reset(); toast("Dev host added"); loadHosts(); }
    catch (err) { toast(err.message, true); }
  });
  async function loadHosts() {
    const d = await api("GET", "/dev-hosts");
    $("hosts-table").tBodies[0].replaceChildren(...d.hosts.map((h) => el("tr", {}, el("td", {}, h.hostname),
      el("td", {}, el("button", { class: "btn danger", type: "button", onclick: async () => {
        const reason = prompt("Remove " + h.hostname + "? Reason:", ""); if (reason === null) return;
        try { await api("DELETE", "/dev-hosts/" + encodeURIComponent(h.hostname), { reason }); toast("Removed"); loadHosts(); } catch (err) { toast(err.message, true); }
      } }, "Remove")))));
  }

  $("team-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target;
    const body = { hostname: f.hostname.value.trim(), team_assignment: f.team_assignment.value.trim(), reason: f.reason.value.trim() || null };
    try {
      try { await api("POST", "/teams", body); }
      catch (err) { if (err.status !== 409) throw err; await api("PUT", "/teams/" + encodeURIComponent(body.hostname), body); }
      f.reset(); toast("Team mapping saved"); loadTeams();
    } catch (err) { toast(err.message, true); }
  });
  async function loadTeams() {
    const d = await api("GET", "/teams");
    $("teams-table").tBodies[0].replaceChildren(...d.teams.map((t) => el("tr", {}, el("td", {}, t.hostname), el("td", {}, t.team_assignment),
      el("td", {}, el("button", { class: "btn danger", type: "button", onclick: async () => {
        const reason = prompt("Remove the mapping of " + t.hostname + "? Reason:", ""); if (reason === null) return;
        try { await api("DELETE", "/teams/" + encodeURIComponent(t.hostname), { reason }); toast("Removed"); loadTeams(); } catch (err) { toast(err.message, true); }
      } }, "Remove")))));
  }

  /* ---------------------------------------------------------------- config */
  async function loadConfig() {
    const d = await api("GET", "/config");
    const rows = Object.keys(d.keys).sort().map((k) => {
      const m = d.keys[k];
      const val = el("input", { value: m.value, size: 10, "aria-label": "new value of " + k });
      const why = el("input", { placeholder: "reason", size: 12, "aria-label": "reason for " + k });
      const range = m.type + (m.min !== null && m.min !== undefined ? ` ${m.min}..${m.max}` : "") + (m.allowed ? " " + m.allowed.join("|") : "") + (m.unit ? " " + m.unit : "");
      return el("tr", { "data-key": k }, el("td", {}, k), el("td", {}, m.value), el("td", { class: m.source === "redis" ? "warn" : "muted" }, m.source),
        el("td", { class: "muted" }, range), el("td", { class: "muted" }, m.description),
        el("td", { class: "row" }, val, why, el("button", { class: "btn", type: "button", onclick: async () => {
          if (!why.value.trim()) { toast("A reason is required for config changes", true); why.focus(); return; }
          try {
            const r = await api("PUT", "/config/" + encodeURIComponent(k), { value: val.value, reason: why.value.trim() });
            toast(r.status === "pending" ? `${k}: change request ${r.id} awaits approval (Changes tab)` : `${k}: ${text(r.old_value)} -> ${r.new_value}`);
            loadConfig();
          }
          catch (err) { toast(err.message, true); }
        } }, "Save")));
    });
    $("config-table").tBodies[0].replaceChildren(...rows);
  }

  /* ---------------------------------------------------------------- DLQ */
  async function loadDlq() {
    const d = await api("GET", "/dlq");
    const panels = Object.keys(d.dlqs).map((name) => {
      const q = d.dlqs[name];
      const count = el("input", { type: "number", min: 1, max: 10000, value: 100, style: "width:90px", "aria-label": "items to replay" });
      const why = el("input", { placeholder: "reason" });
      return el("div", { class: "panel" }, el("h2", {}, `${name} (${q.key}): ${q.depth} item(s)`),
        el("div", { class: "row" }, count, why, el("button", { class: "btn", type: "button", disabled: q.depth ? null : "disabled", onclick: async () => {
          if (!confirm(`Replay up to ${count.value} item(s) of the ${name} DLQ?`)) return;
          try { const r = await api("POST", "/dlq/" + name + "/replay", { count: Number(count.value), reason: why.value.trim() || null }); toast(`${name}: ${r.replayed} replayed, ${r.skipped} skipped`); loadDlq(); }
          catch (err) { toast(err.message, true); }
        } }, "Replay")),
        el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Newest items"))),
          el("tbody", {}, ...q.items.map((it) => el("tr", {}, el("td", {}, el("pre", {}, JSON.stringify(it, null, 1)))))))));
    });
    $("dlq-panels").replaceChildren(...panels);
  }

  MUTT.init(() => {
    refresh();
    clearInterval(timer);
    timer = setInterval(() => { if (current === "overview" || current === "dlq") refresh(); }, 10000);
  });
})();
