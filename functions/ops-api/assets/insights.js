// Insights: alert outcomes per day, deadline performance, who decided, order-feed health, card
// scheme gauges and enrolments, per customer or across all (GET /api/insights). Charts are SVG
// drawn here; colours are the Okabe-Ito palette (readable with the common colour-vision
// deficiencies) and every mark also carries its number as text or an accessible label. Each chart
// is one tab stop; arrow keys move between its marks and the readout says what the mark counts.
// Uses `api`, `$` and `showLogin` from app.js. Every value goes in through textContent.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
// Okabe-Ito.
// Alerts by provider and outcome: Ethoca's outcomes, then RDR's; each provider's alerts still
// waiting on their own (RDR's hatched, so the two yellows differ without colour).
const RDR_WAITING_FILL = "url(#hatch-rdr-waiting)";
const OUTCOME_COLOURS = {
  refunded: "#009E73", accepted: "#E69F00", cancelled: "#56B4E9", expired: "#D55E00",
  invalid: "#999999", "pending:ETHOCA_ALERT": "#F0E442",
  rdr_refunded: "#0072B2", rdr_declined: "#CC79A7", "pending:VERIFI_RDR": RDR_WAITING_FILL,
};
const OUTCOME_LABELS = {
  refunded: "Refunded", accepted: "Accepted (dispute)", cancelled: "Cancelled", expired: "Expired",
  invalid: "Invalid", "pending:ETHOCA_ALERT": "Ethoca still waiting",
  rdr_refunded: "RDR refunded", rdr_declined: "RDR declined", "pending:VERIFI_RDR": "RDR still waiting",
};
const PROVIDER_KEYS = {
  ETHOCA_ALERT: ["refunded", "accepted", "cancelled", "expired", "invalid", "pending:ETHOCA_ALERT"],
  VERIFI_RDR: ["rdr_refunded", "rdr_declined", "pending:VERIFI_RDR"],
};
const PROVIDER_NAMES = { "": "Both", ETHOCA_ALERT: "Ethoca", VERIFI_RDR: "RDR" };
// Legend swatches are CSS: the hatch drawn as a gradient.
const SWATCH = { [RDR_WAITING_FILL]: "repeating-linear-gradient(45deg, #F0E442 0 3px, #0072B2 3px 5px)" };
const ORDER_COLOURS = { accepted: "#009E73", duplicate: "#56B4E9", failed: "#D55E00", rate_limited: "#E69F00" };
const insights = { scope: "", provider: "", data: null, loading: false };

function el(tag, attrs = {}, text) {
  const isSvg = ["svg", "g", "rect", "line", "text", "title", "path", "defs", "pattern"].includes(tag);
  const e = isSvg ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}
// The page's CSP (style-src 'self') drops inline `style` attributes: set styles through CSSOM.
function styled(e, props) {
  Object.assign(e.style, props);
  return e;
}
const pct = (r, digits = 2) => (r === null || r === undefined ? "—" : `${(r * 100).toFixed(digits)} %`);
const num = (n) => Number(n || 0).toLocaleString("en-GB");

// A chart's marks are reachable with the keyboard: the chart is one tab stop, arrows move, the
// readout (aria-live) says what the focused mark counts.
function keyboardMarks(svg, marks, readout) {
  let at = -1;
  const show = (i) => {
    marks.forEach((m, j) => m.classList.toggle("focused", j === i));
    at = i;
    readout.textContent = marks[i] ? marks[i].getAttribute("aria-label") : "";
  };
  svg.setAttribute("tabindex", "0");
  svg.addEventListener("focus", () => { if (at < 0 && marks.length) show(marks.length - 1); });
  svg.addEventListener("keydown", (ev) => {
    if (!marks.length) return;
    if (ev.key === "ArrowRight" || ev.key === "ArrowDown") show(Math.min(marks.length - 1, at + 1));
    else if (ev.key === "ArrowLeft" || ev.key === "ArrowUp") show(Math.max(0, at - 1));
    else if (ev.key === "Home") show(0);
    else if (ev.key === "End") show(marks.length - 1);
    else return;
    ev.preventDefault();
    ev.stopPropagation();
  });
  marks.forEach((m, i) => m.addEventListener("mouseenter", () => show(i)));
}

function legend(list, entries, note) {
  list.replaceChildren();
  for (const [key, label, colour, count] of entries) {
    const li = el("li", { "data-key": key, "data-count": count });
    li.append(styled(el("span", { class: "swatch", "aria-hidden": "true" }), { background: SWATCH[colour] || colour }), el("span", {}, `${label} `), el("b", {}, num(count)));
    const said = note ? note(count, key) : "";
    if (said) li.append(el("span", { class: "muted" }, ` ${said}`));
    list.append(li);
  }
}

// A round axis top and its tick step (1, 2 or 5 × 10^n), four or five ticks.
function niceScale(max) {
  const raw = Math.max(1, max) / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  return { top: Math.max(step, Math.ceil(max / step) * step), step };
}
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const dayLabel = (iso) => `${Number(iso.slice(8, 10))} ${MONTHS[Number(iso.slice(5, 7)) - 1]}`;

// `countedFrom`: the index of the first day with anything counted for this chart's source (a
// series of rare events, like failures, starts later than its source's counting).
function stackedDays(container, days, keys, colours, labels, valueOf, title, extra, H = 220, countedFrom) {
  container.replaceChildren();
  const W = 1180, left = 48, right = 8, bottom = 22, top = 10;
  const totals = days.map((d) => keys.reduce((s, k) => s + valueOf(d, k), 0));
  const scale = niceScale(Math.max(...totals, 0));
  const max = scale.top;
  const step = (W - left - right) / Math.max(1, days.length);
  const bw = Math.max(2, step - 2);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "group", "aria-label": `${title}. Arrow keys move between days.`, class: "chart" });
  if (keys.some((k) => colours[k] === RDR_WAITING_FILL)) {
    const pattern = el("pattern", { id: "hatch-rdr-waiting", width: 5, height: 5, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
    pattern.append(el("rect", { width: 5, height: 5, fill: "#F0E442" }), el("rect", { width: 2, height: 5, fill: "#0072B2" }));
    const defs = el("defs");
    defs.append(pattern);
    svg.append(defs);
  }
  for (let v = 0; v <= max; v += scale.step) {
    const y = top + (H - top - bottom) * (1 - v / max);
    svg.append(el("line", { x1: left, x2: W - right, y1: y, y2: y, class: "gridline" }));
    svg.append(el("text", { x: left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, num(v)));
  }
  // A long run of days with nothing counted at the start says so, rather than look like zero.
  const firstCounted = countedFrom ?? totals.findIndex((t) => t > 0);
  if (firstCounted > 6 || firstCounted < 0) {
    const upTo = firstCounted < 0 ? days.length : firstCounted;
    const text = firstCounted < 0 ? "Nothing counted in this period" : `Nothing counted before ${dayLabel(days[firstCounted].day)}`;
    svg.append(el("text", { x: left + (upTo * step) / 2, y: top + (H - top - bottom) / 2, class: "empty-note", "text-anchor": "middle" }, text));
  }
  const marks = [];
  days.forEach((d, i) => {
    const x = left + i * step;
    const g = el("g", { class: "mark", "data-day": d.day, "data-total": totals[i] });
    let y = H - bottom;
    const parts = [];
    for (const k of keys) {
      const v = valueOf(d, k);
      if (!v) continue;
      const h = (H - top - bottom) * (v / max);
      y -= h;
      g.append(el("rect", { x, y, width: bw, height: Math.max(h, 0.5), fill: colours[k], "data-key": k, "data-count": v }));
      parts.push(`${labels[k]} ${v}`);
    }
    g.append(el("rect", { x, y: top, width: bw, height: H - top - bottom, class: "hit" }));
    const more = extra ? extra(d) : "";
    g.setAttribute("aria-label", `${d.day}: ${totals[i]} in all${parts.length ? "; " + parts.join(", ") : ""}${more}`);
    const lastDay = i === days.length - 1;
    if ((i % 15 === 0 && days.length - i > 6) || lastDay) {
      // The last label ends at the chart's edge instead of running off it.
      svg.append(el("text", { x: lastDay ? x + bw : x + bw / 2, y: H - 6, class: "axis", "text-anchor": lastDay ? "end" : "middle" }, dayLabel(d.day)));
    }
    svg.append(g);
    marks.push(g);
  });
  const readout = el("p", { class: "readout", "aria-live": "polite" }, "Focus the chart and use the arrow keys, or point at a day.");
  container.append(svg, readout);
  keyboardMarks(svg, marks, readout);
}

// Labels longer than the label column are cut with an ellipsis; the whole text is in the
// mark's <title> and accessible label.
const clip = (t, n) => (t.length > n ? `${t.slice(0, n - 1)}…` : t);

// Horizontal bars, one per row: `label`, and under it a smaller `sub` line when a row has one
// (the policy a rule belongs to).
function hbars(container, rows, title, colourOf) {
  container.replaceChildren();
  const max = Math.max(1, ...rows.map((r) => r.count));
  const twoLines = rows.some((r) => r.sub);
  const rowH = twoLines ? 32 : 24, W = 600, labelW = 250;
  const svg = el("svg", { viewBox: `0 0 ${W} ${Math.max(rowH, rows.length * rowH)}`, role: "group", "aria-label": `${title}. Arrow keys move between bars.`, class: "chart hbars" });
  const marks = [];
  rows.forEach((r, i) => {
    const y = i * rowH;
    const said = r.sub ? `${r.label} (${r.sub})` : r.label;
    const g = el("g", { class: "mark", "data-key": r.key, "data-count": r.count, "aria-label": `${said}: ${r.count}` });
    g.append(el("title", {}, `${said}: ${num(r.count)}`));
    const mid = y + rowH / 2;
    g.append(el("text", { x: labelW - 6, y: r.sub ? mid - 2 : mid + 4, "text-anchor": "end", class: "label" }, clip(r.label, 38)));
    if (r.sub) g.append(el("text", { x: labelW - 6, y: mid + 10, "text-anchor": "end", class: "sublabel" }, clip(r.sub, 44)));
    const w = (W - labelW - 60) * (r.count / max);
    g.append(el("rect", { x: labelW, y: mid - 8, width: Math.max(w, r.count ? 2 : 0), height: 16, fill: colourOf(r) }));
    g.append(el("text", { x: labelW + w + 6, y: mid + 4, class: "value" }, num(r.count)));
    svg.append(g);
    marks.push(g);
  });
  const readout = el("p", { class: "readout", "aria-live": "polite" }, rows.length ? "" : "Nothing decided in this period.");
  container.append(svg, readout);
  keyboardMarks(svg, marks, readout);
}

// A bullet gauge: the ratio on a scale with the scheme's threshold lines. A month without
// settled transactions uploaded has no ratio: it says so in one line instead of drawing an
// empty scale.
function gauge(label, ratio, thresholds, level, badge, detail, attrs) {
  const box = el("div", { class: `gauge level-${level}`, ...attrs });
  const head = el("div", { class: "gauge-head" });
  head.append(el("span", { class: "gauge-label" }, label));
  box.append(head);
  if (ratio === null || ratio === undefined) {
    box.append(el("div", { class: "muted small" }, detail));
    return box;
  }
  head.append(el("b", { class: "ratio" }, pct(ratio)), el("span", { class: "badge lvl" }, badge));
  const scaleMax = Math.max(thresholds[thresholds.length - 1] * 1.6, ratio * 1.15);
  const W = 260, H = 40;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${label}: ${pct(ratio)}, ${badge}` });
  svg.append(el("rect", { x: 0, y: 6, width: W, height: 14, class: "track" }));
  svg.append(el("rect", { x: 0, y: 6, width: Math.min(W, W * (ratio / scaleMax)), height: 14, class: "fill" }));
  for (const t of thresholds) {
    const x = W * (t / scaleMax);
    svg.append(el("line", { x1: x, x2: x, y1: 1, y2: 25, class: "threshold" }));
    svg.append(el("text", { x, y: 37, "text-anchor": "middle", class: "axis" }, `${(t * 100).toFixed(1)} %`));
  }
  box.append(svg, el("div", { class: "muted small" }, detail));
  return box;
}

const VAMP_BADGE = { above: "Above VAMP", ratio_above_few_cases: "Ratio over, ≤ 1,500 cases", below: "Below", no_settled_transactions: "No data" };
const ECM_BADGE = { high_excessive: "High excessive", excessive: "Excessive (ECM)", below: "Below", no_settled_transactions: "No data" };
const monthName = (ym) => `${MONTHS[Number(ym.slice(5, 7)) - 1]} ${ym.slice(0, 4)}`;

function renderGauges(list, gauges) {
  list.replaceChildren();
  if (!gauges.length) list.append(el("p", { class: "muted" }, "No customers onboarded yet."));
  for (const g of gauges) {
    const row = el("div", { class: `gauge-row${g.flagged ? " flagged" : ""}`, "data-org": g.organisation_id, "data-customer": g.customer, "data-flagged": g.flagged });
    const name = el("h4", {}, g.customer);
    if (g.flagged) name.append(el("span", { class: "flag", role: "img", "aria-label": "over a scheme threshold" }, " ⚠ over a scheme threshold"));
    row.append(name);
    for (const [which, m] of [["current", g.current], ["previous", g.previous]]) {
      const v = m.visa, mc = m.mastercard, month = monthName(m.month);
      const visaDetail = v.settled
        ? `${num(v.cases)} cases (${num(v.alerts)} alerts − ${num(v.rdr_resolved)} RDR-resolved) / ${num(v.settled)} settled; VAMP counts over 1,500 cases`
        : `No settled Visa transactions uploaded for ${month}${v.alerts ? ` (${num(v.alerts)} Visa alerts)` : ""}.`;
      row.append(gauge(`Visa VAMP · ${month}`, v.ratio, [0.015], v.level, VAMP_BADGE[v.level] || v.level, visaDetail,
        { "data-scheme": "visa", "data-month": which, "data-level": v.level, "data-cases": v.cases, "data-settled": v.settled, "data-ratio": v.ratio ?? "" }));
      const mcDetail = mc.settled
        ? `${num(mc.chargebacks)} chargebacks / ${num(mc.settled)} settled; ECM from 100 chargebacks, high from 300`
        : `No settled Mastercard transactions uploaded for ${month}${mc.chargebacks ? ` (${num(mc.chargebacks)} chargebacks)` : ""}.`;
      row.append(gauge(`Mastercard ECM · ${month}`, mc.ratio, [0.015, 0.03], mc.level,
        mc.level === "below" && mc.ratio >= 0.015 ? "Ratio over, < 100 chargebacks" : ECM_BADGE[mc.level] || mc.level, mcDetail,
        { "data-scheme": "mastercard", "data-month": which, "data-level": mc.level, "data-cases": mc.chargebacks, "data-settled": mc.settled, "data-ratio": mc.ratio ?? "" }));
    }
    list.append(row);
  }
}

// The rate-limited attempts' chart, after the failed and duplicate one: made once.
function rateLimitedBox() {
  let box = $("chart-rate-limited");
  if (box) return box;
  box = el("div", { id: "chart-rate-limited", class: "chart-box" });
  $("chart-order-problems").after(el("h4", {}, "Upload attempts answered 429 (rate-limited; retried, not an outcome)"), box);
  return box;
}

// The provider toggle (Both / Ethoca / RDR) above the alerts chart: radio buttons, made once.
function providerToggle() {
  let box = $("alerts-provider");
  if (box) return box;
  box = el("div", { id: "alerts-provider", class: "provider-toggle", role: "radiogroup", "aria-label": "Provider" });
  box.append(el("span", { class: "muted" }, "Provider:"));
  for (const [value, name] of Object.entries(PROVIDER_NAMES)) {
    const label = el("label");
    const input = el("input", { type: "radio", name: "alerts-provider", value, "data-provider": value || "both" });
    input.checked = value === insights.provider;
    input.addEventListener("change", () => { insights.provider = value; renderAlertsChart(insights.data.view); });
    label.append(input, el("span", {}, ` ${name}`));
    box.append(label);
  }
  $("chart-alerts").before(box);
  return box;
}

function renderAlertsChart(v) {
  providerToggle();
  const p = insights.provider;
  const keys = p ? PROVIDER_KEYS[p] : [...PROVIDER_KEYS.ETHOCA_ALERT, ...PROVIDER_KEYS.VERIFI_RDR];
  const providerOf = (k) => (PROVIDER_KEYS.VERIFI_RDR.includes(k) ? "VERIFI_RDR" : "ETHOCA_ALERT");
  const val = (day, k) => ((day.by_provider[providerOf(k)] || {})[k.startsWith("pending:") ? "pending" : k] || 0);
  const title = `Alerts per day by ${p ? `outcome, ${PROVIDER_NAMES[p]} only` : "provider and outcome"}`;
  stackedDays($("chart-alerts"), v.days, keys, OUTCOME_COLOURS, OUTCOME_LABELS, val, title);
  $("chart-alerts").dataset.provider = p || "both";
  const total = (k) => (k.startsWith("pending:") ? v.pending_by_provider[k.slice(8)] : v.outcomes[k]) || 0;
  legend($("legend-alerts"), keys.map((k) => [k, OUTCOME_LABELS[k], OUTCOME_COLOURS[k], total(k)]));
}

function render() {
  const d = insights.data;
  if (!d) return;
  const v = d.view;
  const sel = $("insights-org");
  if (sel.options.length !== d.organisations.length + 1) {
    sel.replaceChildren(el("option", { value: "" }, "All customers"));
    for (const o of d.organisations) sel.append(el("option", { value: o.organisation_id }, o.customer));
  }
  sel.value = insights.scope;
  $("insights-range").textContent = `${v.from} – ${v.to} (UTC), by the day each alert was received`;

  // Alerts per day by provider and outcome; the toggle shows one provider or both.
  renderAlertsChart(v);
  $("alerts-total").textContent = `${num(v.received.ETHOCA_ALERT)} Ethoca · ${num(v.received.VERIFI_RDR)} RDR`;

  // Deadline performance.
  const dl = v.deadline;
  hbars($("chart-deadline"), dl.buckets.map((b) => ({ key: b.label, label: b.label === "late" ? "after the deadline" : `${b.label} % of the time allowed`, count: b.count })),
    "Decision time against the time the deadline allowed", (r) => (r.key === "late" ? "#D55E00" : "#0072B2"));
  $("early-share").textContent = pct(dl.early_share, 1);
  $("early-count").textContent = `${num(dl.decided_24h_early)} of ${num(dl.tracked)}`;
  const missed = $("missed");
  missed.replaceChildren();
  missed.className = dl.missed ? "missed loud" : "missed ok";
  missed.dataset.count = dl.missed;
  if (dl.missed) {
    missed.setAttribute("role", "alert");
    missed.append(el("strong", {}, `${num(dl.missed)} missed deadline${dl.missed === 1 ? "" : "s"} (target: 0)`));
    const ul = el("ul");
    for (const m of dl.missed_alerts) {
      const li = el("li", { "data-alert-id": m.alert_id });
      li.append(el("code", {}, m.alert_id), el("span", { class: "muted" }, ` received ${m.day}`));
      ul.append(li);
    }
    missed.append(ul);
  } else {
    missed.removeAttribute("role");
    missed.append(el("strong", {}, "No missed deadlines."));
  }

  // Who decided: automatic decisions by the rule that fired (`<policy>/<rule>`; the policy's
  // name alone where no rule was recorded), people by name.
  const kindLabel = { policy: "Policy", operator: "Operator", sweep: "Sweep at the cutoff", elsewhere: "Resolved elsewhere", nobody: "Nobody (expired)" };
  const kindColour = { policy: "#0072B2", operator: "#009E73", sweep: "#E69F00", elsewhere: "#999999", nobody: "#D55E00" };
  const whoRow = (w) => {
    const row = { key: `${w.kind}:${w.name}`, count: w.count, kind: w.kind };
    if (w.kind === "policy") {
      const cut = w.name.indexOf("/");
      const [policy, rule] = cut < 0 ? [w.name, ""] : [w.name.slice(0, cut), w.name.slice(cut + 1)];
      return rule ? { ...row, label: rule, sub: `automatic: rule of policy ${policy}` } : { ...row, label: `Policy ${policy}`, sub: "automatic: rule not recorded" };
    }
    return { ...row, label: w.name ? `${kindLabel[w.kind] || w.kind}: ${w.name}` : (kindLabel[w.kind] || w.kind) };
  };
  hbars($("chart-who"), v.decided_by.map(whoRow), "Who decided", (r) => kindColour[r.kind] || "#999999");
  const cents = Object.entries(v.refunded_cents).map(([c, n]) => `${(n / 100).toLocaleString("en-GB", { minimumFractionDigits: 2 })} ${c}`).join(" · ");
  $("refunds").textContent = `${num(v.refunds)} refunded${cents ? ` (${cents})` : ""}: each one a dispute headed off`;

  // Order feed.
  // Rate-limited is a count of attempts answered 429 (the order is retried and ends in one of
  // the outcomes), so it is not stacked on the outcomes: it has a chart of its own below.
  const orderKeys = ["failed", "duplicate", "accepted"];
  const orderLabels = { accepted: "Accepted", duplicate: "Duplicate", failed: "Failed", rate_limited: "Rate-limited attempts (429)" };
  stackedDays($("chart-orders"), v.days, orderKeys, ORDER_COLOURS, orderLabels, (day, k) => day.orders[k] || 0, "Orders per day by upload outcome",
    (day) => (day.orders.rate_limited ? `; rate-limited attempts ${day.orders.rate_limited}` : ""));
  // Failed and duplicate uploads are a sliver next to the accepted ones: drawn again on their
  // own scale.
  stackedDays($("chart-order-problems"), v.days, ["failed", "duplicate"], ORDER_COLOURS, orderLabels, (day, k) => day.orders[k] || 0,
    "Failed and duplicate uploads per day", (day) => (day.orders.rate_limited ? `; rate-limited attempts ${day.orders.rate_limited}` : ""), 130,
    v.days.findIndex((day) => orderKeys.some((k) => day.orders[k])));
  stackedDays(rateLimitedBox(), v.days, ["rate_limited"], ORDER_COLOURS, orderLabels, (day, k) => day.orders[k] || 0,
    "Upload attempts answered 429 (rate-limited) per day", undefined, 110,
    v.days.findIndex((day) => orderKeys.some((k) => day.orders[k])));
  const outcomesTotal = orderKeys.reduce((t, k) => t + (v.orders[k] || 0), 0);
  legend($("legend-orders"), ["accepted", "duplicate", "failed", "rate_limited"].map((k) => [k, orderLabels[k], ORDER_COLOURS[k], v.orders[k] || 0]),
    // Rate-limited attempts are not outcomes: no share of them.
    (n, k) => (outcomesTotal && k !== "rate_limited" ? `(${pct(n / outcomesTotal, 1)})` : ""));
  const o = v.orders;
  const share = (n) => (o.card_txns ? n / o.card_txns : null);
  const ids = $("identifiers");
  ids.replaceChildren();
  for (const [k, label, n] of [["arn", "ARN", o.with_arn], ["auth_code", "Authorisation code", o.with_auth_code], ["bin", "BIN", o.with_bin]]) {
    const li = el("li", { "data-key": k, "data-count": n, "data-share": share(n) ?? "" });
    const bar = el("span", { class: "meter" });
    bar.append(styled(el("span"), { width: `${((share(n) || 0) * 100).toFixed(1)}%` }));
    li.append(el("span", { class: "k" }, label), bar, el("b", {}, pct(share(n), 1)), el("span", { class: "muted" }, ` ${num(n)} of ${num(o.card_txns)}`));
    ids.append(li);
  }
  const m = v.matching;
  $("match-rate").textContent = m.rate === null ? "no match verdicts recorded yet" : `${pct(m.rate, 1)} matched (${num(m.matched)} matched, ${num(m.unmatched)} unmatched, ${num(m.ambiguous)} ambiguous)`;
  $("match-rate").dataset.rate = m.rate ?? "";

  renderGauges($("gauges"), d.gauges);

  const tbody = $("insights-enrolments").querySelector("tbody");
  tbody.replaceChildren();
  for (const e of d.enrolments) {
    const tr = el("tr");
    for (const t of [e.customer, e.type, e.status, e.live ? "live" : "not live", e.enrolment_id]) tr.append(el("td", {}, t));
    tbody.append(tr);
  }
  const counted = $("counted");
  counted.replaceChildren(...d.counted.map((t) => el("li", {}, t)));
  $("not-counted").replaceChildren(...d.not_counted.map((t) => el("li", {}, t)));
}

async function loadInsights() {
  insights.loading = true;
  $("insights-status").textContent = "Loading…";
  try {
    const q = insights.scope ? `?organisation_id=${encodeURIComponent(insights.scope)}` : "";
    insights.data = await api(`api/insights${q}`);
    render();
    $("insights-status").textContent = "";
  } catch (e) {
    $("insights-status").textContent = e.message;
  } finally {
    insights.loading = false;
    $("insights").dataset.loaded = insights.data ? "true" : "false";
  }
}

/// Downloads one of the ops API's CSV exports for the customer chosen (or all of them).
async function downloadCsv(path, filename) {
  const q = insights.scope ? `?organisation_id=${encodeURIComponent(insights.scope)}` : "";
  const res = await fetch(BASE + `${path}${q}`, { headers: { Authorization: `Bearer ${state.key}` } });
  if (!res.ok) { $("insights-status").textContent = `CSV export failed (${res.status})`; return; }
  const url = URL.createObjectURL(await res.blob());
  const a = el("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

function showInsights(on) {
  $("insights").hidden = !on;
  $("app").hidden = on;
  const b = $("insights-toggle");
  b.textContent = on ? "Queue" : "Insights";
  b.setAttribute("aria-pressed", String(on));
  if (on) { loadInsights(); $("insights-title").focus(); }
}

document.addEventListener("DOMContentLoaded", () => {
  $("insights-toggle").addEventListener("click", () => showInsights($("insights").hidden));
  $("insights-org").addEventListener("change", (ev) => { insights.scope = ev.target.value; loadInsights(); });
  $("insights-csv").addEventListener("click", () => downloadCsv("api/insights/alerts.csv", "alerts-with-decisions.csv"));
  // Unmatched and ambiguous alerts with what the Orders guide asks for when escalating them.
  $("escalations-csv").addEventListener("click", () => downloadCsv("api/escalations.csv", "escalations.csv"));
  document.addEventListener("keydown", (ev) => {
    const t = ev.target;
    if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey || !$("login").hidden) return;
    if (ev.key === "i") { showInsights($("insights").hidden); ev.preventDefault(); }
    else if (ev.key === "Escape" && !$("insights").hidden) { showInsights(false); ev.preventDefault(); }
  });
  // Signing out hides the insights too.
  const login = $("login");
  new MutationObserver(() => { if (!login.hidden) $("insights").hidden = true; }).observe(login, { attributes: true });
});
