// SPDX-License-Identifier: Apache-2.0
// The status page of fedgslb-health and fedgslb-proxy: their /v1/state as
// tables. Any object whose entries carry a boolean "healthy" becomes a table
// with one coloured row per entry; scalars at the top become summary chips.
"use strict";

function scalar(v) {
  return v === null || ["string", "number", "boolean"].includes(typeof v);
}

function isVerdictMap(o) {
  const vals = o && typeof o === "object" && !Array.isArray(o) ? Object.values(o) : [];
  return vals.length > 0 && vals.every((e) => e && typeof e === "object" && typeof e.healthy === "boolean");
}

// {name: {scalar fields}} or [{scalar fields}]: one table, a row per entry.
function isRecordMap(o) {
  const vals = o && typeof o === "object" ? Object.values(o) : [];
  return vals.length > 0 && vals.every((e) => e && typeof e === "object" && !Array.isArray(e) &&
    Object.values(e).every((v) => scalar(v) || (Array.isArray(v) && v.every(scalar))));
}

function text(v) {
  if (Array.isArray(v)) return v.map(text).join(", ");
  if (v && typeof v === "object") return JSON.stringify(v);
  return v === null || v === undefined ? "–" : String(v);
}

// A proxy backend: its active check and outlier ejection.
function backendVerdict(e) {
  if (e.ejected === true || e.check === "down") return "down";
  return e.check === "up" ? "healthy" : "pending";
}

function verdictTable(path, map, withVerdict) {
  if (Array.isArray(map)) {
    const keyed = {};
    map.forEach((e, i) => { keyed[e.address || e.name || String(i)] = e; });
    map = keyed;
  }
  const isBackend = Object.values(map).every((e) => "check" in e && "ejected" in e);
  withVerdict = withVerdict || isBackend;
  const cols = [];
  for (const e of Object.values(map))
    for (const [k, v] of Object.entries(e)) if (scalar(v) || Array.isArray(v)) if (!cols.includes(k)) cols.push(k);
  const rows = [UI.el("tr", {}, UI.el("th", {}, ""), withVerdict ? UI.el("th", {}, "verdict") : null,
                      ...cols.map((c) => UI.el("th", {}, c)))];
  for (const [name, e] of Object.entries(map)) {
    const v = isBackend ? backendVerdict(e) : UI.verdict(e);
    rows.push(UI.el("tr", {"data-name": name}, UI.el("th", {}, name),
                    withVerdict ? UI.el("td", {class: "verdict " + v, "data-verdict": v}, v) : null,
                    ...cols.map((c) => UI.el("td", {}, text(e[c])))));
  }
  return UI.el("div", {class: "block"}, UI.el("h3", {}, path), UI.el("table", {class: "grid"}, ...rows));
}

function walk(path, o, out, chips) {
  if (isVerdictMap(o)) { out.push(verdictTable(path, o, true)); return; }
  if (path && isRecordMap(o)) { out.push(verdictTable(path, o, false)); return; }
  if (!o || typeof o !== "object") return;
  const flat = [];
  for (const [k, v] of Object.entries(o)) {
    if (scalar(v)) flat.push([k, v]);
    else walk(path ? path + "." + k : k, v, out, chips);
  }
  if (!path) flat.forEach(([k, v]) => chips.push(UI.el("span", {class: "chip"}, k + ": " + text(v))));
  else if (flat.length) out.push(UI.el("div", {class: "block"}, UI.el("h3", {}, path),
    UI.el("table", {class: "grid kv"}, ...flat.map(([k, v]) => UI.el("tr", {}, UI.el("th", {}, k), UI.el("td", {}, text(v)))))));
}

async function refresh() {
  const doc = await UI.get("/v1/state");
  const out = [], chips = [];
  walk("", doc, out, chips);
  const title = document.getElementById("title").firstChild;
  if (doc.vantage) title.textContent = "fedgslb-health ";
  else if (doc.listeners) title.textContent = "fedgslb-proxy ";
  document.title = title.textContent.trim() + " status";
  document.getElementById("fed").textContent = doc.vantage ? "vantage " + doc.vantage : "";
  UI.replace("summary", ...chips);
  UI.replace("tables", ...out);
  document.getElementById("raw").textContent = JSON.stringify(doc, null, 2);
}

document.addEventListener("DOMContentLoaded", () => UI.start(refresh));
