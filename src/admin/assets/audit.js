// The audit page: searches /api/audit with the form's filters, lists the records, opens one, and
// shows the chain's state from /api/audit/verify. Every value from the trail is set as text, never
// as markup: callers choose instance ids and keys.
"use strict";

const tokenKey = "crossgate-admin-token";
const $ = (selector) => document.querySelector(selector);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (name === "class") node.className = value;
    else if (name.startsWith("data-")) node.setAttribute(name, value);
    else node[name] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem(tokenKey);
  if (token) headers.Authorization = "Bearer " + token;
  const res = await fetch(path, { headers, cache: "no-store" });
  if (res.status === 401) {
    $("#token-form").hidden = false;
    throw new Error("this listener needs its admin token");
  }
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

function query() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData($("#filters"))) {
    if (String(value).trim() !== "") params.set(name, String(value).trim());
  }
  return params.toString();
}

function status(text, isError) {
  const node = $("#status");
  node.textContent = text;
  node.className = isError ? "error" : "";
}

const verdict = (r) => r.phase === "admitted" ? "" : (r.phase === "completed" && r.code === "Success" && !r.kind ? "ok" : "error");
const list = (values) => (values || []).join(", ");

let shown = [];

function row(record, index) {
  const tr = el("tr", { "data-request-id": record.request_id, "data-phase": record.phase, "data-index": index },
    el("td", { class: "mono" }, record.time),
    el("td", { class: "mono" }, record.request_id),
    el("td", {}, el("span", { class: "phase " + record.phase }, record.phase)),
    el("td", {}, record.caller || "–"),
    el("td", {}, record.dialect || "–"),
    el("td", {}, record.action || "–"),
    el("td", { class: "mono" }, list(record.instances) || "–"),
    el("td", {}, list(record.upstreams) || "–"),
    el("td", { class: verdict(record) }, record.code || "–"),
    el("td", {}, record.status || "–"),
    el("td", {}, record.phase === "admitted" ? "–" : Number(record.latency_ms || 0).toFixed(1)));
  tr.addEventListener("click", () => show(index));
  return tr;
}

function pairs(entries) {
  const dl = el("dl");
  for (const [name, value] of entries) {
    if (value === null || value === undefined || value === "" || (Array.isArray(value) && value.length === 0)) continue;
    dl.append(el("dt", {}, name), el("dd", {}, Array.isArray(value) ? value.join(", ") : value));
  }
  return dl;
}

function grid(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c ?? "–"))))));
}

function show(index) {
  const r = shown[index];
  document.querySelectorAll("#records tbody tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.index === String(index)));
  const detail = $("#detail");
  detail.replaceChildren(
    el("h2", {}, r.request_id || "segment record"),
    el("h3", {}, "As the caller sent it"),
    pairs([["caller", r.caller], ["from", r.source], ["dialect", r.dialect], ["action", r.action],
      ["instances", r.instances], ["keys", r.keys], ["arrived", r.time], ["phase", r.phase]]),
    el("h3", {}, "Translated for the upstreams"),
    pairs([["upstreams", r.upstreams], ["actions sent", r.upstream_actions], ["keys sent", r.keys_translated],
      ["upstream request ids", r.upstream_request_ids]]),
    r.results && r.results.length ? grid(["instance", "sent as", "upstream", "outcome"],
      r.results.map((x) => [x.instance, x.translated, x.upstream, x.outcome])) : null,
    r.upstream_calls && r.upstream_calls.length ? el("h3", {}, "Upstream calls") : null,
    r.upstream_calls && r.upstream_calls.length ? grid(["upstream", "action", "try", "ending", "status", "fault", "ms"],
      r.upstream_calls.map((c) => [c.upstream, c.action, c.attempt, c.ending, c.status, c.fault, c.elapsed_ms])) : null,
    r.steps && r.steps.length ? el("h3", {}, "Steps taken") : null,
    r.steps && r.steps.length ? el("ol", { class: "steps" }, ...r.steps.map((s) => el("li", {}, s))) : null,
    r.shadow_differences && r.shadow_differences.length ? el("h3", {}, "Shadow differences") : null,
    r.shadow_differences && r.shadow_differences.length ? grid(["shadow", "kind", "subject", "answered", "shadow"],
      r.shadow_differences.map((d) => [d.shadow, d.kind, d.subject, d.primary, d.shadow_value])) : null,
    r.shadow_requests && r.shadow_requests.length ? el("h3", {}, "Not sent to the shadow") : null,
    r.shadow_requests && r.shadow_requests.length ? el("ol", { class: "steps" }, ...r.shadow_requests.map((s) => el("li", {}, s))) : null,
    el("h3", {}, "Result"),
    pairs([["code", r.code], ["status", r.status || null], ["kind", r.kind], ["whose fault", r.fault_source],
      ["message", r.message], ["latency ms", r.phase === "admitted" ? null : Number(r.latency_ms || 0).toFixed(2)]]),
    el("h3", {}, "Record"),
    el("pre", { class: "mono" }, JSON.stringify(r, null, 2)));
  detail.hidden = false;
}

async function search() {
  status("searching…");
  try {
    const body = await api("/api/audit?" + query());
    shown = body.records.slice().reverse();
    $("#records tbody").replaceChildren(...shown.map(row));
    status(body.count === 0 ? "no record matches" : `${body.count} record${body.count === 1 ? "" : "s"}, newest first` +
      (body.count === body.limit ? ` (the latest ${body.limit})` : ""));
  } catch (e) {
    status(e.message, true);
  }
}

async function chain() {
  const node = $("#chain");
  try {
    const state = await api("/api/audit/verify");
    node.className = "chain " + (state.intact ? "intact" : "broken");
    node.textContent = state.intact
      ? `chain intact · ${state.records} record${state.records === 1 ? "" : "s"}, ${state.segments} segment${state.segments === 1 ? "" : "s"}`
      : "chain broken";
    node.title = state.summary;
    node.dataset.intact = String(state.intact);
  } catch (e) {
    node.className = "chain unknown";
    node.textContent = "chain not checked";
    node.title = e.message;
  }
}

let timer = null;

document.addEventListener("DOMContentLoaded", () => {
  $("#filters").addEventListener("submit", (event) => { event.preventDefault(); search(); chain(); });
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(tokenKey, new FormData(event.target).get("token"));
    event.target.hidden = true;
    search();
    chain();
  });
  $("#follow").addEventListener("change", (event) => {
    clearInterval(timer);
    if (event.target.checked) timer = setInterval(() => { search(); chain(); }, 2000);
  });
  search();
  chain();
});
