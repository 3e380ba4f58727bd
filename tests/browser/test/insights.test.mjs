// The insights view of the operations page in headless Chromium over the real local stack.
// tests/e2e/tests/insights_page.rs (`serve_insights_stack_for_the_browser_test`) starts moto, the
// sandbox and the ops API, onboards four customers, seeds a realistic month (~2,500 alerts of
// both providers with every outcome and decider, ~34,000 uploaded orders with and without
// identifiers, one customer above Visa's VAMP threshold; the older days' counters summed per
// organisation-day, the last day and a few orders through the real counting paths) and prints
// one `INSIGHTS_STACK {...}` line with what the seed implies (from the seed plan, not from the
// counters).
//
// Checks that each chart and gauge shows exactly that, that the over-threshold customer is
// flagged and no other, that colours reach the page, that nothing runs off the side at 1280 and
// 1400 px, that each chart is a tab stop whose arrows move, that the CSV export button downloads
// one row per alert in the right outcome with its match columns, and saves
// tests/browser/output/insights.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { openPage } from "./open_page.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, "../../..");
const OUTPUT = path.resolve(here, "../output");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
// Generous: the harness may still compile on a fresh checkout.
const STACK_TIMEOUT_MS = 20 * 60 * 1000;
const UI_TIMEOUT_MS = 120 * 1000;

let stack = null;
let browser = null;

// The harness's panic message (and the lines around it) out of cargo's stderr, for the error.
function panicOf(stderr) {
  const at = stderr.indexOf("panicked at");
  return at < 0 ? stderr.slice(-3000) : stderr.slice(Math.max(0, at - 200), at + 2500);
}

function startStack() {
  // `--workspace`, not `-p e2e`: the same feature set as every other build, so nothing rebuilds.
  const args = [
    "test", "-q", "--workspace", "--test", "insights_page", "--",
    "--ignored", "--exact", "serve_insights_stack_for_the_browser_test", "--nocapture",
  ];
  const proc = spawn("cargo", args, {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, RUST_BACKTRACE: "0" },
  });
  let stderr = "";
  let partial = "";
  proc.stderr.on("data", (d) => {
    const s = d.toString();
    stderr = (stderr + s).slice(-20000);
    // Progress lines, whole (a chunk may end mid-line).
    const lines = (partial + s).split("\n");
    partial = lines.pop();
    for (const line of lines) if (line.startsWith("insights stack:")) console.log(line.slice(0, 300));
  });
  return new Promise((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => reject(new Error(`no INSIGHTS_STACK line after ${STACK_TIMEOUT_MS / 1000}s; stderr: ${panicOf(stderr)}`)), STACK_TIMEOUT_MS);
    proc.stdout.on("data", (d) => {
      buffer += d.toString();
      const at = buffer.indexOf("INSIGHTS_STACK ");
      if (at < 0) return;
      const end = buffer.indexOf("\n", at);
      if (end < 0) return;
      clearTimeout(timer);
      try { resolve({ proc, info: JSON.parse(buffer.slice(at + "INSIGHTS_STACK ".length, end)) }); } catch (e) { reject(e); }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      // The panic is printed on stdout by the test harness (captured output) or stderr.
      reject(new Error(`the stack harness exited (${code}) before it was ready: ${panicOf(buffer + stderr)}`));
    });
  });
}

function stopStack(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    const timer = setTimeout(() => { proc.kill("SIGTERM"); resolve(); }, 60000);
    proc.on("exit", () => { clearTimeout(timer); resolve(); });
    proc.stdin.end();
  });
}

before(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  stack = await startStack();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
});

after(async () => {
  if (browser) await browser.close();
  if (stack) await stopStack(stack.proc);
});

const attr = (page, sel, name) => page.$eval(sel, (e, n) => e.getAttribute(n), name);
const count = async (page, sel) => Number(await attr(page, sel, "data-count"));

// Does the queue table fit its scroll box (no column cut off)?
const queueFits = (page) => page.$eval("#queue", (t) => t.scrollWidth <= t.parentElement.clientWidth + 1);

test("insights: every chart and gauge shows what the seeded month implies", async () => {
  const { info } = stack;
  const x = info.expected;
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  const pageErrors = [];
  const t0 = Date.now();
  const mark = (what) => console.log(`insights page: ${what} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  page.on("pageerror", (e) => pageErrors.push(e.message));
  try {
    await openPage(page, info.page_url, { pageErrors });
    await page.fill("#key-input", info.operator_key);
    await page.click("#login-form button[type=submit]");
    await page.waitForFunction(() => document.querySelectorAll("#queue tbody tr").length > 0);
    // The queue keeps its last column in view at 1280 and 1400 px.
    assert.ok(await queueFits(page), "queue cut off at 1280 px");
    await page.setViewportSize({ width: 1400, height: 900 });
    assert.ok(await queueFits(page), "queue cut off at 1400 px");
    await page.setViewportSize({ width: 1280, height: 900 });

    // One click away.
    await page.click("#insights-toggle");
    await page.waitForSelector("#insights[data-loaded=true]");
    mark("insights shown");
    assert.equal(await page.isVisible("#app"), false);

    assert.match(await page.textContent("#alerts-chart-title"), /by provider and outcome/);
    // Alerts per day by provider and outcome: totals and every day, each provider's alerts
    // still waiting on their own.
    for (const k of ["refunded", "accepted", "cancelled", "expired", "invalid", "rdr_refunded", "rdr_declined"]) {
      assert.equal(await count(page, `#legend-alerts li[data-key="${k}"]`), x.outcomes[k] || 0, `outcome ${k}`);
      assert.ok((x.outcomes[k] || 0) > 0, `the seed has ${k}`);
    }
    for (const p of ["ETHOCA_ALERT", "VERIFI_RDR"]) {
      assert.equal(await count(page, `#legend-alerts li[data-key="pending:${p}"]`), x.pending_by_provider[p], `${p} still waiting`);
      assert.ok(x.pending_by_provider[p] > 0, `the seed has ${p} alerts still waiting`);
    }
    const shownDays = () => page.$$eval("#chart-alerts g.mark", (gs) => Object.fromEntries(gs.map((g) => [g.dataset.day,
      Object.fromEntries([...g.querySelectorAll("rect[data-key]")].map((r) => [r.dataset.key, Number(r.dataset.count)]))])));
    const shown = await shownDays();
    assert.equal(Object.keys(shown).length, 90, "90 days drawn");
    for (const [day, byOutcome] of Object.entries(x.per_day)) assert.deepEqual(shown[day], byOutcome, `day ${day}`);
    // The provider toggle: one provider's stacks alone, day by day.
    const RDR_KEYS = ["rdr_refunded", "rdr_declined", "pending:VERIFI_RDR"];
    for (const [provider, mine] of [["VERIFI_RDR", (k) => RDR_KEYS.includes(k)], ["ETHOCA_ALERT", (k) => !RDR_KEYS.includes(k)]]) {
      await page.check(`#alerts-provider input[data-provider="${provider}"]`);
      await page.waitForFunction((p) => document.querySelector("#chart-alerts").dataset.provider === p, provider);
      const only = await shownDays();
      for (const [day, byOutcome] of Object.entries(x.per_day)) {
        assert.deepEqual(only[day], Object.fromEntries(Object.entries(byOutcome).filter(([k]) => mine(k))), `${provider} on ${day}`);
      }
      const legendKeys = await page.$$eval("#legend-alerts li", (lis) => lis.map((l) => l.dataset.key));
      assert.ok(legendKeys.every(mine) && legendKeys.length > 0, `${provider} legend: ${legendKeys}`);
    }
    await page.check(`#alerts-provider input[data-provider="both"]`);
    assert.deepEqual(await shownDays(), shown, "both providers again");
    assert.match(await page.textContent("#alerts-total"), new RegExp(`${x.received.ETHOCA_ALERT.toLocaleString("en-GB")} Ethoca · ${x.received.VERIFI_RDR.toLocaleString("en-GB")} RDR`));

    // Deadline performance, missed deadlines loudly with their ids.
    for (const b of ["0-10", "10-25", "25-50", "50-75", "75-90", "90-100", "late"]) {
      assert.equal(await count(page, `#chart-deadline g.mark[data-key="${b}"]`), x.buckets[b] || 0, `bucket ${b}`);
    }
    assert.equal(await page.textContent("#early-count"), `${x.early.toLocaleString("en-GB")} of ${x.tracked.toLocaleString("en-GB")}`);
    assert.equal(await count(page, "#missed"), x.missed.length);
    assert.match(await attr(page, "#missed", "class"), /loud/);
    assert.equal(await attr(page, "#missed", "role"), "alert");
    const missedIds = await page.$$eval("#missed li", (lis) => lis.map((l) => l.dataset.alertId).sort());
    assert.deepEqual(missedIds, [...x.missed].sort());

    // Who decided: automatic decisions by the rule that fired (the policy's name where no rule
    // was recorded), each labelled with its rule and its policy.
    for (const [key, n] of Object.entries(x.decided_by)) {
      assert.equal(await count(page, `#chart-who g.mark[data-key="${key}"]`), n, `decided by ${key}`);
    }
    const whoKeys = await page.$$eval("#chart-who g.mark", (gs) => gs.map((g) => g.dataset.key));
    assert.deepEqual([...whoKeys].sort(), Object.keys(x.decided_by).sort(), "every decider drawn, no other");
    for (const policy of info.policies) {
      const rules = Object.keys(x.decided_by).filter((k) => k.startsWith(`policy:${policy}/`));
      assert.ok(rules.length >= 2, `${policy} decided by several rules: ${rules}`);
      assert.ok(x.decided_by[`policy:${policy}`] > 0, `${policy} also decided without a recorded rule`);
      for (const key of rules) {
        const label = await page.textContent(`#chart-who g.mark[data-key="${key}"] text.label`);
        assert.equal(label, key.slice(key.indexOf("/") + 1), `${key} labelled with its rule`);
        assert.equal(await page.textContent(`#chart-who g.mark[data-key="${key}"] text.sublabel`), `automatic: rule of policy ${policy}`);
      }
    }
    assert.match(await page.textContent("#refunds"), new RegExp(`^${x.refunds.toLocaleString("en-GB")} refunded`));
    assert.match(await page.textContent("#refunds"), new RegExp((x.refunded_cents / 100).toLocaleString("en-GB", { minimumFractionDigits: 2 }).replace(".", "\\.")));

    // Order feed health and identifiers.
    for (const k of ["accepted", "failed", "duplicate", "rate_limited"]) {
      assert.equal(await count(page, `#legend-orders li[data-key="${k}"]`), x.orders[k] || 0, `orders ${k}`);
      assert.ok((x.orders[k] || 0) > 0, `the seed has ${k} orders`);
    }
    for (const [k, e] of [["arn", "with_arn"], ["auth_code", "with_auth_code"], ["bin", "with_bin"]]) {
      assert.equal(await count(page, `#identifiers li[data-key="${k}"]`), x.orders[e], k);
    }
    assert.match(await page.textContent("#identifiers"), new RegExp(`of ${x.orders.card_txns.toLocaleString("en-GB")}`));
    const problemTotal = await page.$$eval("#chart-order-problems g.mark", (gs) => gs.reduce((t, g) => t + Number(g.dataset.total), 0));
    assert.equal(problemTotal, x.orders.failed + x.orders.duplicate, "failed and duplicate uploads drawn on their own");
    // Orders per day: accepted / failed / duplicate stacked, rate-limited attempts on their own.
    const perDay = (chart) => page.$$eval(`#${chart} g.mark`, (gs) => Object.fromEntries(gs.map((g) => [g.dataset.day,
      Object.fromEntries([...g.querySelectorAll("rect[data-key]")].map((r) => [r.dataset.key, Number(r.dataset.count)]))])));
    const orderDays = await perDay("chart-orders");
    const rateLimitedDays = await perDay("chart-rate-limited");
    assert.equal(Object.keys(rateLimitedDays).length, 90, "rate-limited attempts drawn for every day");
    let rateLimitedDrawn = 0;
    for (const [day, byOutcome] of Object.entries(x.orders_per_day)) {
      const { rate_limited: limited = 0, ...outcomes } = byOutcome;
      assert.deepEqual(orderDays[day], outcomes, `orders on ${day}`);
      assert.deepEqual(rateLimitedDays[day], limited ? { rate_limited: limited } : {}, `rate-limited on ${day}`);
      rateLimitedDrawn += limited;
    }
    assert.equal(rateLimitedDrawn, x.orders.rate_limited);
    const mt = x.matching;
    assert.equal(await page.textContent("#match-rate"),
      `${(100 * mt.matched / (mt.matched + mt.unmatched + mt.ambiguous)).toFixed(1)} % matched (${mt.matched.toLocaleString("en-GB")} matched, ${mt.unmatched} unmatched, ${mt.ambiguous} ambiguous)`);

    // Scheme gauges per customer for the seeded month; the VAMP customer flagged, no other.
    const which = info.month_is_current ? "current" : "previous";
    for (const c of info.customers) {
      const m = (x.months[c.organisation_id] || {})[info.month] || {};
      const row = `.gauge-row[data-org="${c.organisation_id}"]`;
      const visaCases = (m["alerts:VISA"] || 0) - (m["rdr_resolved:VISA"] || 0);
      const visa = `${row} .gauge[data-scheme=visa][data-month=${which}]`;
      assert.equal(Number(await attr(page, visa, "data-cases")), visaCases, `${c.name} Visa cases`);
      assert.equal(Number(await attr(page, visa, "data-settled")), m["settled:VISA"] || 0, `${c.name} Visa settled`);
      const mc = `${row} .gauge[data-scheme=mastercard][data-month=${which}]`;
      assert.equal(Number(await attr(page, mc, "data-cases")), m["disputes:MASTERCARD"] || 0, `${c.name} MC chargebacks`);
      assert.equal(Number(await attr(page, mc, "data-settled")), m["settled:MASTERCARD"] || 0, `${c.name} MC settled`);
      const ratio = visaCases / (m["settled:VISA"] || 1);
      const above = ratio >= 0.015 && visaCases > 1500;
      assert.equal(await attr(page, visa, "data-level"), above ? "above" : ratio >= 0.015 ? "ratio_above_few_cases" : "below", `${c.name} VAMP level`);
      assert.equal(await attr(page, row, "data-flagged"), String(c.name === info.vamp_customer), `${c.name} flagged`);
    }
    assert.match(await page.textContent(`.gauge-row[data-flagged=true] h4`), new RegExp(`${info.vamp_customer}.*over a scheme threshold`));
    assert.match(await page.textContent("#counted"), /RDR-resolved cases do not count/);
    assert.ok((await page.textContent("#not-counted")).length > 40);
    const enrolmentText = await page.textContent("#insights-enrolments tbody");
    for (const c of info.customers) assert.match(enrolmentText, new RegExp(c.name));

    // Colours reach the page (its CSP drops inline style attributes): the legend swatches have
    // their outcome's colour and each identifier meter is as long as its share.
    assert.equal(await page.$eval(`#legend-alerts li[data-key="refunded"] .swatch`, (e) => getComputedStyle(e).backgroundColor), "rgb(0, 158, 115)");
    for (const [k, e] of [["arn", "with_arn"], ["auth_code", "with_auth_code"], ["bin", "with_bin"]]) {
      const drawn = await page.$eval(`#identifiers li[data-key="${k}"] .meter`, (m) => m.firstChild.getBoundingClientRect().width / m.getBoundingClientRect().width);
      assert.ok(Math.abs(drawn - x.orders[e] / x.orders.card_txns) < 0.01, `${k} meter ${drawn}`);
    }
    // The days before the seeded month are said to have nothing counted, not drawn as zeros.
    const monthName = new Date(`${info.month}-01T00:00:00Z`).toLocaleString("en-GB", { month: "short", timeZone: "UTC" });
    assert.equal(await page.textContent("#chart-alerts .empty-note"), `Nothing counted before 1 ${monthName}`);
    // No part of the page runs off the side at 1280 or 1400 px.
    for (const width of [1400, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `insights wider than ${width} px`);
    }

    await page.evaluate(() => window.scrollTo(0, 0));
    const shot = path.join(OUTPUT, "insights.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);

    // Keyboard: each chart is one tab stop; arrows move between its marks and the readout says
    // what the focused one counts.
    const readout = (id) => page.textContent(`#${id} .readout`);
    const dayText = (day) => {
      const counts = x.per_day[day] || {};
      return `${day}: ${Object.values(counts).reduce((a, b) => a + b, 0)} in all`;
    };
    await page.focus("#chart-alerts svg");
    const lastShown = await page.$eval("#chart-alerts g.mark:last-of-type", (g) => g.dataset.day);
    assert.ok((await readout("chart-alerts")).startsWith(dayText(lastShown)), await readout("chart-alerts"));
    await page.keyboard.press("ArrowLeft");
    const before = new Date(Date.parse(`${lastShown}T00:00:00Z`) - 86400000).toISOString().slice(0, 10);
    assert.ok((await readout("chart-alerts")).startsWith(dayText(before)), await readout("chart-alerts"));
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.closest(".chart-box")?.id), "chart-deadline");
    assert.equal(await readout("chart-deadline"), `after the deadline: ${x.missed.length}`);
    await page.keyboard.press("ArrowUp");
    assert.equal(await readout("chart-deadline"), `90-100 % of the time allowed: ${x.buckets["90-100"]}`);
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.closest(".chart-box")?.id), "chart-who");
    await page.keyboard.press("Home");
    const top = Object.entries(x.decided_by).sort((a, b) => b[1] - a[1])[0];
    assert.match(await readout("chart-who"), new RegExp(`: ${top[1]}$`));
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.closest(".chart-box")?.id), "chart-orders");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.closest(".chart-box")?.id), "chart-order-problems");
    await page.keyboard.press("End");
    const problems = await page.$eval("#chart-order-problems g.mark:last-of-type", (g) => g.dataset.total);
    assert.match(await readout("chart-order-problems"), new RegExp(`^${lastShown}: ${problems} in all`));


    mark("charts checked");
    // The CSV export through its button: one row per alert, each in the outcome the seed gave it.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#insights-csv")]);
    assert.equal(download.suggestedFilename(), "alerts-with-decisions.csv");
    const csv = readFileSync(await download.path(), "utf8");
    const rows = csv.trim().split("\n");
    assert.match(rows[0], /^customer,organisation_id,alert_id,provider,status,outcome,/);
    const header = rows[0].split(",");
    const MATCH_COLUMNS = ["match_status", "matched_order_reference", "match_method", "match_rule"];
    const at = MATCH_COLUMNS.map((c) => header.indexOf(c));
    assert.ok(at.every((i) => i > 0), `match columns in ${rows[0]}`);
    const total = x.received.ETHOCA_ALERT + x.received.VERIFI_RDR;
    assert.equal(rows.length - 1, total);
    const cells = rows.slice(1).map((r) => r.split(","));
    const byOutcome = {};
    for (const c of cells) byOutcome[c[5]] = (byOutcome[c[5]] || 0) + 1;
    assert.deepEqual(byOutcome, { ...x.outcomes, pending: x.pending });
    for (const id of x.missed) assert.ok(cells.some((c) => c[2] === id), `missed ${id} in the CSV`);
    // Our match verdict, the order matched, the method and the rule, for every alert matched;
    // empty for those never matched (RDR, no partner records).
    const verdicts = {};
    for (const c of cells) {
      assert.equal(c.length, header.length, c.join(","));
      assert.deepEqual(at.map((i) => c[i]), x.csv_matches[c[2]] || ["", "", "", ""], `match columns of ${c[2]}`);
      if (c[at[0]]) verdicts[c[at[0]]] = (verdicts[c[at[0]]] || 0) + 1;
    }
    assert.deepEqual(verdicts, x.matching);
    assert.ok(cells.some((c) => c[at[0]] === "matched" && c[at[1]] && c[at[2]] === "ARN"), "a matched alert with its order");
    assert.ok(rows.some((r) => r.includes("Dana Whitfield") && r.includes("REFUND")));

    // The escalations export beside it: the Orders guide's escalation fields, one row per
    // unmatched or ambiguous alert (its rows are checked in tests/e2e/tests/policy_cli.rs).
    const [escalations] = await Promise.all([page.waitForEvent("download"), page.click("#escalations-csv")]);
    assert.equal(escalations.suggestedFilename(), "escalations.csv");
    const escalationRows = readFileSync(await escalations.path(), "utf8").trim().split("\n");
    assert.match(escalationRows[0], /^alert_id,organisation_id,match_status,match_method,candidates,/);

    mark("CSV checked");
    // One customer: its own figures and only its gauges.
    await page.selectOption("#insights-org", { label: info.vamp_customer });
    await page.waitForFunction(() => document.querySelectorAll(".gauge-row").length === 1);
    assert.equal(await attr(page, ".gauge-row", "data-customer"), info.vamp_customer);
    // Back to the queue with Escape.
    await page.keyboard.press("Escape");
    assert.equal(await page.isVisible("#app"), true);
    assert.deepEqual(pageErrors, []);
  } catch (e) {
    await page.screenshot({ path: path.join(OUTPUT, "insights-failure.png"), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await page.close();
  }
});
