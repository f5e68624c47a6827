/* The dashboard's Trace tab (D63): an event's timeline from GET /api/v2/events/{id}, or every
 * event of a correlation id from GET /api/v2/events?correlation_id= when no event has that id.
 * Only textContent is ever set from API data. */
"use strict";
(() => {
  const { api, el, text, toast, time } = MUTT;
  const out = document.getElementById("trace-out");

  function details(step) {
    return Object.entries(step)
      .filter(([k]) => k !== "at" && k !== "stage" && k !== "what")
      .map(([k, v]) => k + "=" + (typeof v === "string" ? v : JSON.stringify(v)))
      .join("  ");
  }

  function render(events) {
    out.replaceChildren(...events.map((ev) => el("div", { class: "panel trace-event", "data-event-id": ev.event_id },
      el("h2", {}, "Event ", el("code", {}, ev.event_id), " · state ",
        el("span", { class: "trace-state state-" + ev.state }, ev.state)),
      el("p", { class: "muted" }, "correlation id " + text(ev.correlation_id)),
      el("div", { class: "scroll" }, el("table", { class: "trace-timeline" },
        el("thead", {}, el("tr", {}, el("th", {}, "Time (UTC)"), el("th", {}, "Stage"), el("th", {}, "What"), el("th", {}, "Details"))),
        el("tbody", {}, ...ev.timeline.map((s) => el("tr", {},
          el("td", {}, time(s.at)), el("td", {}, s.stage), el("td", {}, s.what), el("td", {}, details(s))))))))));
  }

  async function trace(id) {
    try {
      return (await api("GET", "/events/" + encodeURIComponent(id))).events;
    } catch (e) {
      if (e.status !== 404) throw e;
    }
    return (await api("GET", "/events?correlation_id=" + encodeURIComponent(id))).events;
  }

  document.getElementById("trace-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = e.target.id.value.trim();
    if (!id) return;
    out.replaceChildren(el("p", { class: "muted" }, "Looking up " + id + " …"));
    trace(id).then(render).catch((err) => {
      out.replaceChildren(el("p", { class: "muted", id: "trace-error" }, err.message));
      if (err.status !== 404) toast(err.message, true);
    });
  });
})();
