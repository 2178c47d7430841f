// Turnpike's budget and spend page (docs/dashboard.md). Every number comes from the JSON
// endpoints under /dashboard/api/, which call the control plane's gRPC methods in-process and
// answer their responses in proto3 JSON (int64 values as decimal strings). Money stays integer
// micro-dollars (BigInt) until it is printed, so a dollar amount on the page is exact.
// The admin token is read from the URL fragment (#token=..., never sent to the server) or asked
// for, and kept in this tab's sessionStorage. When everything is drawn, <body data-ready="true">.
"use strict";

const TOKEN_KEY = "turnpike.dashboard.token";
const HOUR_MS = 3600000;
const SPEND_HOURS = 24;
const PALETTE = ["#3566b8", "#d9822b", "#2e7d32", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d",
  "#b7950b", "#1f618d", "#a04000"];

class Unauthorized extends Error {}

function readToken() {
  const m = /(?:^#|&)token=([^&]*)/.exec(window.location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    // Keep the token out of the address bar and history.
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(endpoint, params) {
  const query = new URLSearchParams(params || []).toString();
  const response = await fetch(`/dashboard/api/${endpoint}${query ? "?" + query : ""}`, {
    headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` },
    cache: "no-store",
  });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) throw new Unauthorized(body.message || "unauthenticated");
  if (!response.ok) {
    throw new Error(`${endpoint}: ${body.code || response.status}: ${body.message || ""}`);
  }
  return body;
}

// Every page of a List method.
async function listAll(endpoint, field, filters) {
  const out = [];
  let token = "";
  do {
    const params = [...(filters || []), ["page_size", "1000"]];
    if (token) params.push(["page_token", token]);
    const page = await api(endpoint, params);
    out.push(...(page[field] || []));
    token = page.nextPageToken || "";
  } while (token);
  return out;
}

// Formatting. usd() prints micro-dollars exactly: at least 2 decimals, up to 6, no rounding.
function groupDigits(s) { return s.replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
function usd(micros) {
  let v = BigInt(micros);
  const negative = v < 0n;
  if (negative) v = -v;
  let frac = (v % 1000000n).toString().padStart(6, "0").replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  return `${negative ? "-" : ""}$${groupDigits((v / 1000000n).toString())}.${frac}`;
}
function count(n) { return groupDigits(BigInt(n || 0).toString()); }
function when(ms) {
  if (!Number.isFinite(ms) || ms <= 0) return "—";
  return new Date(ms).toISOString().replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC");
}
function percentOf(part, whole) {  // tenths of a percent, integer arithmetic
  if (whole <= 0n) return null;
  return Number((part * 1000n) / whole) / 10;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
const SVG_NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
function cell(field, text, cls) { return el("td", { "data-field": field, class: cls || "" }, text); }
function fill(tbody, rows, empty, columns) {
  tbody.replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: String(columns), class: "muted" }, empty))]));
}

// Budgets: the numbers of BudgetStatus, and what follows from them at the current burn rate.
function budgetRow(b, nowMs) {
  const limit = BigInt(b.limitUsdMicros), spent = BigInt(b.spentUsdMicros);
  const reserved = BigInt(b.leasedUsdMicros), remaining = BigInt(b.remainingUsdMicros);
  const start = Date.parse(b.windowStart), end = Date.parse(b.windowEnd);
  const elapsed = BigInt(Math.max(0, Math.floor(nowMs - start)));
  const burn = elapsed > 0n ? (spent * BigInt(HOUR_MS)) / elapsed : 0n;  // micro-dollars per hour
  let exhaustion;
  if (remaining <= 0n) exhaustion = "exhausted";
  else if (burn === 0n) exhaustion = "no spend yet";
  else {
    const at = nowMs + Number((remaining * BigInt(HOUR_MS)) / burn);
    exhaustion = at >= end ? "not before the window ends" : when(at);
  }
  const used = percentOf(spent + reserved, limit);
  const bar = svg("svg", { width: 120, height: 12, role: "img",
    "aria-label": used === null ? "no limit" : `${used}% used` },
  svg("rect", { class: "bar-track", x: 0, y: 0, width: 120, height: 12 }),
  svg("rect", { class: used >= 100 ? "bar-over" : used >= 80 ? "bar-warn" : "bar-ok", x: 0, y: 0,
    width: Math.min(120, Math.round(((used || 0) * 120) / 100)), height: 12 }));
  const scope = [b.caller && `caller ${b.caller}`, b.tier && `tier ${b.tier}`].filter(Boolean);
  return el("tr", { "data-budget": b.name },
    cell("name", b.name), cell("capability", b.capability),
    cell("scope", scope.length ? scope.join(", ") : "all callers"),
    cell("limit", usd(limit), "num"), cell("spent", usd(spent), "num"),
    cell("reserved", usd(reserved), "num"), cell("remaining", usd(remaining), "num"),
    el("td", { "data-field": "used" }, bar, ` ${used === null ? "—" : used + "%"}`),
    cell("burn_rate", `${usd(burn)}/h`, "num"), cell("projected_exhaustion", exhaustion),
    cell("window_end", when(end)));
}

// Spend: QuerySpend rows summed per key for the table, and drawn per hour as stacked bars.
function spendTable(table, rows, key) {
  const totals = new Map();
  const zero = () => ({ requests: 0n, input: 0n, output: 0n, cost: 0n, unpriced: 0n });
  const all = zero();
  for (const r of rows) {
    const k = r[key] || "(none)";
    if (!totals.has(k)) totals.set(k, zero());
    for (const t of [totals.get(k), all]) {
      t.requests += BigInt(r.requests); t.input += BigInt(r.inputTokens);
      t.output += BigInt(r.outputTokens); t.cost += BigInt(r.costUsdMicros);
      t.unpriced += BigInt(r.costUnknownRequests);
    }
  }
  const cells = (t) => [cell("requests", count(t.requests), "num"),
    cell("input_tokens", count(t.input), "num"), cell("output_tokens", count(t.output), "num"),
    cell("cost", usd(t.cost), "num"), cell("unpriced_requests", count(t.unpriced), "num")];
  // Largest cost first; ties by name, so the order is stable between loads.
  const sorted = [...totals.entries()].sort((a, b) =>
    (b[1].cost > a[1].cost ? 1 : b[1].cost < a[1].cost ? -1 : a[0].localeCompare(b[0])));
  fill(table.tBodies[0], sorted.map(([k, t]) => el("tr", { [`data-${key}`]: k }, cell(key, k),
    ...cells(t))), "No spend in this range.", 6);
  table.tFoot.replaceChildren(el("tr", { "data-total": "" }, cell(key, "Total"), ...cells(all)));
  return sorted.map(([k]) => k);
}

function spendChart(container, rows, key, keys, startMs) {
  const width = 560, height = 220, left = 70, bottom = 24, top = 8;
  const slot = (width - left - 8) / SPEND_HOURS;
  const perHour = Array.from({ length: SPEND_HOURS }, () => new Map());
  for (const r of rows) {
    const i = Math.floor((Date.parse(r.bucketStart) - startMs) / HOUR_MS);
    if (i < 0 || i >= SPEND_HOURS) continue;
    const k = r[key] || "(none)";
    perHour[i].set(k, (perHour[i].get(k) || 0n) + BigInt(r.costUsdMicros));
  }
  let max = 0n;
  for (const h of perHour) {
    let sum = 0n;
    for (const v of h.values()) sum += v;
    if (sum > max) max = sum;
  }
  const plot = height - bottom - top;
  const y = (micros) => (max > 0n ? Number((micros * BigInt(plot * 1000)) / max) / 1000 : 0);
  const g = svg("svg", { width, height: height + 16 * Math.ceil(keys.length / 3), role: "img",
    "aria-label": `spend per hour by ${key}` });
  for (const f of [0n, 1n, 2n, 3n, 4n]) {
    const yy = height - bottom - y((max * f) / 4n);
    g.append(svg("line", { class: "grid", x1: left, x2: width - 8, y1: yy, y2: yy }),
      svg("text", { class: "tick", x: left - 4, y: yy + 3, "text-anchor": "end" },
        usd((max * f) / 4n)));
  }
  perHour.forEach((h, i) => {
    let base = height - bottom;
    keys.forEach((k, n) => {
      const v = h.get(k);
      if (!v) return;
      const hgt = y(v);
      base -= hgt;
      g.append(svg("rect", { x: left + i * slot + 1, y: base, width: Math.max(1, slot - 2),
        height: hgt, fill: PALETTE[n % PALETTE.length] },
      svg("title", {}, `${k}: ${usd(v)}`)));
    });
    if (i % 6 === 0) {
      g.append(svg("text", { class: "tick", x: left + i * slot, y: height - 8 },
        new Date(startMs + i * HOUR_MS).toISOString().slice(11, 16)));
    }
  });
  g.append(svg("line", { class: "axis", x1: left, x2: left, y1: top, y2: height - bottom }),
    svg("line", { class: "axis", x1: left, x2: width - 8, y1: height - bottom,
      y2: height - bottom }));
  keys.forEach((k, n) => {
    const x = left + (n % 3) * 160, yy = height + 4 + 16 * Math.floor(n / 3);
    g.append(svg("rect", { x, y: yy, width: 10, height: 10, fill: PALETTE[n % PALETTE.length] }),
      svg("text", { class: "legend", x: x + 14, y: yy + 9 }, k));
  });
  container.replaceChildren(g);
}

function alertRow(a) {
  const state = (a.state || "").replace("ALERT_STATE_", "").toLowerCase();
  return el("tr", { "data-rule": a.rule, "data-subject": a.subject || "" },
    cell("rule", a.rule), cell("kind", (a.kind || "").replace("ALERT_KIND_", "").toLowerCase()),
    cell("subject", a.subject || "—"), cell("state", state, `state-${state}`),
    cell("since", when(Date.parse(a.firedAt || a.activeSince))), cell("summary", a.summary || ""));
}

function gatewayRow(d) {
  const upstreams = el("td", { "data-field": "upstreams" });
  for (const u of d.upstreams || []) {
    const state = (u.breakerState || "BREAKER_STATE_UNSPECIFIED").replace("BREAKER_STATE_", "")
      .toLowerCase();
    upstreams.append(el("span", { class: `breaker breaker-${state}`,
      "data-upstream": `${u.provider}/${u.model}`, "data-state": state },
    `${u.provider}/${u.model}${u.credential ? " (" + u.credential + ")" : ""}: ${state}`));
  }
  if (!upstreams.childNodes.length) upstreams.append("no health report yet");
  const version = d.ackedVersion || "—";
  return el("tr", { "data-node": d.nodeId }, cell("node", d.nodeId),
    cell("connected", d.connected ? "connected" : "disconnected"),
    cell("version", d.lastNack ? `${version} (NACKed ${d.nackedVersion}: ${d.lastNack})` : version),
    cell("last_seen", when(Date.parse(d.lastSeen))), upstreams);
}

async function load() {
  const status = document.getElementById("status");
  document.body.removeAttribute("data-ready");
  status.textContent = "Loading…";
  const nowMs = Date.now();
  const endMs = Math.floor(nowMs / HOUR_MS) * HOUR_MS + HOUR_MS;  // the next UTC hour
  const startMs = endMs - SPEND_HOURS * HOUR_MS;
  const range = [["start_time", new Date(startMs).toISOString()],
    ["end_time", new Date(endMs).toISOString()], ["granularity", "GRANULARITY_HOUR"]];
  const [budgets, byCapability, byModel, alerts, gateways] = await Promise.all([
    listAll("budgets", "budgets"),
    api("spend", [...range, ["group_by", "GROUP_BY_CAPABILITY"]]),
    api("spend", [...range, ["group_by", "GROUP_BY_MODEL"]]),
    listAll("alerts", "alerts", [["states", "ALERT_STATE_FIRING"], ["states", "ALERT_STATE_PENDING"]]),
    listAll("dataplanes", "dataPlanes"),
  ]);
  fill(document.querySelector("#budgets tbody"), budgets.map((b) => budgetRow(b, nowMs)),
    "No budgets.", 11);
  const rangeNote = document.getElementById("spend-range");
  rangeNote.textContent = `The ${SPEND_HOURS} UTC hours from ${when(startMs)} to ${when(endMs)}` +
    " (QuerySpend, per hour). Cost counts requests with a known price.";
  rangeNote.dataset.start = new Date(startMs).toISOString();
  rangeNote.dataset.end = new Date(endMs).toISOString();
  for (const [key, answer] of [["capability", byCapability], ["model", byModel]]) {
    const rows = answer.rows || [];
    const keys = spendTable(document.getElementById(`spend-${key}`), rows, key);
    spendChart(document.getElementById(`chart-${key}`), rows, key, keys, startMs);
  }
  fill(document.querySelector("#alerts tbody"), alerts.map(alertRow),
    "No alert is firing or pending.", 6);
  fill(document.querySelector("#gateways tbody"), gateways.map(gatewayRow),
    "No gateway has connected since the control plane started.", 5);
  status.textContent = `As of ${when(nowMs)}.`;
  document.body.dataset.ready = "true";
}

function showLogin(message) {
  document.getElementById("content").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message || "";
  document.getElementById("status").textContent = "An admin token is needed.";
}

async function start() {
  if (!readToken()) return showLogin("");
  document.getElementById("login").hidden = true;
  document.getElementById("content").hidden = false;
  try {
    await load();
  } catch (e) {
    if (e instanceof Unauthorized) {
      sessionStorage.removeItem(TOKEN_KEY);
      return showLogin(`The token was refused: ${e.message}`);
    }
    document.getElementById("status").textContent = `Could not load: ${e.message}`;
    document.body.dataset.error = e.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = document.getElementById("token").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    start();
  });
  document.getElementById("refresh").addEventListener("click", start);
  document.getElementById("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("");
  });
  start();
});
