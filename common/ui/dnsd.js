// SPDX-License-Identifier: Apache-2.0
// fedgslb-dnsd's status page: map, answers per client region, verdicts, RTT,
// vantages. Reads /v1/topology, /v1/answers, /v1/state and /metrics.
"use strict";

const MAP = {w: 720, lat_top: 80, lat_bottom: -58, scale: 2};
MAP.h = (MAP.lat_top - MAP.lat_bottom) * MAP.scale;
const ALL = "(all services: worst)";
let topo = null;

function project(lonlat) {
  return [(lonlat[0] + 180) * MAP.scale, (MAP.lat_top - lonlat[1]) * MAP.scale];
}

function worst(list) {
  const order = ["down", "pending", "draining", "healthy", "unknown"];
  for (const v of order) if (list.includes(v)) return v;
  return "unknown";
}

// The verdict of @m for the selected service (or the worst over all).
function memberVerdict(answers, svc, m) {
  const svcs = svc === ALL ? Object.keys(answers.services) : [svc];
  const list = svcs.map((s) => UI.verdict((answers.services[s] || {members: {}}).members[m]));
  if (svc === ALL && list.some((v) => v !== "unknown")) return worst(list.filter((v) => v !== "unknown"));
  return worst(list);
}

// "us-east-1: up (probe ok, 12 ms)" for each vantage reporting @m in @svc.
function votesText(state, svc, m) {
  const lines = [];
  for (const [v, doc] of Object.entries(state.vantages || {})) {
    const e = ((doc.services || {})[svc] || {members: {}}).members[m];
    if (!e) { lines.push("  " + v + ": not reported"); continue; }
    const rtt = e.rtt_ms !== undefined && e.rtt_ms !== null ? ", " + e.rtt_ms + " ms" : "";
    lines.push("  " + v + ": " + (e.pending ? "pending" : e.healthy ? "up" : "DOWN") +
               " (" + (e.reason || "") + rtt + ")");
  }
  return lines.join("\n");
}

function regionPoints(regions) {
  const names = Object.keys(regions);
  const pts = {};
  let unplaced = names.filter((r) => !regionPlace(r) && !(regions[r].location));
  names.forEach((r) => {
    const loc = regions[r].location;
    if (loc) pts[r] = project([loc.longitude, loc.latitude]);
    else if (regionPlace(r)) pts[r] = project(regionPlace(r));
  });
  unplaced.forEach((r, i) => {  // a fixed row along the equator
    pts[r] = [MAP.w * (i + 1) / (unplaced.length + 1), project([0, 0])[1]];
  });
  return pts;
}

function memberPoints(members, rpts) {
  const by = {};
  for (const [m, info] of Object.entries(members)) (by[info.region] = by[info.region] || []).push(m);
  const pts = {};
  for (const [r, list] of Object.entries(by)) {
    const [x, y] = rpts[r];
    list.forEach((m, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / list.length + (list.length === 1 ? Math.PI * 0.75 : 0);
      pts[m] = [x + 17 * Math.cos(a), y + 17 * Math.sin(a)];
    });
  }
  return pts;
}

function drawMap(answers, state, svc) {
  const svg = UI.el("svg", {viewBox: "0 0 " + MAP.w + " " + MAP.h, class: "map", role: "img",
                            "aria-label": "world map of members and client regions"});
  svg.appendChild(UI.el("rect", {x: 0, y: 0, width: MAP.w, height: MAP.h, class: "sea"}));
  for (const ring of WORLD) {
    const d = ring.map((p, i) => (i ? "L" : "M") + project(p).map((v) => v.toFixed(1)).join(",")).join("") + "Z";
    svg.appendChild(UI.el("path", {d, class: "land"}));
  }
  const rpts = regionPoints(topo.regions);
  const mpts = memberPoints(topo.members, rpts);
  // Where each client region's global name points (selected service only).
  const s = answers.services[svc];
  if (s) {
    for (const [r, dec] of Object.entries(s.regions)) {
      for (const m of dec.chosen || []) {
        if (!rpts[r] || !mpts[m]) continue;
        const [x1, y1] = rpts[r], [x2, y2] = mpts[m];
        if (Math.hypot(x2 - x1, y2 - y1) < 20) continue;  // its own region: the ring says it
        const mx = (x1 + x2) / 2, my = (y1 + y2) / 2 - Math.abs(x2 - x1) * 0.18 - 10;
        svg.appendChild(UI.el("path", {d: `M${x1},${y1} Q${mx},${my} ${x2},${y2}`,
                                       class: "route" + (dec.fail_open ? " fail-open" : ""),
                                       "data-region": r, "data-member": m}));
      }
    }
  }
  for (const [r, [x, y]] of Object.entries(rpts)) {
    const dec = s && s.regions[r];
    const g = UI.el("g", {class: "region", "data-region": r});
    g.appendChild(UI.el("title", {text: r + (dec ? "\nclients get: " + ((dec.chosen || []).join(", ") || dec.cname || "nothing") + " (" + dec.rule + ")" : "")}));
    g.appendChild(UI.el("circle", {cx: x, cy: y, r: 4, class: "region-dot"}));
    g.appendChild(UI.el("text", {x: x, y: y + 34, class: "region-label", "text-anchor": "middle", text: r}));
    svg.appendChild(g);
  }
  for (const [m, [x, y]] of Object.entries(mpts)) {
    const v = memberVerdict(answers, svc, m);
    const info = topo.members[m];
    const svcs = svc === ALL ? Object.keys(answers.services) : [svc];
    const tip = [m + " (" + info.region + (info.zone ? ", " + info.zone : "") + "): " + v];
    for (const sv of svcs) {
      const e = (answers.services[sv] || {members: {}}).members[m] || {};
      tip.push(sv + ": " + UI.verdict(e) + ", votes up " + (e.votes_up || 0) + " / down " + (e.votes_down || 0) +
               (e.excluded ? " (" + e.excluded + ")" : ""));
      tip.push(votesText(state, sv, m));
    }
    const g = UI.el("g", {class: "member " + v, "data-member": m, "data-verdict": v});
    g.appendChild(UI.el("title", {text: tip.join("\n")}));
    g.appendChild(UI.el("circle", {cx: x, cy: y, r: 10}));
    g.appendChild(UI.el("text", {x: x, y: y + 3.5, "text-anchor": "middle", class: "member-label", text: m.slice(0, 3)}));
    svg.appendChild(g);
  }
  UI.replace("map", svg);
}

function dot(v) { return UI.el("span", {class: "dot " + v}); }

function drawAnswers(answers) {
  const regions = Object.keys(topo.regions);
  const head = UI.el("tr", {}, UI.el("th", {}, "service"), UI.el("th", {}, "all down"),
                     ...regions.map((r) => UI.el("th", {}, r)));
  const rows = [head];
  for (const [svc, s] of Object.entries(answers.services)) {
    const policy = (topo.services[svc] || {}).all_down || "(discovered)";
    const anyOpen = Object.values(s.regions).some((d) => d.fail_open);
    const tr = UI.el("tr", {"data-service": svc, class: anyOpen ? "fail-open" : null},
                     UI.el("th", {}, svc, anyOpen ? UI.el("span", {class: "badge bad"}, "FAIL-OPEN") : null),
                     UI.el("td", {class: "policy"}, policy));
    for (const r of regions) {
      const d = s.regions[r];
      const td = UI.el("td", {"data-region": r, "data-member": d && d.member ? d.member : null});
      if (d) {
        const chosen = d.chosen || [];
        if (chosen.length) {
          chosen.forEach((m, i) => {
            if (i) td.appendChild(document.createTextNode(" "));
            td.appendChild(UI.el("span", {class: "pick"}, dot(UI.verdict(s.members[m])), m));
          });
        } else {
          td.appendChild(UI.el("span", {class: "pick none"}, d.cname ? "→ " + d.cname : "NODATA"));
        }
        td.appendChild(UI.el("div", {class: "rule"}, d.rule + (d.ttl ? ", ttl " + d.ttl + " s" : "")));
        if (d.fail_open) td.classList.add("fail-open");
        else if (d.rule.startsWith("all down")) td.classList.add("all-down");
        const excl = Object.entries(s.members).filter(([, e]) => e.excluded).map(([m, e]) => m + ": " + e.excluded);
        td.title = d.rule + (excl.length ? "\nexcluded: " + excl.join("; ") : "");
      }
      tr.appendChild(td);
    }
    rows.push(tr);
  }
  UI.replace("answers", ...rows);
}

function drawVerdicts(answers, state) {
  const members = Object.keys(topo.members);
  const rows = [UI.el("tr", {}, UI.el("th", {}, "service"), ...members.map((m) => UI.el("th", {}, m)))];
  for (const [svc, s] of Object.entries(answers.services)) {
    const tr = UI.el("tr", {"data-service": svc}, UI.el("th", {}, svc));
    for (const m of members) {
      const e = s.members[m] || {};
      const v = UI.verdict(e);
      tr.appendChild(UI.el("td", {class: "verdict " + v, "data-member": m, "data-verdict": v,
                                  title: m + " in " + svc + ": " + v + (e.reason ? " — " + e.reason : "") +
                                         "\n" + votesText(state, svc, m)},
                           v, UI.el("span", {class: "votes"}, " " + (e.votes_up || 0) + "/" + (e.votes_down || 0))));
    }
    rows.push(tr);
  }
  UI.replace("verdicts", ...rows);
}

function heat(td, ms) {
  if (ms === null || ms === undefined) { td.classList.add("nodata"); return; }
  const t = Math.max(0, Math.min(1, ms / 250));
  td.style.backgroundColor = "hsl(" + Math.round(130 - 130 * t) + ", 65%, " + Math.round(88 - 18 * t) + "%)";
}

function drawRtt(state) {
  const members = Object.keys(topo.members);
  const rows = [UI.el("tr", {}, UI.el("th", {}, "vantage \\ member"),
                      ...members.map((m) => UI.el("th", {title: topo.members[m].region}, m)))];
  for (const [v, doc] of Object.entries(state.vantages || {})) {
    const tr = UI.el("tr", {"data-vantage": v}, UI.el("th", {}, v));
    for (const m of members) {
      const ms = ((doc.members || {})[m] || {}).rtt_ms;
      const td = UI.el("td", {"data-member": m}, ms === undefined || ms === null ? "–" : String(Math.round(ms)));
      heat(td, ms);
      tr.appendChild(td);
    }
    rows.push(tr);
  }
  UI.replace("rtt", ...rows);
  const regions = Object.keys(topo.regions);
  const lrows = [UI.el("tr", {}, UI.el("th", {}, "from \\ to"), ...regions.map((r) => UI.el("th", {}, r)))];
  for (const a of regions) {
    const tr = UI.el("tr", {}, UI.el("th", {}, a));
    for (const b of regions) {
      const ms = topo.regions[a].latency_ms[b];
      const td = UI.el("td", {}, ms === undefined ? "–" : String(ms));
      heat(td, ms);
      tr.appendChild(td);
    }
    lrows.push(tr);
  }
  UI.replace("latency", ...lrows);
}

function drawVantages(state, metrics) {
  const rows = [UI.el("tr", {}, ...["vantage", "generation", "generated at", "age", "member APIs"].map((h) => UI.el("th", {}, h)))];
  const regions = Object.keys(topo.regions);
  for (const r of regions) {
    const doc = (state.vantages || {})[r];
    if (!doc) {
      rows.push(UI.el("tr", {"data-vantage": r, class: "silent"}, UI.el("th", {}, r),
                      UI.el("td", {colspan: 4}, "no document (silent or expired)")));
      continue;
    }
    const age = UI.metric(metrics, "fedgslb_state_age_seconds", {vantage: r});
    const apis = Object.entries(doc.members || {}).map(([m, e]) => m + ": " + (e.api || "?")).join(", ");
    rows.push(UI.el("tr", {"data-vantage": r, class: age !== null && age > 30 ? "old" : null},
                    UI.el("th", {}, r), UI.el("td", {}, String(doc.generation)),
                    UI.el("td", {}, doc.generated_at || "–"), UI.el("td", {class: "age"}, UI.age(age)),
                    UI.el("td", {}, apis)));
  }
  UI.replace("vantages", ...rows);
  const drained = state.drained || [];
  UI.replace("drains", drained.length
    ? UI.el("ul", {}, ...drained.map((m) => UI.el("li", {}, dot("draining"), m)))
    : UI.el("p", {class: "hint"}, "No member is drained."));
}

function drawSummary(answers, state) {
  const members = Object.keys(topo.members);
  const counts = {};
  for (const m of members) {
    const v = memberVerdict(answers, ALL, m);
    counts[v] = (counts[v] || 0) + 1;
  }
  const open = Object.entries(answers.services).filter(([, s]) => Object.values(s.regions).some((d) => d.fail_open)).map(([k]) => k);
  const nv = Object.keys(state.vantages || {}).length;
  const chips = [
    UI.el("span", {class: "chip"}, members.length + " members: ",
          ...["healthy", "down", "draining", "pending", "unknown"].filter((v) => counts[v]).map((v) => UI.el("span", {class: "count " + v}, counts[v] + " " + v))),
    UI.el("span", {class: "chip"}, Object.keys(answers.services).length + " services"),
    UI.el("span", {class: "chip" + (nv < Object.keys(topo.regions).length ? " warn" : "")}, nv + "/" + Object.keys(topo.regions).length + " vantages reporting"),
    UI.el("span", {class: "chip" + (open.length ? " bad" : ""), id: "fail-open-summary"},
          open.length ? "failing open: " + open.join(", ") : "no service failing open"),
    UI.el("span", {class: "chip"}, "view serial " + answers.view_serial),
  ];
  UI.replace("summary", ...chips);
}

// The agreement indicator: every name server answers from our state, or which
// one differs and how, or which one did not answer (GET /v1/peers).
function drawPeers(peers) {
  const box = document.getElementById("agreement");
  const list = peers.peers || [];
  let cls = "chip", text;
  if (peers.pending) {
    text = "asking the other name servers…";
  } else if (!list.length) {
    text = "no other name server configured";
  } else if (peers.agree) {
    cls += " good";
    text = "all " + (list.length + 1) + " name servers agree";
  } else {
    const down = list.filter((p) => !p.reachable).map((p) => p.name);
    const differ = list.filter((p) => p.reachable && !p.agrees).map((p) => p.name);
    cls += differ.length ? " bad" : " warn";
    text = [differ.length ? "differs: " + differ.join(", ") : null,
            down.length ? "unreachable: " + down.join(", ") : null].filter(Boolean).join("; ");
  }
  box.replaceChildren(UI.el("span", {class: cls, id: "agree-chip",
                                     "data-agree": peers.pending ? "pending" : String(!!peers.agree)}, text));
  const self = peers.self || {};
  const rows = [UI.el("tr", {}, ...["name server", "address", "answers", "state digest", "agrees"].map((h) => UI.el("th", {}, h)))];
  rows.push(UI.el("tr", {"data-peer": self.name, class: "self"}, UI.el("th", {}, self.name + " (this one)"),
                  UI.el("td", {}, location.origin), UI.el("td", {}, "yes"),
                  UI.el("td", {class: "digest"}, (self.digest || {}).state || "–"), UI.el("td", {}, "–")));
  for (const p of list) {
    const agrees = !p.reachable ? "?" : p.agrees ? "yes" : "NO";
    rows.push(UI.el("tr", {"data-peer": p.name, "data-agrees": agrees, class: !p.reachable ? "old" : p.agrees ? null : "differs"},
                    UI.el("th", {}, p.name), UI.el("td", {}, p.address),
                    UI.el("td", {title: p.error || null}, p.reachable ? "yes" : "no: " + (p.error || "?")),
                    UI.el("td", {class: "digest"}, (p.digest || {}).state || "–"), UI.el("td", {}, agrees)));
  }
  UI.replace("peers", ...rows);
  UI.replace("differences", ...(peers.differences || []).map((d) => UI.el("li", {}, d)));
}

// Intent counts by kind and the active intents (from /v1/state's "intents").
function drawIntents(state) {
  const active = (state.intents || []).filter((i) => i.status === "active");
  const counts = {};
  for (const i of active) counts[i.kind] = (counts[i.kind] || 0) + 1;
  document.getElementById("intent-counts").textContent = active.length
    ? "(" + Object.entries(counts).sort().map(([k, n]) => n + " " + k).join(", ") + ")" : "";
  document.getElementById("intent-counts").dataset.counts = JSON.stringify(counts);
  if (!active.length) {
    UI.replace("intents", UI.el("tr", {}, UI.el("td", {class: "hint"}, "No active intent.")));
    return;
  }
  const rows = [UI.el("tr", {}, ...["kind", "target", "author", "reason", "expires"].map((h) => UI.el("th", {}, h)))];
  for (const i of active) {
    const target = [i.region || i.member, i.service, i.weight !== undefined ? "weight " + i.weight : null,
                    i.priority !== undefined ? "priority " + i.priority : null].filter((x) => x !== undefined && x !== null).join(" ");
    rows.push(UI.el("tr", {"data-intent": i.id, "data-kind": i.kind, title: i.id},
                    UI.el("td", {}, i.kind), UI.el("td", {}, target), UI.el("td", {}, i.author || ""),
                    UI.el("td", {}, i.reason || ""), UI.el("td", {}, i.expires_at || "until removed")));
  }
  UI.replace("intents", ...rows);
}

async function refresh() {
  const [t, answers, state, metrics, peers] = await Promise.all([
    UI.get("/v1/topology"), UI.get("/v1/answers"),
    UI.get("/v1/state"), UI.get("/metrics", true), UI.get("/v1/peers")]);
  topo = t;
  document.getElementById("fed").textContent = "federation " + topo.federation + " · zone " + topo.zone +
    " · default region " + topo.region;
  const sel = document.getElementById("service");
  const keys = [ALL, ...Object.keys(answers.services)];
  if (sel.options.length !== keys.length) {
    const cur = sel.value;
    sel.replaceChildren(...keys.map((k) => UI.el("option", {value: k}, k)));
    const first = Object.keys(topo.services).find((k) => keys.includes(k)) || keys[1] || ALL;
    sel.value = keys.includes(cur) ? cur : first;
  }
  drawSummary(answers, state);
  drawMap(answers, state, sel.value);
  drawAnswers(answers);
  drawVerdicts(answers, state);
  drawRtt(state);
  drawVantages(state, metrics);
  drawPeers(peers);
  drawIntents(state);
  document.body.dataset.serial = String(answers.view_serial);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("service").addEventListener("change", () => { topo && refresh(); });
  UI.start(refresh);
});
