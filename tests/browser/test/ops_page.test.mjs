// The operations page in headless Chromium (Debian's `chromium`, driven by playwright-core) over
// the real local stack: moto, the ChargebackStop sandbox and the ops-api function under
// `cargo lambda watch`. The stack is started and seeded by the Rust harness in
// tests/e2e/tests/ops_api.rs (`serve_stack_for_the_browser_test`), which prints one
// `OPS_STACK {...}` line and serves until its stdin closes.
//
// Checks: the queue lists the alerts soonest deadline first with overdue/urgent marked, an
// operator actions one with a note and sees it resolved with the decision in its history, and
// the sandbox (ChargebackStop) has the alert resolved with that note; an alert's detail shows its
// match to the partner's order (result, method, confidence, candidates), the evidence and the
// rule and evidence of each decision, as text. Saves screenshots under tests/browser/output/ and
// prints their paths.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { openPage } from "./open_page.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, "../../..");
const OUTPUT = path.resolve(here, "../output");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
// Generous: on a fresh machine the harness may still compile, and the first request to the
// function waits for cargo lambda to start it.
const STACK_TIMEOUT_MS = 20 * 60 * 1000;
const UI_TIMEOUT_MS = 120 * 1000;

let stack = null;
let browser = null;

function startStack() {
  const args = [
    "test", "-q", "--workspace", "--test", "ops_api", "--",
    "--ignored", "--exact", "serve_stack_for_the_browser_test", "--nocapture",
  ];
  // No backtrace: when the harness panics, the panic message is what the failure must show.
  const env = { ...process.env, RUST_BACKTRACE: "0" };
  const proc = spawn("cargo", args, { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
  let stderrTail = "";
  let panicMessage = "";
  proc.stderr.on("data", (d) => {
    const text = d.toString();
    stderrTail = (stderrTail + text).slice(-4000);
    const at = text.indexOf("panicked at");
    if (!panicMessage && at >= 0) panicMessage = text.slice(at, at + 2000);
  });
  return new Promise((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => {
      reject(new Error(`no OPS_STACK line after ${STACK_TIMEOUT_MS / 1000}s; stderr: ${stderrTail}`));
    }, STACK_TIMEOUT_MS);
    proc.stdout.on("data", (d) => {
      buffer += d.toString();
      for (const line of buffer.split("\n")) {
        const at = line.indexOf("OPS_STACK ");
        if (at >= 0) {
          clearTimeout(timer);
          try {
            resolve({ proc, info: JSON.parse(line.slice(at + "OPS_STACK ".length)) });
          } catch (e) {
            reject(e);
          }
        }
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      const why = panicMessage ? `it ${panicMessage}\n--- stderr tail:\n` : "stderr: ";
      reject(new Error(`the stack harness exited (${code}) before it was ready; ${why}${stderrTail}`));
    });
  });
}

// Closing stdin lets the harness drop the stack (it stops moto, the sandbox and the functions).
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
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container: Chromium's sandbox needs user namespaces we may not have.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (stack) await stopStack(stack.proc);
});

const rowIds = (page) => page.$$eval("#queue tbody tr", (rows) => rows.map((r) => r.dataset.id));

test("an operator works the queue: deadline order, urgent marked, action with a note resolves the alert", async () => {
  const { info } = stack;
  const page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  try {
    await openPage(page, info.page_url, { pageErrors });
    await page.fill("#key-input", info.operator_key);
    await page.click("#login-form button[type=submit]");

    // The queue: soonest deadline first (the harness seeded them in another order).
    const expected = info.alerts_by_deadline;
    await page.waitForFunction(
      (n) => document.querySelectorAll("#queue tbody tr").length === n, expected.length);
    assert.deepEqual(await rowIds(page), expected);
    assert.equal(await page.textContent("#operator"), info.operator);
    assert.equal(await page.textContent("#mode"), "TEST");

    // Overdue and urgent (within 24 h) are marked; time left is shown.
    const classes = await page.$$eval("#queue tbody tr", (rows) => rows.map((r) => r.className));
    assert.match(classes[0], /overdue/);
    assert.match(classes[1], /urgent/);
    assert.match(classes[2], /urgent/);
    assert.doesNotMatch(classes[3], /urgent|overdue/);
    assert.match(await page.textContent("#queue tbody tr:nth-child(1) td.left"), /^overdue /);
    assert.equal(await page.textContent("#count-overdue"), "1");
    assert.equal(await page.textContent("#count-urgent"), "2");

    // The enrolment board shows the customer's enrolment live.
    await page.waitForFunction(() => document.querySelectorAll("#enrolments tbody tr").length > 0);
    const board = await page.textContent("#enrolments tbody");
    assert.match(board, /ENABLED/);
    assert.match(board, /live/);

    // The dead-letter queue panel: shown once signed in, its depth, nothing stuck.
    await page.waitForSelector("#dlq-panel:not([hidden])");
    await page.waitForFunction(() => document.getElementById("dlq-depth").textContent === "0");
    assert.match(await page.textContent("#dlq-reasons"), /Nothing stuck/);

    // Open the most pressing alert that is not yet overdue, refund it with a note.
    const target = expected[1];
    await page.click(`#queue tbody tr[data-id="${target}"]`);
    await page.waitForFunction((id) => document.getElementById("d-id").textContent === id, target);
    assert.equal(await page.textContent("#d-status"), "ACTION_REQUIRED");
    assert.equal(await page.textContent("#d-urgency"), "URGENT");
    const note = "Refunded in billing, ticket OPS-4411";
    await page.fill("#note", note);
    await page.click('.actions button[data-action="REFUND"]');
    assert.match(await page.textContent("#confirm-text"), /REFUND alert .* with the note/);
    await page.click("#confirm-yes");

    // The operator sees it resolved, with the decision in its history, and it leaves the queue.
    await page.waitForFunction(() => document.getElementById("d-status").textContent === "RESOLVED");
    const history = await page.$$eval("#d-history tbody tr", (rows) =>
      rows.map((r) => [...r.cells].map((c) => c.textContent)));
    assert.equal(history.length, 1, JSON.stringify(history));
    const [, by, action, historyNote] = history[0];
    assert.equal(by, info.operator);
    assert.equal(action, "REFUND");
    assert.equal(historyNote, note);
    await page.waitForFunction(
      (id) => ![...document.querySelectorAll("#queue tbody tr")].some((r) => r.dataset.id === id), target);
    assert.deepEqual(await rowIds(page), expected.filter((id) => id !== target));
    assert.equal(await page.textContent("#count-urgent"), "1");

    const shot = path.join(OUTPUT, "ops-page.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);

    // ChargebackStop (the sandbox) has the action and the note.
    const res = await fetch(`${info.sandbox_url}/v1/alerts/${target}`, {
      headers: { Authorization: `Bearer ${info.sandbox_partner_key}` },
    });
    assert.equal(res.status, 200);
    const alert = await res.json();
    assert.equal(alert.status, "RESOLVED");
    assert.equal(alert.note, note);
    assert.deepEqual(pageErrors, []);
  } catch (e) {
    const shot = path.join(OUTPUT, "ops-page-failure.png");
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.log(`failure screenshot: ${shot}`);
    throw e;
  } finally {
    await page.close();
  }
});

// The `dt`/`dd` pairs of a definition list, as an object.
const fields = (page, selector) => page.$eval(selector, (dl) => {
  const out = {};
  for (const dt of dl.querySelectorAll("dt")) out[dt.textContent] = dt.nextElementSibling.textContent;
  return out;
});

test("an alert's detail shows its match, the candidates, the evidence and the rule that decided", async () => {
  const { info } = stack;
  const page = await browser.newPage({ viewport: { width: 1500, height: 1100 } });
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  const open = async (id) => {
    await page.click(`#queue tbody tr[data-id="${id}"]`);
    await page.waitForFunction((x) => document.getElementById("d-id").textContent === x, id);
  };
  try {
    await openPage(page, info.page_url, { pageErrors });
    await page.fill("#key-input", info.operator_key);
    await page.click("#login-form button[type=submit]");
    await page.waitForFunction(() => document.querySelectorAll("#queue tbody tr").length > 0);

    // Matched by ARN: method, confidence, the order, the deciding rule, the evidence.
    await open(info.matched_alert);
    assert.equal(await page.isVisible("#d-match"), true);
    assert.equal(await page.isVisible("#d-match-none"), false);
    assert.equal(await page.textContent("#d-match-status"), "MATCHED");
    const m = await fields(page, "#d-match-fields");
    assert.equal(m.Result, "matched");
    assert.equal(m.Method, "ARN");
    assert.equal(m.Confidence, "98 %");
    assert.equal(m.Order, "ORD-7781 / txn-ORD-7781");
    assert.equal(m["Deciding rule"], "browser-policy/review-subscriptions");
    assert.equal(m["Methods tried"], "ARN: 1 found");
    const candidates = await page.$$eval("#d-candidates tbody tr", (rows) =>
      rows.map((r) => [...r.cells].map((c) => c.textContent)));
    assert.equal(candidates.length, 1);
    assert.equal(candidates[0][0], "ORD-7781");
    assert.equal(candidates[0][6], "matched");
    const e = await fields(page, "#d-evidence");
    assert.equal(e.Refunded, "partly (4000 cents): rf-7781");
    assert.equal(e.Disputed, "no");
    assert.equal(e.Cancelled, "no");
    assert.equal(e.Subscription, "ACTIVE");
    assert.equal(e["Earlier alerts"], "1: alrt_earlier_1");
    // The policy's decision: its rule and the evidence it recorded.
    const rule = await page.$eval("#d-history tbody tr:last-child td.rule", (c) => ({
      rule: c.querySelector("code").textContent,
      evidence: [...c.querySelectorAll(".evidence-line")].map((l) => l.textContent),
    }));
    assert.equal(rule.rule, "browser-policy/review-subscriptions");
    assert.ok(rule.evidence.includes("matched ORD-7781 / txn-ORD-7781 by Arn (98%)"), JSON.stringify(rule));

    // Ambiguous: both candidates, no evidence; a descriptor with markup stays text.
    await open(info.ambiguous_alert);
    await page.waitForFunction(() => document.getElementById("d-match-status").textContent === "AMBIGUOUS");
    const a = await fields(page, "#d-match-fields");
    assert.equal(a.Method, "BIN + last 4 + amount + currency + date window");
    assert.equal(a.Confidence, "—");
    assert.equal(a["Deciding rule"], "browser-policy/unmatched");
    const both = await page.$$eval("#d-candidates tbody tr", (rows) =>
      rows.map((r) => [...r.cells].map((c) => c.textContent)));
    assert.deepEqual(both.map((r) => r[0]), ["ORD-5501", "ORD-5502"]);
    assert.equal(both[0][5], "<b>ACMEFIT</b> GYM");
    assert.equal(await page.$$eval("#d-candidates b", (bs) => bs.length), 0);
    assert.equal(await page.isVisible("#d-evidence-empty"), true);
    assert.equal(await page.isVisible("#d-evidence"), false);

    const shot = path.join(OUTPUT, "ops-page-match.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);

    // An alert the policy has not looked at says so.
    const other = info.alerts_by_deadline.find((id) =>
      id !== info.matched_alert && id !== info.ambiguous_alert && id !== info.alerts_by_deadline[1]);
    await open(other);
    assert.equal(await page.isVisible("#d-match-none"), true);
    assert.equal(await page.isVisible("#d-match"), false);
    assert.deepEqual(pageErrors, []);
  } catch (e) {
    const shot = path.join(OUTPUT, "ops-page-match-failure.png");
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.log(`failure screenshot: ${shot}`);
    throw e;
  } finally {
    await page.close();
  }
});
