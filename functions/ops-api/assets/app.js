// The operations page: the ACTION_REQUIRED queue (soonest deadline first), alert detail with the
// decision history (each automatic decision's rule and evidence), the match to the partner's
// order with its candidates and evidence, actions with a note, the enrolment board and recent order-upload failures.
// Plain DOM; every value from the API goes in through textContent, never as markup.
"use strict";

const KEY_STORAGE = "cbs-operator-key";
const REFRESH_MS = 30000;
// Relative URLs so the page works at "/" and under a prefix such as /lambda-url/ops-api/.
const BASE = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";

const state = {
  key: sessionStorage.getItem(KEY_STORAGE),
  urgentHours: 24,
  queue: [],
  selectedId: null,
  detail: null,
  pendingAction: null,
  filter: "",
  timer: null,
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `request failed with status ${status}`);
    this.status = status;
    this.field = e.field;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${state.key}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(BASE + path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (res.status === 401) { signOut("Your key was refused. Enter it again."); throw new ApiError(401, body); }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

// ---- formatting -------------------------------------------------------------------------------

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return d.toISOString().slice(0, 16).replace("T", " ");
}

function fmtLeft(ms) {
  const neg = ms < 0;
  let m = Math.floor(Math.abs(ms) / 60000);
  const d = Math.floor(m / 1440); m -= d * 1440;
  const h = Math.floor(m / 60); m -= h * 60;
  const text = d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${String(m).padStart(2, "0")}m` : `${m}m`;
  return neg ? `overdue ${text}` : text;
}

function urgencyOf(deadline) {
  if (!deadline) return { cls: "", left: "—", ms: Infinity };
  const ms = new Date(deadline) - Date.now();
  const cls = ms < 0 ? "overdue" : ms < state.urgentHours * 3600000 ? "urgent" : "";
  return { cls, left: fmtLeft(ms), ms };
}

function fmtAmount(cents, currency) {
  if (cents === null || cents === undefined) return "—";
  try {
    return new Intl.NumberFormat("en-GB", { style: "currency", currency: currency || "USD" }).format(cents / 100);
  } catch { return `${(cents / 100).toFixed(2)} ${currency || ""}`; }
}

function td(text, cls) {
  const cell = document.createElement("td");
  cell.textContent = text === null || text === undefined || text === "" ? "—" : String(text);
  if (cls) cell.className = cls;
  if (cls && cls.includes("mono")) cell.title = cell.textContent;
  return cell;
}

function badge(text, cls) {
  const b = document.createElement("span");
  b.className = `badge ${cls || text || ""}`;
  b.textContent = text || "";
  return b;
}

function toast(text, bad = false) {
  const t = $("toast");
  t.textContent = text;
  t.className = bad ? "toast bad" : "toast";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

// ---- queue ------------------------------------------------------------------------------------

async function loadQueue() {
  const body = await api("api/alerts?status=ACTION_REQUIRED&sort=action_required_deadline&limit=200");
  state.queue = body.items || [];
  renderQueue();
}

function matchesFilter(a) {
  if (!state.filter) return true;
  const hay = [a.id, a.organisation_id, a.merchant_id, a.transaction_statement_descriptor, a.enrolment_id]
    .filter(Boolean).join(" ").toLowerCase();
  return hay.includes(state.filter);
}

function visibleQueue() { return state.queue.filter(matchesFilter); }

function renderQueue() {
  const tbody = $("queue").tBodies[0];
  tbody.replaceChildren();
  let overdue = 0, urgent = 0;
  for (const a of state.queue) {
    const u = urgencyOf(a.action_required_deadline);
    if (u.cls === "overdue") overdue++;
    if (u.cls === "urgent") urgent++;
  }
  for (const a of visibleQueue()) {
    const u = urgencyOf(a.action_required_deadline);
    const tr = document.createElement("tr");
    tr.dataset.id = a.id;
    tr.tabIndex = -1;
    tr.className = [u.cls, a.id === state.selectedId ? "selected" : ""].filter(Boolean).join(" ");
    tr.append(
      td(u.left, "left"),
      td(fmtTime(a.action_required_deadline)),
      td(a.id, "mono"),
      td(a.organisation_id, "mono"),
      td(a.merchant_id, "mono"),
      td(fmtAmount(a.transaction_amount_in_cents, a.transaction_currency_code), "num"),
      td(a.transaction_statement_descriptor),
      td([a.transaction_card_scheme, a.transaction_card_last4 ? `•••• ${a.transaction_card_last4}` : ""]
        .filter(Boolean).join(" ")),
    );
    tr.addEventListener("click", () => select(a.id, true));
    tbody.append(tr);
  }
  $("queue-empty").hidden = visibleQueue().length > 0;
  $("count-overdue").textContent = overdue;
  $("count-urgent").textContent = urgent;
  $("count-queue").textContent = state.queue.length;
}

function select(id, open) {
  state.selectedId = id;
  for (const tr of $("queue").tBodies[0].rows) {
    tr.classList.toggle("selected", tr.dataset.id === id);
    if (tr.dataset.id === id) tr.scrollIntoView({ block: "nearest" });
  }
  if (open) loadDetail(id);
}

function moveSelection(step) {
  const rows = visibleQueue();
  if (!rows.length) return;
  let i = rows.findIndex((a) => a.id === state.selectedId);
  i = i < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, i + step));
  select(rows[i].id, true);
}

// ---- detail -----------------------------------------------------------------------------------

async function loadDetail(id) {
  try {
    const body = await api(`api/alerts/${encodeURIComponent(id)}`);
    if (state.selectedId !== id) return; // the operator moved on meanwhile
    state.detail = body;
    renderDetail();
  } catch (e) {
    toast(e.message, true);
  }
}

function renderDetail() {
  const d = state.detail;
  $("detail-empty").hidden = !!d;
  $("detail").hidden = !d;
  if (!d) return;
  const a = d.alert;
  $("d-id").textContent = a.id;
  const st = $("d-status");
  st.textContent = a.status;
  st.className = `badge ${a.status}`;
  const u = a.status === "ACTION_REQUIRED" ? urgencyOf(a.action_required_deadline) : { cls: "" };
  const ub = $("d-urgency");
  ub.textContent = u.cls ? (u.cls === "overdue" ? "OVERDUE" : "URGENT") : "";
  ub.className = `badge ${u.cls}`;

  const rows = [
    ["Time left", a.status === "ACTION_REQUIRED" ? urgencyOf(a.action_required_deadline).left : "—"],
    ["Deadline", fmtTime(a.action_required_deadline)],
    ["Received", fmtTime(a.alert_received_at || a.created_at)],
    ["Type", a.enrolment_type],
    ["Organisation", a.organisation_id],
    ["Merchant", a.merchant_id],
    ["Enrolment", a.enrolment_id],
    ["Amount", fmtAmount(a.transaction_amount_in_cents, a.transaction_currency_code)],
    ["Authorised", fmtTime(a.transaction_authorised_at)],
    ["Descriptor", a.transaction_statement_descriptor],
    ["Card", [a.transaction_card_scheme, a.transaction_card_bin, a.transaction_card_last4 && `•••• ${a.transaction_card_last4}`].filter(Boolean).join(" ")],
    ["Issuer", a.transaction_card_issuer],
    ["ARN", a.transaction_acquirer_reference_number],
    ["Auth code", a.transaction_authorisation_code],
    ["ChargebackStop match", a.integration_transaction_id ? `${a.integration_transaction_id} (${a.integration_id || "?"})` : "none"],
    ["Refund outcome", a.transaction_refund_outcome],
    ["Note", a.note],
  ];
  const dl = $("d-fields");
  dl.replaceChildren();
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v === null || v === undefined || v === "" ? "—" : v;
    dl.append(dt, dd);
  }

  const actionable = a.status === "ACTION_REQUIRED" && a.enrolment_type === "ETHOCA_ALERT";
  $("action-form").hidden = !actionable;
  cancelPending();

  const tbody = $("d-history").tBodies[0];
  tbody.replaceChildren();
  for (const h of d.decisions || []) {
    const tr = document.createElement("tr");
    tr.append(td(fmtTime(h.at)), td(h.by), td(h.action), td(h.note, "wrap"), td(h.result, "wrap"),
      ruleCell(h.rule, h.evidence));
    tbody.append(tr);
  }
  $("d-history-empty").hidden = (d.decisions || []).length > 0;
  renderMatch(d.matching);
}

// ---- match and evidence -----------------------------------------------------------------------

const METHOD_WORDS = {
  INTEGRATION_TRANSACTION_ID: "integration transaction id (ChargebackStop's match)",
  ARN: "ARN",
  AUTH_CODE_LAST4_AMOUNT: "auth code + last 4 + amount",
  BIN_LAST4_AMOUNT_WINDOW: "BIN + last 4 + amount + currency + date window",
};
const methodWords = (m) => METHOD_WORDS[m] || m || "—";

// The rule a decision names, then the evidence it recorded, one line each.
function ruleCell(rule, evidence) {
  const cell = document.createElement("td");
  cell.className = "wrap rule";
  if (!rule && !(evidence || []).length) { cell.textContent = "—"; return cell; }
  if (rule) {
    const code = document.createElement("code");
    code.textContent = rule;
    cell.append(code);
  }
  for (const e of evidence || []) {
    const line = document.createElement("div");
    line.className = "evidence-line";
    line.textContent = e;
    cell.append(line);
  }
  return cell;
}

function fillFields(dl, rows) {
  dl.replaceChildren();
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v === null || v === undefined || v === "" ? "—" : String(v);
    dl.append(dt, dd);
  }
}

function renderMatch(m) {
  $("d-match").hidden = !m;
  $("d-match-none").hidden = !!m;
  if (!m) return;
  const r = m.match || {};
  const status = r.status || "UNMATCHED";
  const sb = $("d-match-status");
  sb.textContent = status;
  sb.className = `badge match-${status.toLowerCase()}`;
  const t = r.transaction;
  const tried = (r.tried || []).map((x) =>
    `${methodWords(x.method)}: ${x.skipped ? `skipped (${x.skipped})` : `${x.found} found`}`);
  fillFields($("d-match-fields"), [
    ["Result", status.toLowerCase()],
    ["Method", r.method ? methodWords(r.method) + (r.descriptor_tie_break ? " (descriptor broke a tie)" : "") : "—"],
    ["Confidence", status === "MATCHED" ? `${r.confidence} %` : "—"],
    ["Order", t ? `${t.order_reference_id} / ${t.transaction_reference_id}` : "—"],
    ["Deciding rule", m.rule],
    ["Methods tried", tried.join("; ")],
    ["Matched at", fmtTime(r.matched_at)],
  ]);
  const cands = r.candidates || [];
  const tbody = $("d-candidates").tBodies[0];
  tbody.replaceChildren();
  for (const c of cands) {
    const tr = document.createElement("tr");
    const chosen = t && t.order_reference_id === c.order_reference_id
      && t.transaction_reference_id === c.transaction_reference_id;
    if (chosen) tr.className = "chosen";
    tr.append(
      td(c.order_reference_id, "mono"), td(c.transaction_reference_id, "mono"),
      td(fmtAmount(c.amount_in_cents, c.currency)),
      td([c.card_brand, c.card_bin, c.card_last4 && `•••• ${c.card_last4}`].filter(Boolean).join(" ")),
      td(fmtTime(c.authorised_at)), td(c.descriptor), td(chosen ? "matched" : ""));
    tbody.append(tr);
  }
  $("d-candidates").hidden = cands.length === 0;
  $("d-candidates-empty").hidden = cands.length > 0;

  const e = m.evidence;
  $("d-evidence").hidden = !e;
  $("d-evidence-empty").hidden = !!e;
  if (e) {
    const cents = e.refunded_cents || 0;
    const refunded = e.fully_refunded ? `fully (${cents} cents)` : cents > 0 ? `partly (${cents} cents)` : "no";
    const refs = (e.refund_references || []).join(", ");
    const earlier = e.earlier_alerts || 0;
    fillFields($("d-evidence"), [
      ["Refunded", refs ? `${refunded}: ${refs}` : refunded],
      ["Disputed", e.disputed ? "yes" : "no"],
      ["Cancelled", e.order_cancelled ? "yes" : "no"],
      ["Order status", e.order_status],
      ["Subscription", e.subscription_status],
      ["Earlier alerts", earlier > 0 ? `${earlier}: ${(e.earlier_alert_ids || []).join(", ")}` : "none"],
    ]);
  }
}

function chooseAction(action) {
  if (!state.detail || $("action-form").hidden) return;
  state.pendingAction = action;
  for (const b of document.querySelectorAll(".actions button")) {
    b.setAttribute("aria-pressed", String(b.dataset.action === action));
  }
  const note = $("note").value.trim();
  $("confirm-text").textContent =
    `${action.replaceAll("_", " ")} alert ${state.detail.alert.id}${note ? " with the note" : " without a note"}?`;
  $("confirm").hidden = false;
  $("action-error").textContent = "";
  $("confirm-yes").focus();
}

function cancelPending() {
  state.pendingAction = null;
  $("confirm").hidden = true;
  for (const b of document.querySelectorAll(".actions button")) b.setAttribute("aria-pressed", "false");
}

async function submitAction(ev) {
  ev.preventDefault();
  if (!state.pendingAction || !state.detail) return;
  const id = state.detail.alert.id;
  const action = state.pendingAction;
  const note = $("note").value.trim();
  const buttons = document.querySelectorAll("#action-form button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const body = await api(`api/alerts/${encodeURIComponent(id)}/action`, {
      method: "POST",
      body: note ? { action, note } : { action },
    });
    state.detail = body;
    $("note").value = "";
    renderDetail();
    toast(`${id}: ${action.replaceAll("_", " ")} sent, alert ${body.alert.status}`);
    await loadQueue();
  } catch (e) {
    $("action-error").textContent = e.field ? `${e.field}: ${e.message}` : e.message;
    if (e.status === 409 || e.status === 422) loadDetail(id);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// ---- enrolments and upload failures -----------------------------------------------------------

async function loadEnrolments() {
  const body = await api("api/enrolments");
  const items = body.items || [];
  const order = { ACTION_REQUIRED: 0, FAILED: 1, PENDING: 2, IN_PROGRESS: 3, ENABLED: 5 };
  items.sort((x, y) => (order[x.status] ?? 4) - (order[y.status] ?? 4) || String(x.organisation_id).localeCompare(y.organisation_id));
  const tbody = $("enrolments").tBodies[0];
  tbody.replaceChildren();
  const counts = {};
  for (const e of items) {
    counts[e.status] = (counts[e.status] || 0) + 1;
    const tr = document.createElement("tr");
    const st = document.createElement("td"); st.append(badge(e.status));
    tr.append(st, td(e.live ? "live" : "no"), td(e.type), td(e.enrolment_id, "mono"), td(e.organisation_id, "mono"),
      td(e.note, "wrap"), td(fmtTime(e.updated_at)));
    tbody.append(tr);
  }
  $("enrolments-empty").hidden = items.length > 0;
  const chips = $("enrolment-summary");
  chips.replaceChildren(...Object.entries(counts).map(([s, n]) => badge(`${s} ${n}`, s)));
}

async function loadUploads() {
  const body = await api("api/orders/uploads?status=FAILED&limit=50");
  const items = body.items || [];
  const tbody = $("uploads").tBodies[0];
  tbody.replaceChildren();
  for (const o of items) {
    const tr = document.createElement("tr");
    tr.append(td(fmtTime(o.updated_at || o.queued_at)), td(o.organisation_id, "mono"), td(o.reference_id, "mono"),
      td(o.error_code), td(o.error_field, "mono"), td(o.error_message, "wrap"));
    tbody.append(tr);
  }
  $("uploads-empty").hidden = items.length > 0;
}

// ---- page lifecycle ---------------------------------------------------------------------------

async function refreshAll() {
  const results = await Promise.allSettled([loadQueue(), loadEnrolments(), loadUploads()]);
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length && state.key) toast(failed[0].reason.message, true);
  $("refreshed").textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
  if (state.selectedId && state.detail) renderDetailClock();
}

function renderDetailClock() {
  // Keep "time left" honest between refreshes without refetching the alert.
  const a = state.detail.alert;
  if (a.status !== "ACTION_REQUIRED") return;
  const dd = $("d-fields").querySelector("dd");
  if (dd) dd.textContent = urgencyOf(a.action_required_deadline).left;
}

async function start() {
  if (!state.key) { showLogin(); return; }
  try {
    const me = await api("api/me");
    state.urgentHours = me.urgent_hours || 24;
    $("operator").textContent = me.operator;
    const mode = $("mode");
    mode.textContent = me.mode;
    mode.className = `mode ${me.mode}`;
  } catch (e) {
    if (e.status !== 401) showLogin(e.message);
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  await refreshAll();
  clearInterval(state.timer);
  state.timer = setInterval(refreshAll, REFRESH_MS);
  setInterval(() => { renderQueue(); if (state.detail) renderDetailClock(); }, 60000);
}

function showLogin(message) {
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("key-input").focus();
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = null;
  clearInterval(state.timer);
  showLogin(message);
}

function onKey(ev) {
  const t = ev.target;
  const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement;
  if (ev.key === "Escape") {
    if (state.pendingAction) { cancelPending(); ev.preventDefault(); return; }
    if (typing) { t.blur(); return; }
  }
  if (typing || $("app").hidden || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const actions = { 1: "REFUND", 2: "ACCEPT_DISPUTE", 3: "CANCEL", 4: "REFUND_AND_CANCEL" };
  switch (ev.key) {
    case "j": case "ArrowDown": moveSelection(1); break;
    case "k": case "ArrowUp": moveSelection(-1); break;
    case "Enter": if (state.selectedId && !state.pendingAction) loadDetail(state.selectedId); else return; break;
    case "n": $("note").focus(); break;
    case "/": $("filter").focus(); break;
    case "u": refreshAll(); break;
    case "?": $("help").showModal(); break;
    default:
      if (actions[ev.key]) { chooseAction(actions[ev.key]); break; }
      return;
  }
  ev.preventDefault();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.key = $("key-input").value.trim();
    sessionStorage.setItem(KEY_STORAGE, state.key);
    $("key-input").value = "";
    start();
  });
  $("forget-key").addEventListener("click", () => signOut());
  $("refresh").addEventListener("click", refreshAll);
  $("help-toggle").addEventListener("click", () => $("help").showModal());
  $("filter").addEventListener("input", (ev) => { state.filter = ev.target.value.trim().toLowerCase(); renderQueue(); });
  for (const b of document.querySelectorAll(".actions button")) {
    b.addEventListener("click", () => chooseAction(b.dataset.action));
  }
  $("action-form").addEventListener("submit", submitAction);
  $("confirm-no").addEventListener("click", cancelPending);
  document.addEventListener("keydown", onKey);
  start();
});
