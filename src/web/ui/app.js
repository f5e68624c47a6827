/* Shared by the dashboard and the audit viewer: the API key (asked once, kept in sessionStorage,
 * sent as X-API-KEY), a fetch wrapper that turns D18 error bodies into messages, DOM helpers
 * that only ever set textContent (nothing from the API is parsed as HTML), and toasts. */
"use strict";
const MUTT = (() => {
  const KEY = "mutt_api_key";
  let onReady = null;

  function key() { return sessionStorage.getItem(KEY); }

  function askKey() {
    const box = document.getElementById("login");
    box.classList.add("show");
    box.querySelector("input").focus();
  }

  function init(ready) {
    onReady = ready;
    document.getElementById("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const v = e.target.key.value.trim();
      if (!v) return;
      sessionStorage.setItem(KEY, v);
      e.target.reset();
      document.getElementById("login").classList.remove("show");
      onReady();
    });
    const out = document.getElementById("logout");
    if (out) out.addEventListener("click", () => { sessionStorage.removeItem(KEY); askKey(); });
    if (key()) onReady(); else askKey();
  }

  async function api(method, path, body) {
    const headers = { "X-API-KEY": key() || "" };
    const opts = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    try { res = await fetch("/api/v2" + path, opts); }
    catch (e) { throw new Error("network error: " + e.message); }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401) { sessionStorage.removeItem(KEY); askKey(); throw new Error("API key refused"); }
    if (!res.ok) {
      const msg = data && data.error ? data.error + (data.field ? " (" + data.field + ")" : "") : "HTTP " + res.status;
      const err = new Error(msg);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") n.className = v;
      else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null) n.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      n.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return n;
  }

  function text(v) { return v === null || v === undefined ? "" : String(v); }

  let toastTimer = null;
  function toast(msg, isError) {
    const t = document.getElementById("toast");
    t.textContent = msg;
    t.className = "show" + (isError ? " error" : "");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.className = ""; }, isError ? 6000 : 3000);
  }

  function time(iso) { return iso ? iso.replace("T", " ").replace("Z", "") : ""; }

  return { init, api, el, text, toast, time, key };
})();
