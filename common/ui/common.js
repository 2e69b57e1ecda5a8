// SPDX-License-Identifier: Apache-2.0
// Shared by the status pages: the optional token (kept in sessionStorage, so
// it dies with the tab), fetching JSON routes with it, polling, small DOM helpers.
"use strict";

const UI = {
  every_s: 3,
  tokenKey: "fedgslb.token",

  token() {
    try { return sessionStorage.getItem(UI.tokenKey) || ""; } catch (e) { return ""; }
  },

  setToken(t) {
    try {
      if (t) sessionStorage.setItem(UI.tokenKey, t); else sessionStorage.removeItem(UI.tokenKey);
    } catch (e) { /* storage disabled: the token lives until the page reloads */ }
  },

  // GET @path (same origin); JSON unless @text. Throws an Error with the status.
  async get(path, text) {
    const headers = {};
    const t = UI.token();
    if (t) headers["Authorization"] = "Bearer " + t;
    const r = await fetch(path, {headers, cache: "no-store", credentials: "omit"});
    if (!r.ok) {
      let why = r.status + " " + r.statusText;
      try { const j = await r.json(); if (j && j.error) why = r.status + ": " + j.error; } catch (e) { /* not JSON */ }
      const err = new Error(path + " " + why);
      err.status = r.status;
      throw err;
    }
    return text ? r.text() : r.json();
  },

  // One sample value of a Prometheus text family with the given labels.
  metric(text, name, labels) {
    for (const line of text.split("\n")) {
      if (!line.startsWith(name)) continue;
      const m = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/);
      if (!m || m[1] !== name) continue;
      const got = {};
      (m[3] || "").replace(/(\w+)="((?:[^"\\]|\\.)*)"/g, (_, k, v) => { got[k] = v; });
      if (Object.entries(labels || {}).every(([k, v]) => got[k] === v)) return parseFloat(m[4]);
    }
    return null;
  },

  // el("td", {class: "x", title: "y"}, "text", child...)
  el(tag, attrs, ...kids) {
    const ns = ["svg", "g", "circle", "line", "path", "text", "title", "rect", "polygon"].includes(tag)
      ? "http://www.w3.org/2000/svg" : null;
    const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = v; else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids) {
      if (k === null || k === undefined) continue;
      e.appendChild(typeof k === "string" || typeof k === "number" ? document.createTextNode(String(k)) : k);
    }
    return e;
  },

  replace(id, ...kids) {
    const e = document.getElementById(id);
    e.replaceChildren(...kids.filter((k) => k !== null && k !== undefined));
    return e;
  },

  // healthy / down / draining / pending / unknown, from an entry with
  // healthy, pending, drained and (for dnsd's merge) present.
  verdict(e) {
    if (!e || e.present === false) return "unknown";
    if (e.drained) return "draining";
    if (e.pending) return "pending";
    return e.healthy ? "healthy" : "down";
  },

  age(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "–";
    if (seconds < 90) return seconds.toFixed(seconds < 10 ? 1 : 0) + " s";
    if (seconds < 5400) return (seconds / 60).toFixed(0) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  },

  // Runs @refresh now and every UI.every_s; shows errors and the last success.
  start(refresh) {
    const input = document.getElementById("token");
    input.value = UI.token();
    document.getElementById("tokenform").addEventListener("submit", (ev) => {
      ev.preventDefault();
      UI.setToken(input.value.trim());
      tick();
    });
    document.getElementById("tokenclear").addEventListener("click", () => {
      input.value = "";
      UI.setToken("");
      tick();
    });
    document.getElementById("every").textContent = UI.every_s;
    const status = document.getElementById("status");
    const error = document.getElementById("error");
    let busy = false;
    async function tick() {
      if (busy) return;
      busy = true;
      try {
        await refresh();
        error.hidden = true;
        status.className = "status ok";
        status.textContent = "live";
        document.getElementById("updated").textContent =
          "Updated " + new Date().toLocaleTimeString() + ".";
        document.body.dataset.refreshed = String(Date.now());
      } catch (e) {
        status.className = "status stale";
        status.textContent = "stale";
        error.hidden = false;
        error.textContent = (e.status === 401
          ? "This listener wants a token for reads: enter the operator or a vantage token above. "
          : "") + e.message;
      } finally {
        busy = false;
      }
    }
    tick();
    setInterval(tick, UI.every_s * 1000);
  },
};
