// discord-mitm live explorer. Plain DOM, no dependencies; every recorded value is put in the
// page with textContent (never as HTML).
"use strict";

const state = { items: [], routes: null, openapi: null, selected: null, view: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function getJson(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).message || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response.json();
}

function timeText(us) {
  if (us === null || us === undefined) return "";
  const d = new Date(us / 1000);
  return d.toISOString().slice(11, 23);
}

function statusClass(status) {
  return status ? "s" + String(status)[0] : "";
}

function matchesFilter(text) {
  const wanted = $("filter").value.trim().toLowerCase();
  return !wanted || text.toLowerCase().includes(wanted);
}

// ---- traffic list ----

function itemRow(item, fresh) {
  const key = item.kind + ":" + item.id;
  const isRest = item.kind === "rest";
  const row = el("tr", {
    class: "item " + (isRest ? "rest" : "gateway") + (fresh ? " fresh" : ""),
    "data-kind": item.kind, "data-id": String(item.id), "data-key": key,
    onclick: () => select(item),
  },
    el("td", {}, isRest ? item.id : "gw:" + item.id),
    el("td", {}, timeText(item.started_at_us)),
    el("td", {}, isRest ? item.method : "WS"),
    el("td", { class: statusClass(item.status) }, item.status ?? (item.error ? "ERR" : "-")),
    el("td", { class: "path" }, isRest ? item.host + item.path : item.url + (item.ended_at_us ? "" : " (open)")),
    el("td", {}, isRest ? item.source : (item.frames + " frames")));
  if (state.selected === key) row.classList.add("selected");
  const text = isRest ? item.method + " " + item.path + " " + item.route : "gateway " + item.url;
  if (!matchesFilter(text)) row.classList.add("hidden");
  return row;
}

function renderItems() {
  const body = $("items").tBodies[0];
  body.replaceChildren(...state.items.map((item) => itemRow(item, false)));
  $("count-items").textContent = String(state.items.length);
}

function upsertItem(item) {
  const key = item.kind + ":" + item.id;
  const index = state.items.findIndex((i) => i.kind + ":" + i.id === key);
  const body = $("items").tBodies[0];
  const row = itemRow(item, true);
  if (index >= 0) {
    state.items[index] = item;
    const old = body.querySelector('tr[data-key="' + key + '"]');
    if (old) old.replaceWith(row); else body.append(row);
  } else {
    state.items.push(item);
    body.append(row);
  }
  $("count-items").textContent = String(state.items.length);
}

// ---- routes ----

async function loadRoutes() {
  try {
    state.routes = await getJson("/api/v1/routes");
  } catch (err) {
    $("routes").tBodies[0].replaceChildren(el("tr", {}, el("td", { colspan: "5" }, "cannot load routes: " + err.message)));
    return;
  }
  renderRoutes();
}

function renderRoutes() {
  const routes = state.routes ? state.routes.routes : [];
  $("count-routes").textContent = String(routes.length);
  $("routes").tBodies[0].replaceChildren(...routes.map((route) => {
    const statuses = Object.entries(route.statuses).map(([s, n]) => s + "×" + n).join(" ");
    const row = el("tr", { class: "route-row", "data-route": route.method + " " + route.template, onclick: () => showRoute(route) },
      el("td", {}, route.method),
      el("td", { class: "path" }, route.host + route.template),
      el("td", {}, route.count),
      el("td", {}, statuses),
      el("td", {}, route.documented_as ? "yes" : "NO"));
    if (!matchesFilter(route.method + " " + route.template)) row.classList.add("hidden");
    return row;
  }));
  const gw = state.routes ? state.routes.gateway : null;
  const counts = $("gateway-counts");
  counts.replaceChildren();
  if (gw) {
    counts.append(el("p", {}, gw.sessions + " sessions"));
    const list = (title, map) => el("dl", {}, ...Object.entries(map).flatMap(([k, v]) => [el("dt", {}, title + " " + k), el("dd", {}, v)]));
    counts.append(list("sent op", gw.sent_ops), list("received op", gw.received_ops), list("event", gw.dispatches));
  }
}

async function showRoute(route) {
  state.selected = null;
  state.view = null;
  const detail = $("detail");
  detail.replaceChildren(el("h2", {}, route.method + " " + route.host + route.template),
    el("dl", {}, el("dt", {}, "exchanges"), el("dd", {}, route.count),
      el("dt", {}, "first seen"), el("dd", {}, new Date(route.first_seen_us / 1000).toISOString()),
      el("dt", {}, "last seen"), el("dd", {}, new Date(route.last_seen_us / 1000).toISOString()),
      el("dt", {}, "documented"), el("dd", {}, route.documented_as || "no")));
  try {
    if (!state.openapi) state.openapi = await getJson("/api/v1/openapi.json");
  } catch (err) {
    detail.append(el("p", {}, "cannot load the inferred schema: " + err.message));
    return;
  }
  const operation = findOperation(state.openapi, route);
  detail.append(el("h3", {}, "Inferred OpenAPI operation"),
    el("pre", { class: "schema" }, operation ? JSON.stringify(operation, null, 2) : "(no operation inferred for this route)"));
}

function findOperation(doc, route) {
  const paths = doc.paths || {};
  const method = route.method.toLowerCase();
  const wanted = route.template.replace(/\{[^}]*\}/g, "{}");
  for (const [path, item] of Object.entries(paths)) {
    if (path.replace(/\{[^}]*\}/g, "{}") === wanted && item[method]) return item[method];
  }
  return null;
}

// ---- details ----

function select(item) {
  state.selected = item.kind + ":" + item.id;
  for (const row of document.querySelectorAll("#items tr.selected")) row.classList.remove("selected");
  const row = document.querySelector('#items tr[data-key="' + state.selected + '"]');
  if (row) row.classList.add("selected");
  if (item.kind === "rest") showExchange(item.id); else showSession(item.id);
}

function headersList(headers) {
  return el("dl", { class: "headers" }, ...headers.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
}

function bodyBlock(body) {
  if (!body) return el("p", { class: "muted" }, "(no body)");
  let text = body.text ?? body.base64 ?? "";
  if (body.json !== undefined) text = JSON.stringify(body.json, null, 2);
  else if (typeof text === "string" && text && /^[\[{]/.test(text.trim())) {
    try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON */ }
  }
  if (!text) text = JSON.stringify(body, null, 2);
  return el("pre", { class: "body" }, text);
}

async function showExchange(id) {
  state.view = { kind: "rest", id };
  const detail = $("detail");
  let e;
  try { e = await getJson("/api/v1/exchanges/" + id); } catch (err) {
    detail.replaceChildren(el("p", {}, "cannot load exchange " + id + ": " + err.message));
    return;
  }
  detail.replaceChildren(
    el("h2", { id: "exchange-title" }, e.method + " " + e.url),
    el("dl", {}, el("dt", {}, "id"), el("dd", {}, e.id),
      el("dt", {}, "answered by"), el("dd", { id: "exchange-source" }, e.source),
      el("dt", {}, "route"), el("dd", {}, e.route),
      el("dt", {}, "status"), el("dd", {}, e.response ? e.response.status : "-"),
      el("dt", {}, "started"), el("dd", {}, e.started_at),
      el("dt", {}, "duration"), el("dd", {}, e.duration_ms + " ms"),
      el("dt", {}, "client"), el("dd", {}, e.client_addr),
      el("dt", {}, "error"), el("dd", {}, e.error || "-"),
      el("dt", {}, "redacted"), el("dd", {}, (e.redactions || []).join(", ") || "-")),
    el("h3", {}, "Request headers"), headersList(e.request.headers),
    el("h3", {}, "Request body"), bodyBlock(e.request.body),
    el("h3", {}, "Response headers"), e.response ? headersList(e.response.headers) : el("p", {}, "-"),
    el("h3", {}, "Response body"), e.response ? bodyBlock(e.response.body) : el("p", {}, "-"));
}

async function showSession(id) {
  state.view = { kind: "gateway", id };
  const detail = $("detail");
  let s;
  try { s = await getJson("/api/v1/sessions/" + id); } catch (err) {
    detail.replaceChildren(el("p", {}, "cannot load gateway session " + id + ": " + err.message));
    return;
  }
  const latencies = s.heartbeats.filter((h) => h.latency_ms !== null).map((h) => h.latency_ms);
  const average = latencies.length ? (latencies.reduce((a, b) => a + b, 0) / latencies.length).toFixed(1) + " ms" : "-";
  const frames = el("tbody");
  s.frames.forEach((f, index) => {
    const c2s = f.direction === "send";
    const row = el("tr", { class: "frame " + (c2s ? "c2s" : "s2c"), "data-index": String(index) },
      el("td", {}, c2s ? "→ sent" : "← received"),
      el("td", {}, "+" + f.offset_ms.toFixed(1) + " ms"),
      el("td", {}, f.op ?? "-"),
      el("td", {}, f.t ?? ""),
      el("td", {}, f.s ?? ""),
      el("td", {}, f.raw_size + " B"),
      el("td", {}, f.decode_error ? "! " + f.decode_error : (f.redacted ? "redacted" : "")));
    row.addEventListener("click", () => toggleFrame(row, f));
    frames.append(row);
  });
  detail.replaceChildren(
    el("h2", { id: "session-title" }, "gw:" + s.id + " " + s.url),
    el("dl", {}, el("dt", {}, "started"), el("dd", {}, s.started_at),
      el("dt", {}, "ended"), el("dd", {}, s.ended_at || "open"),
      el("dt", {}, "encoding"), el("dd", {}, (s.encoding || "json") + (s.compress ? ", " + s.compress : "")),
      el("dt", {}, "closes"), el("dd", {}, s.closes.map((c) => c.from + " " + (c.code ?? "") + " " + c.reason).join("; ") || "-"),
      el("dt", {}, "heartbeats"), el("dd", { id: "heartbeat-latency" }, s.heartbeats.length + " (average round trip " + average + ")"),
      el("dt", {}, "error"), el("dd", {}, s.error || "-")),
    el("h3", {}, "Frames (" + s.frames.length + ")"),
    el("table", { id: "frames" }, el("thead", {}, el("tr", {}, el("th", {}, "dir"), el("th", {}, "time"), el("th", {}, "op"), el("th", {}, "t"), el("th", {}, "s"), el("th", {}, "size"), el("th", {}, ""))), frames));
}

function toggleFrame(row, frame) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains("frame-payload")) { next.remove(); return; }
  const text = frame.payload !== null && frame.payload !== undefined ? JSON.stringify(frame.payload, null, 2) : "(no decoded payload)";
  row.after(el("tr", { class: "frame-payload" }, el("td", { colspan: "7" }, el("pre", {}, text))));
}

// ---- tabs, filter, hooks ----

function showTab(name) {
  for (const tab of ["traffic", "routes", "diff", "search"]) $("tab-" + tab).classList.toggle("active", tab === name);
  $("pane-traffic").classList.toggle("hidden", name !== "traffic");
  $("pane-routes").classList.toggle("hidden", name !== "routes");
  $("pane-hook").classList.toggle("hidden", name === "traffic" || name === "routes");
  if (name === "routes") loadRoutes();
  if (name === "diff" || name === "search") {
    // Hook: these views call /api/v1/diff and /api/v1/search once those builders exist.
    getJson("/api/v1/" + name).then((data) => { $("hook-text").textContent = JSON.stringify(data, null, 2); },
      (err) => { $("hook-text").textContent = err.message; });
  }
}

// ---- live updates ----

let routesTimer = null;
let viewTimer = null;

function connect() {
  const events = new EventSource("/api/v1/events");
  events.addEventListener("open", () => { $("status").textContent = "live"; $("status").className = "status live"; });
  events.addEventListener("error", () => { $("status").textContent = "reconnecting…"; $("status").className = "status down"; });
  events.addEventListener("exchange", (m) => upsertItem(JSON.parse(m.data)));
  events.addEventListener("session", (m) => upsertItem(JSON.parse(m.data)));
  events.addEventListener("reload", () => loadItems());
  events.addEventListener("change", () => {
    state.openapi = null;
    if (!routesTimer) routesTimer = setTimeout(() => { routesTimer = null; if (!$("pane-routes").classList.contains("hidden")) loadRoutes(); }, 500);
    if (state.view && state.view.kind === "gateway" && !viewTimer) {
      viewTimer = setTimeout(() => { viewTimer = null; if (state.view && state.view.kind === "gateway") refreshSession(state.view.id); }, 500);
    }
  });
}

async function refreshSession(id) {
  const open = new Set([...document.querySelectorAll("#frames tr.frame-payload")].map((r) => r.previousElementSibling && r.previousElementSibling.dataset.index));
  await showSession(id);
  for (const index of open) {
    const row = document.querySelector('#frames tr.frame[data-index="' + index + '"]');
    if (row) row.click();
  }
}

async function loadItems() {
  try {
    state.items = await getJson("/api/v1/items?limit=2000");
    renderItems();
  } catch (err) {
    $("status").textContent = "error: " + err.message;
    $("status").className = "status down";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of ["traffic", "routes", "diff", "search"]) $("tab-" + tab).addEventListener("click", () => showTab(tab));
  $("filter").addEventListener("input", () => { renderItems(); renderRoutes(); });
  loadItems().then(connect);
  loadRoutes();
});
