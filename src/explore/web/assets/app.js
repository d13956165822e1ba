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
  if (!operation) {
    detail.append(el("p", { class: "muted" }, "(no operation inferred for this route)"));
    return;
  }
  const raw = el("pre", { class: "schema raw hidden" }, JSON.stringify(operation, null, 2));
  const tree = operationView(operation);
  const toggle = el("button", { id: "schema-raw-toggle", type: "button" }, "raw JSON");
  toggle.addEventListener("click", () => {
    const showRaw = raw.classList.contains("hidden");
    raw.classList.toggle("hidden", !showRaw);
    tree.classList.toggle("hidden", showRaw);
    toggle.textContent = showRaw ? "tree" : "raw JSON";
  });
  detail.append(el("h3", {}, "Inferred schema ", toggle), tree, raw);
}

// ---- inferred schema as a tree ----

function typeText(schema) {
  if (!schema || typeof schema !== "object") return "any";
  let types = schema.type;
  if (types === undefined) {
    if (schema.anyOf || schema.oneOf) return "one of";
    if (schema.properties) types = "object";
    else return "any";
  }
  const list = (Array.isArray(types) ? types : [types]).filter((t) => t !== "null");
  let text = list.map((t) => (t === "array" && schema.items ? "array of " + typeText(schema.items) : t)).join(" | ") || "null";
  if (Array.isArray(types) && types.includes("null")) text += " | null";
  return text;
}

// One field: name, type(s), required/optional, format, enum values; its children nested.
function fieldNode(name, schema, required, depth) {
  schema = schema && typeof schema === "object" ? schema : {};
  const line = el("span", { class: "field" },
    el("span", { class: "field-name" }, name),
    el("span", { class: "field-type" }, typeText(schema)));
  if (required !== null) line.append(el("span", { class: required ? "req" : "opt" }, required ? "required" : "optional"));
  if (schema.format) line.append(el("span", { class: "format" }, schema.format));
  if (schema.contentMediaType) line.append(el("span", { class: "format" }, schema.contentMediaType));
  if (Array.isArray(schema.enum)) line.append(el("span", { class: "enum" }, "enum: " + schema.enum.map((v) => JSON.stringify(v)).join(", ")));
  if (schema["x-secret"]) line.append(el("span", { class: "opt" }, "secret"));
  if (schema["x-fields-truncated"]) line.append(el("span", { class: "opt" }, "more fields not shown"));
  const children = schemaChildren(schema, depth + 1);
  if (!children) return el("li", {}, line);
  const node = el("details", {}, el("summary", {}, line), children);
  if (depth < 2) node.open = true;
  return el("li", {}, node);
}

function schemaChildren(schema, depth) {
  const items = [];
  if (schema.properties) {
    const required = new Set(schema.required || []);
    for (const [name, field] of Object.entries(schema.properties)) items.push(fieldNode(name, field, required.has(name), depth));
  }
  let inner = schema.items;
  while (inner && inner.items && !inner.properties) inner = inner.items;
  if (inner && inner.properties) {
    const required = new Set(inner.required || []);
    for (const [name, field] of Object.entries(inner.properties)) items.push(fieldNode("[]." + name, field, required.has(name), depth));
  }
  for (const key of ["anyOf", "oneOf"]) {
    (schema[key] || []).forEach((member, index) => items.push(fieldNode("(" + (index + 1) + ")", member, null, depth)));
  }
  return items.length ? el("ul", { class: "schema-tree" }, ...items) : null;
}

function bodyTrees(content) {
  return Object.entries(content || {}).map(([media, entry]) =>
    el("div", { class: "body-schema" }, el("div", { class: "media" }, media),
      el("ul", { class: "schema-tree" }, fieldNode("(body)", entry.schema, null, 0))));
}

function operationView(operation) {
  const view = el("div", { class: "operation" });
  const facts = operation["x-discord-mitm"];
  if (facts && typeof facts === "object") {
    view.append(el("dl", { class: "facts" }, ...Object.entries(facts).flatMap(([key, value]) =>
      [el("dt", {}, key), el("dd", {}, typeof value === "object" ? JSON.stringify(value) : String(value))])));
  }
  const parameters = operation.parameters || [];
  if (parameters.length) {
    view.append(el("h3", {}, "Parameters"), el("table", { class: "parameters" },
      el("thead", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, ""))),
      el("tbody", {}, ...parameters.map((p) => el("tr", {},
        el("td", { class: "field-name" }, p.name), el("td", {}, p.in),
        el("td", {}, typeText(p.schema) + (p.schema && p.schema.format ? " (" + p.schema.format + ")" : "")),
        el("td", { class: p.required ? "req" : "opt" }, p.required ? "required" : "optional"))))));
  }
  if (operation.requestBody) view.append(el("h3", {}, "Request body"), ...bodyTrees(operation.requestBody.content));
  for (const [status, response] of Object.entries(operation.responses || {})) {
    view.append(el("h3", {}, "Response " + status));
    if (response.content) view.append(...bodyTrees(response.content));
    else view.append(el("p", { class: "muted" }, response.description || "(no body)"));
  }
  return view;
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
    const row = el("tr", { class: "frame " + (c2s ? "c2s" : "s2c"), "data-index": String(index), "data-frame-id": "gw:" + s.id + ":" + f.direction + ":" + f.seq },
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

// ---- tabs ----

const TABS = ["traffic", "routes", "diff", "search"];

function showTab(name) {
  for (const tab of TABS) {
    $("tab-" + tab).classList.toggle("active", tab === name);
    $("pane-" + tab).classList.toggle("hidden", tab !== name);
  }
  if (name === "routes") loadRoutes();
  if (name === "diff") prepareDiff();
}

// ---- search ----

function searchParams() {
  const params = new URLSearchParams();
  for (const [key, id] of [["q", "search-text"], ["route", "search-route"], ["event", "search-event"], ["since", "search-since"], ["until", "search-until"]]) {
    const value = $(id).value.trim();
    if (value) params.set(key, value);
  }
  for (const line of $("search-where").value.split("\n")) {
    if (line.trim()) params.append("where", line.trim());
  }
  params.set("limit", "500");
  return params;
}

async function runSearch() {
  const summary = $("search-summary");
  const body = $("search-results").tBodies[0];
  summary.textContent = "searching…";
  body.replaceChildren();
  let answer;
  try { answer = await getJson("/api/v1/search?" + searchParams().toString()); } catch (err) {
    summary.textContent = "search failed: " + err.message;
    return;
  }
  summary.textContent = answer.total + " hit(s)" + (answer.shown < answer.total ? ", first " + answer.shown + " shown" : "");
  body.replaceChildren(...answer.hits.map((hit) => el("tr", { class: "hit " + hit.kind, "data-id": hit.id, onclick: () => openHit(hit.id) },
    el("td", {}, hit.id),
    el("td", {}, hit.at.slice(11, 23)),
    el("td", { class: "what" }, hit.summary),
    el("td", {}, hit.place),
    el("td", { class: "path snippet" }, hit.snippet))));
}

// Opens what a hit names: an exchange (`42`) or a gateway frame (`gw:3:receive:7`).
async function openHit(id) {
  for (const row of document.querySelectorAll("#search-results tr.selected")) row.classList.remove("selected");
  const row = [...document.querySelectorAll("#search-results tr.hit")].find((r) => r.dataset.id === id);
  if (row) row.classList.add("selected");
  const frame = /^gw:(\d+):(send|receive):(\d+)$/.exec(id);
  const session = /^gw:(\d+)$/.exec(id);
  if (frame) {
    await showSession(Number(frame[1]));
    const target = [...document.querySelectorAll("#frames tr.frame")].find((r) => r.dataset.frameId === id);
    if (target) {
      target.classList.add("selected");
      target.click();
      target.scrollIntoView({ block: "center" });
    }
  } else if (session) {
    await showSession(Number(session[1]));
  } else {
    await showExchange(Number(id));
  }
}

// ---- diff ----

let diffSources = null;

async function prepareDiff() {
  const list = $("diff-sessions");
  list.replaceChildren(...state.items.filter((i) => i.kind === "gateway").map((i) =>
    el("option", { value: String(i.id) }, "gw:" + i.id + " " + new Date(i.started_at_us / 1000).toISOString())));
  if (diffSources) return;
  try { diffSources = await getJson("/api/v1/diff/sources"); } catch (err) {
    $("diff-result").replaceChildren(el("p", {}, "cannot load the diff sources: " + err.message));
    return;
  }
  for (const side of ["a", "b"]) {
    const select = $("diff-" + side + "-source");
    select.firstElementChild.textContent = "this one (" + diffSources.live + ")";
    if (diffSources.compare) select.append(el("option", { value: "compare" }, "compare (" + diffSources.compare + ")"));
  }
}

function diffParams() {
  const params = new URLSearchParams();
  for (const side of ["a", "b"]) {
    params.set(side, $("diff-" + side + "-source").value);
    for (const part of ["session", "since", "until"]) {
      const value = $("diff-" + side + "-" + part).value.trim();
      if (value) params.set(side + "_" + part, value);
    }
  }
  return params;
}

async function runDiff() {
  const result = $("diff-result");
  result.replaceChildren(el("p", { class: "muted" }, "comparing…"));
  const params = diffParams();
  let diff;
  try { diff = await getJson("/api/v1/diff?" + params.toString()); } catch (err) {
    result.replaceChildren(el("p", { class: "error" }, "diff failed: " + err.message));
    return;
  }
  const sideOf = (name) => ({
    live: params.get(name) === "live",
    since: params.get(name + "_since") || "", until: params.get(name + "_until") || "",
  });
  result.replaceChildren(el("p", { class: "diff-sides" }, "A: " + diff.a, el("br"), "B: " + diff.b));
  const empty = ["routes", "events"].every((k) => !diff[k].added.length && !diff[k].removed.length && !diff[k].changed.length);
  if (empty) result.append(el("p", { id: "diff-empty" }, "no differences"));
  for (const [key, title] of [["routes", "Routes"], ["events", "Gateway events"]]) {
    const section = diff[key];
    const list = el("ul", { class: "diff-list", id: "diff-" + key });
    const entry = (mark, cls, name, side) => {
      const item = el("li", { class: cls, "data-name": name }, mark + " " + name);
      if (side.live) {
        item.classList.add("link");
        item.title = "search these";
        item.addEventListener("click", () => searchFor(key, name, side));
      }
      return item;
    };
    for (const name of section.added) list.append(entry("+", "diff-added", name, sideOf("b")));
    for (const name of section.removed) list.append(entry("−", "diff-removed", name, sideOf("a")));
    for (const changed of section.changed) {
      const item = entry("~", "diff-changed", changed.name, sideOf("b"));
      item.append(el("ul", {}, ...changed.changes.map((c) => el("li", { class: "change" }, changeText(c)))));
      list.append(item);
    }
    result.append(el("h3", {}, title + ": " + section.added.length + " added, " + section.removed.length + " removed, " + section.changed.length + " changed"), list);
  }
}

function changeText(c) {
  const field = c.field || "(body)";
  const what = {
    type_changed: "type changed: " + (c.from || "?") + " → " + (c.to || "?"),
    became_optional: "became optional", became_required: "became required",
    body_added: "body added", body_removed: "body removed",
  }[c.change] || ("field " + c.change + ((c.to || c.from) ? " (" + (c.to || c.from) + ")" : ""));
  return c.body + ": " + field + " " + what;
}

// A search for the exchanges or frames behind one diff entry, in that side's time range.
function searchFor(section, name, side) {
  for (const id of ["search-text", "search-route", "search-event", "search-where"]) $(id).value = "";
  const space = name.indexOf(" ");
  if (section === "routes") {
    $("search-route").value = name.slice(space + 1);
  } else {
    const rest = name.slice(space + 1);
    $("search-event").value = rest.startsWith("op ") ? rest.slice(3) : rest;
  }
  $("search-since").value = side.since;
  $("search-until").value = side.until;
  showTab("search");
  runSearch();
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
  for (const tab of TABS) $("tab-" + tab).addEventListener("click", () => showTab(tab));
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); runSearch(); });
  $("diff-form").addEventListener("submit", (e) => { e.preventDefault(); runDiff(); });
  $("filter").addEventListener("input", () => { renderItems(); renderRoutes(); });
  loadItems().then(connect);
  loadRoutes();
});
