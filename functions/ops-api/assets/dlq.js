// The dead-letter queue panel of the operations page: its depth and the reasons of the messages
// in it (GET /api/dlq), refreshed every 30 s while a key is set. Self-contained: it reads the
// key app.js keeps for the tab and touches only its own elements. Values go in through
// textContent, never as markup. Redrive with `cbs dlq redrive` (README "Operations").
"use strict";

(() => {
  const KEY_STORAGE = "cbs-operator-key";
  const REFRESH_MS = 30000;
  const BASE = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  async function load() {
    const panel = document.getElementById("dlq-panel");
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (!panel || !key) return;
    let body;
    try {
      const res = await fetch(BASE + "api/dlq", {
        headers: { Accept: "application/json", Authorization: `Bearer ${key}` },
      });
      body = await res.json();
      if (!res.ok) throw new Error((body.error && body.error.message) || res.status);
    } catch (e) {
      panel.hidden = false;
      const depth = document.getElementById("dlq-depth");
      depth.textContent = "unavailable";
      depth.className = "badge dlq-stuck";
      document.getElementById("dlq-reasons").replaceChildren(el("li", String(e.message || e), "error"));
      return;
    }
    panel.hidden = false;
    const depth = document.getElementById("dlq-depth");
    depth.textContent = String(body.depth);
    depth.className = body.depth > 0 ? "badge dlq-stuck" : "badge";
    const list = document.getElementById("dlq-reasons");
    const items = (body.reasons || []).map(([reason, n]) => {
      const li = el("li");
      li.append(el("strong", `${n} × `), el("span", reason));
      return li;
    });
    const sample = (body.messages || []).slice(0, 10).map((m) =>
      el("li", `${m.event_id || m.message_id} · ${m.event_type || "?"} · ${m.object_id || "-"} · received ${m.source_receive_count ?? "?"}×`, "muted"));
    // Deliveries the Worker refused for their signature: archived, not processed.
    const refused = body.refused_at_edge;
    const refusedLine = refused == null
      ? [el("li", "Refused at the edge: unavailable", "error")]
      : refused.today + refused.yesterday > 0
        ? [el("li", `Refused at the edge: ${refused.today} today, ${refused.yesterday} yesterday (UTC). Check the Worker's WEBHOOK_SECRET, then cbs events replay --refused.`, "error refused-at-edge")]
        : [];
    list.replaceChildren(...refusedLine, ...(items.length ? items : [el("li", "Nothing stuck: every event was processed or is still being retried.", "muted")]), ...sample);
  }

  // Until the operator signs in there is no key: look again every few seconds, then every 30 s.
  let loaded = false;
  async function tick() {
    if (!loaded && sessionStorage.getItem(KEY_STORAGE)) loaded = true;
    await load();
    setTimeout(tick, loaded ? REFRESH_MS : 2000);
  }
  document.addEventListener("DOMContentLoaded", tick);
})();
