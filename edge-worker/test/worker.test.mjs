// The real built Worker (wasm under workerd, via Miniflare) against a real moto SQS.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  EDGE_DIR,
  alertEvent,
  deliver,
  sign,
  startGate,
  startMoto,
  startWorker,
  workerBindings,
} from "./helpers.mjs";

const SECRET = "whsec_current_test";
const PREVIOUS = "whsec_previous_test";

let moto;
const workers = [];
let queueCounter = 0;

before(async () => {
  moto = await startMoto();
});

after(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
  await moto?.stop();
});

/** A fresh queue on the shared moto and a Worker sending to it. */
async function workerWithQueue({ fifo = true, bindings = {}, extra = {} } = {}) {
  queueCounter += 1;
  const queueUrl = await moto.sqs.createQueue(`edge-${queueCounter}${fifo ? ".fifo" : ""}`);
  const mf = await startWorker(
    workerBindings({ endpoint: moto.url, queueUrl, ...bindings }),
    extra,
  );
  workers.push(mf);
  return { mf, queueUrl };
}

describe("a verified delivery", () => {
  test("lands on the FIFO queue with its raw body and attributes", async () => {
    const { mf, queueUrl } = await workerWithQueue();
    // Odd spacing on purpose: the queue must carry the raw bytes, not re-serialised JSON.
    const body = alertEvent({ id: "evt_valid_1", objectId: "netalrt_42" }).replace(
      '"type"',
      ' "type" ',
    );
    const t = Math.floor(Date.now() / 1000);
    const r = await deliver(mf, body, {
      "x-signature": sign(SECRET, body, t),
      "x-idempotency-key": "idem-valid-1",
    });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { status: "enqueued", event_id: "evt_valid_1" });
    assert.equal(r.headers.get("content-type"), "application/json");

    const messages = await moto.sqs.drain(queueUrl);
    assert.equal(messages.length, 1);
    const [m] = messages;
    assert.equal(m.Body, body);
    const attr = (k) => m.MessageAttributes?.[k]?.StringValue;
    assert.equal(attr("event_id"), "evt_valid_1");
    assert.equal(attr("event_type"), "alert.created");
    assert.equal(attr("idempotency_key"), "idem-valid-1");
    assert.equal(attr("signature_timestamp"), String(t));
    assert.match(attr("received_at"), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(attr("received_at")) - Date.now()) < 60_000);
    assert.equal(m.Attributes.MessageGroupId, "netalrt_42");
    assert.equal(m.Attributes.MessageDeduplicationId, "evt_valid_1");
  });

  test("a duplicate delivery collapses on the FIFO queue", async () => {
    const { mf, queueUrl } = await workerWithQueue();
    const body = alertEvent({ id: "evt_dup_1" });
    for (let i = 0; i < 3; i++) {
      // Each retry is signed afresh, as ChargebackStop does.
      const r = await deliver(mf, body, { "x-signature": sign(SECRET, body) });
      assert.equal(r.status, 200, r.text);
    }
    const messages = await moto.sqs.drain(queueUrl);
    assert.equal(messages.length, 1);
    assert.equal(messages[0].Body, body);
  });

  test("a standard queue works too (no FIFO ids)", async () => {
    const { mf, queueUrl } = await workerWithQueue({ fifo: false });
    const body = alertEvent({ id: "evt_std_1", type: "enrolment.updated" });
    const r = await deliver(mf, body, { "x-signature": sign(SECRET, body) });
    assert.equal(r.status, 200, r.text);
    const messages = await moto.sqs.drain(queueUrl);
    assert.equal(messages.length, 1);
    assert.equal(messages[0].Body, body);
    assert.equal(messages[0].MessageAttributes.event_type.StringValue, "enrolment.updated");
    assert.equal(messages[0].Attributes.MessageGroupId, undefined);
  });

  test("a signed body that is not an event envelope is still enqueued, for the dead-letter path", async () => {
    const { mf, queueUrl } = await workerWithQueue();
    const body = '{"not":"an event"}';
    const r = await deliver(mf, body, {
      "x-signature": sign(SECRET, body),
      "x-idempotency-key": "idem-broken-1",
    });
    assert.equal(r.status, 200, r.text);
    const [m, ...rest] = await moto.sqs.drain(queueUrl);
    assert.equal(rest.length, 0);
    assert.equal(m.Body, body);
    assert.equal(m.MessageAttributes.event_type.StringValue, "unparseable");
    assert.equal(m.MessageAttributes.envelope_error.StringValue, "not_an_envelope");
    assert.equal(m.MessageAttributes.event_id.StringValue, "idem-broken-1");
  });
});

describe("rejected deliveries", () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases = [
    ["missing signature", (b) => ({}), "signature_missing"],
    ["malformed signature", (b) => ({ "x-signature": "t=abc,v1=zz" }), "signature_malformed"],
    ["bare v1", (b) => ({ "x-signature": `t=${now()},v1` }), "signature_malformed"],
    ["stale timestamp (older than the retried-delivery window)", (b) => ({ "x-signature": sign(SECRET, b, now() - 50 * 3600 - 600) }), "signature_stale"],
    ["future timestamp", (b) => ({ "x-signature": sign(SECRET, b, now() + 600) }), "signature_stale"],
    ["mismatch (body changed after signing)", (b) => ({ "x-signature": sign(SECRET, b + " ") }), "signature_mismatch"],
    ["wrong secret", (b) => ({ "x-signature": sign("whsec_someone_else", b) }), "signature_mismatch"],
  ];

  test("every kind is 401 with a short code; only what could be ChargebackStop's is kept, marked refused", async () => {
    const { mf, queueUrl } = await workerWithQueue();
    for (const [name, headers, code] of cases) {
      const body = alertEvent({ id: `evt_${code}_${name.replace(/\W+/g, "_")}` });
      const r = await deliver(mf, body, headers(body));
      assert.equal(r.status, 401, `${name}: ${r.text}`);
      assert.deepEqual(r.json, { error: code }, name);
    }
    // A missing or malformed header is dropped; a stale or mismatched signature over an event
    // is queued marked `refused` (archived, never processed), with what re-verifying needs.
    const queued = await moto.sqs.drain(queueUrl);
    assert.deepEqual(
      queued.map((m) => m.MessageAttributes.refused?.StringValue).sort(),
      ["signature_mismatch", "signature_mismatch", "signature_stale", "signature_stale"],
    );
    for (const m of queued) {
      assert.match(m.MessageAttributes.signature.StringValue, /^t=\d+,v1=[0-9a-f]{128}$/);
      assert.ok(m.MessageAttributes.received_at.StringValue);
    }
  });

  test("KEEP_REFUSED=off keeps nothing", async () => {
    const { mf, queueUrl } = await workerWithQueue({ bindings: { KEEP_REFUSED: "off" } });
    const body = alertEvent();
    const r = await deliver(mf, body, { "x-signature": sign("whsec_someone_else", body) });
    assert.equal(r.status, 401);
    assert.deepEqual(await moto.sqs.drain(queueUrl), []);
  });

  test("the delivery accepted after the fix is not taken for a duplicate of its refused copy", async () => {
    // The same delivery, refused by a Worker with the wrong secret, then accepted by one with
    // the right secret within SQS's five-minute deduplication window: both reach the queue.
    const { mf: wrong, queueUrl } = await workerWithQueue({ bindings: { WEBHOOK_SECRET: "whsec_wrong" } });
    const right = await startWorker(workerBindings({ endpoint: moto.url, queueUrl }));
    workers.push(right);
    const body = alertEvent({ id: "evt_refused_then_fixed" });
    const headers = { "x-signature": sign(SECRET, body), "x-idempotency-key": "idem-fixed-1" };
    assert.equal((await deliver(wrong, body, headers)).status, 401);
    assert.equal((await deliver(right, body, headers)).status, 200);
    const queued = await moto.sqs.drain(queueUrl);
    assert.equal(queued.length, 2, JSON.stringify(queued.map((m) => m.MessageAttributes)));
    const accepted = queued.filter((m) => !m.MessageAttributes.refused);
    assert.equal(accepted.length, 1);
    assert.equal(accepted[0].MessageAttributes.event_id.StringValue, "evt_refused_then_fixed");
    assert.equal(accepted[0].Body, body);
  });

  test("an oversized body is 413, whether declared or streamed, and nothing is enqueued", async () => {
    const { mf, queueUrl } = await workerWithQueue({ bindings: { MAX_BODY_BYTES: "1024" } });
    const big = JSON.stringify({ id: "evt_big", pad: "x".repeat(2000) });
    const declared = await deliver(mf, big, { "x-signature": sign(SECRET, big) });
    assert.equal(declared.status, 413, declared.text);
    assert.deepEqual(declared.json, { error: "body_too_large" });

    // No Content-Length: the Worker stops reading at the limit.
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 4; i++) c.enqueue(new TextEncoder().encode(big.slice(i * 600, (i + 1) * 600)));
        c.close();
      },
    });
    const streamed = await deliver(mf, stream, { "x-signature": sign(SECRET, big) }, { duplex: "half" });
    assert.equal(streamed.status, 413, streamed.text);

    // Just under the limit still goes through.
    const small = alertEvent({ id: "evt_small" });
    const ok = await deliver(mf, small, { "x-signature": sign(SECRET, small) });
    assert.equal(ok.status, 200, ok.text);
    const messages = await moto.sqs.drain(queueUrl);
    assert.deepEqual(messages.map((m) => m.MessageAttributes.event_id.StringValue), ["evt_small"]);
  });

  // A Worker that waited for the body would never answer: the timeout turns that into a failure.
  test("a declared size far over the limit is 413 before any of the body is sent", { timeout: 60_000 }, async () => {
    const { mf, queueUrl } = await workerWithQueue({ bindings: { MAX_BODY_BYTES: "1024" } });
    const origin = await mf.ready;
    // Raw HTTP: headers that announce 10 MB, then nothing. The answer must come without the body.
    const answer = await new Promise((resolve, reject) => {
      const socket = connect(Number(origin.port), origin.hostname);
      let data = "";
      socket.setEncoding("utf8");
      socket.on("data", (d) => {
        data += d;
        if (data.includes("\r\n\r\n")) {
          socket.destroy();
          resolve(data);
        }
      });
      socket.on("error", reject);
      socket.write(
        "POST /webhooks/chargebackstop HTTP/1.1\r\nHost: edge.test\r\n" +
          "Content-Type: application/json\r\nX-Signature: t=1,v1=00\r\nContent-Length: 10000000\r\n\r\n",
      );
    });
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.deepEqual(await moto.sqs.drain(queueUrl), []);
  });

  test("the default limit is 256 KiB", async () => {
    const { mf, queueUrl } = await workerWithQueue();
    const body = JSON.stringify({ id: "evt_huge", pad: "x".repeat(262_144) });
    const r = await deliver(mf, body, { "x-signature": sign(SECRET, body) });
    assert.equal(r.status, 413, r.text);
    assert.deepEqual(await moto.sqs.drain(queueUrl), []);
  });
});

describe("retried deliveries carrying their first attempt's signature", () => {
  const now = () => Math.floor(Date.now() / 1000);

  test("are accepted up to the retry window, logged as such, and collapse with the first delivery", async () => {
    const logs = [];
    const { mf, queueUrl } = await workerWithQueue({
      extra: {
        handleRuntimeStdio(stdout, stderr) {
          for (const s of [stdout, stderr]) s.on("data", (d) => logs.push(...String(d).split("\n")));
        },
      },
    });
    const body = alertEvent({ id: "evt_retry_sig_1" });
    // First attempt at t0; ChargebackStop's retries at +1 m, +5 m, +30 m, +2 h, +12 h all carry
    // the same signature. Each is accepted; FIFO dedupe (and the processor's) keeps one.
    const t0 = now() - 52_560;
    for (const age of [52_560, 45_360, 43_560]) {
      const r = await deliver(mf, body, { "x-signature": sign(SECRET, body, now() - age) });
      assert.equal(r.status, 200, r.text);
    }
    const r = await deliver(mf, body, { "x-signature": sign(SECRET, body, t0) });
    assert.equal(r.status, 200, r.text);
    const messages = await moto.sqs.drain(queueUrl);
    assert.equal(messages.length, 1);
    assert.equal(messages[0].Body, body);
    const line = logs.find((l) => l.includes('"retried_delivery":true'));
    assert.ok(line, logs.join("\n"));
    assert.match(line, /"signature_age_secs":\d+/);
  });

  test("past the window, from the future, or with a body that is not an event: 401", async () => {
    const { mf, queueUrl } = await workerWithQueue();
    const body = alertEvent();
    const old = await deliver(mf, body, { "x-signature": sign(SECRET, body, now() - 50 * 3600 - 60) });
    assert.equal(old.status, 401);
    assert.deepEqual(old.json, { error: "signature_stale" });
    const future = await deliver(mf, body, { "x-signature": sign(SECRET, body, now() + 3600) });
    assert.equal(future.status, 401);
    assert.deepEqual(future.json, { error: "signature_stale" });
    const notAnEvent = '{"not":"an event"}';
    const r = await deliver(mf, notAnEvent, { "x-signature": sign(SECRET, notAnEvent, now() - 3600) });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { error: "signature_stale" });
    // The wider window never excuses the HMAC.
    const forged = await deliver(mf, body, { "x-signature": sign("whsec_other", body, now() - 3600) });
    assert.equal(forged.status, 401);
    assert.deepEqual(forged.json, { error: "signature_mismatch" });
    // Nothing unmarked; the body that is not an event is not kept at all.
    assert.deepEqual(
      (await moto.sqs.drain(queueUrl)).map((m) => m.MessageAttributes.refused?.StringValue).sort(),
      ["signature_mismatch", "signature_stale", "signature_stale"],
    );
  });

  test("SIGNATURE_RETRY_WINDOW_SECS=0 turns the window off", async () => {
    const { mf, queueUrl } = await workerWithQueue({ bindings: { SIGNATURE_RETRY_WINDOW_SECS: "0" } });
    const body = alertEvent();
    const r = await deliver(mf, body, { "x-signature": sign(SECRET, body, now() - 3600) });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { error: "signature_stale" });
    // Kept, marked: the misconfiguration `cbs events replay --refused` recovers from.
    assert.deepEqual(
      (await moto.sqs.drain(queueUrl)).map((m) => m.MessageAttributes.refused?.StringValue),
      ["signature_stale"],
    );
  });
});

describe("secret rotation", () => {
  test("old and new secrets are both accepted, any other is refused", async () => {
    const { mf, queueUrl } = await workerWithQueue({
      bindings: { WEBHOOK_SECRET_PREVIOUS: PREVIOUS },
    });
    const signedBy = async (secret, id) => {
      const body = alertEvent({ id });
      return deliver(mf, body, { "x-signature": sign(secret, body) });
    };
    assert.equal((await signedBy(SECRET, "evt_rot_new")).status, 200);
    assert.equal((await signedBy(PREVIOUS, "evt_rot_old")).status, 200);
    const other = await signedBy("whsec_other", "evt_rot_other");
    assert.equal(other.status, 401);
    assert.deepEqual(other.json, { error: "signature_mismatch" });
    const queued = await moto.sqs.drain(queueUrl);
    const ids = queued.filter((m) => !m.MessageAttributes.refused).map((m) => m.MessageAttributes.event_id.StringValue);
    assert.deepEqual(ids.sort(), ["evt_rot_new", "evt_rot_old"]);
    assert.deepEqual(
      queued.filter((m) => m.MessageAttributes.refused).map((m) => m.MessageAttributes.event_id.StringValue),
      ["evt_rot_other"],
    );
  });

  test("once the previous secret is removed, its signatures are refused", async () => {
    const { mf, queueUrl } = await workerWithQueue();
    const body = alertEvent();
    const r = await deliver(mf, body, { "x-signature": sign(PREVIOUS, body) });
    assert.equal(r.status, 401);
    assert.deepEqual(
      (await moto.sqs.drain(queueUrl)).map((m) => m.MessageAttributes.refused?.StringValue),
      ["signature_mismatch"],
    );
  });
});

describe("when SQS fails", () => {
  test("unreachable SQS is 503; the same delivery retried once SQS is back is enqueued exactly once", async () => {
    // The Worker talks to moto through a gate that refuses connections until it is opened.
    const gate = await startGate(moto.port);
    try {
      const queueUrl = await moto.sqs.createQueue("edge-retry.fifo");
      const mf = await startWorker(workerBindings({ endpoint: gate.url, queueUrl }));
      workers.push(mf);
      const body = alertEvent({ id: "evt_retry_1" });

      const down = await deliver(mf, body, { "x-signature": sign(SECRET, body) });
      assert.equal(down.status, 503, down.text);
      assert.deepEqual(down.json, { error: "queue_unavailable" });
      assert.deepEqual(await moto.sqs.drain(queueUrl), []);

      gate.open();
      // ChargebackStop retries (signing afresh); a second retry after success must not duplicate.
      for (let i = 0; i < 2; i++) {
        const r = await deliver(mf, body, { "x-signature": sign(SECRET, body) });
        assert.equal(r.status, 200, r.text);
      }
      const messages = await moto.sqs.drain(queueUrl);
      assert.equal(messages.length, 1);
      assert.equal(messages[0].Body, body);
    } finally {
      await gate.stop();
    }
  });

  test("SQS refusing the message (queue does not exist) is 503", async () => {
    const mf = await startWorker(
      workerBindings({ endpoint: moto.url, queueUrl: `${moto.url}/123456789012/no-such-queue.fifo` }),
    );
    workers.push(mf);
    const body = alertEvent();
    const r = await deliver(mf, body, { "x-signature": sign(SECRET, body) });
    assert.equal(r.status, 503, r.text);
    assert.deepEqual(r.json, { error: "queue_unavailable" });
  });

  test("SQS that accepts the connection but never answers is 503 after SQS_TIMEOUT_MS", async () => {
    const sockets = new Set();
    const silent = createServer((s) => sockets.add(s));
    await new Promise((r) => silent.listen(0, "127.0.0.1", r));
    const endpoint = `http://127.0.0.1:${silent.address().port}`;
    try {
      const mf = await startWorker(
        workerBindings({ endpoint, queueUrl: `${endpoint}/123456789012/q.fifo`, SQS_TIMEOUT_MS: "300" }),
      );
      workers.push(mf);
      const body = alertEvent();
      const r = await deliver(mf, body, { "x-signature": sign(SECRET, body) });
      assert.equal(r.status, 503, r.text);
      assert.deepEqual(r.json, { error: "queue_timeout" });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  test("a missing binding is 503 (retryable), never 2xx", async () => {
    const mf = await startWorker(
      workerBindings({ endpoint: moto.url, queueUrl: `${moto.url}/123456789012/x.fifo`, AWS_SECRET_ACCESS_KEY: "" }),
    );
    workers.push(mf);
    const body = alertEvent();
    const r = await deliver(mf, body, { "x-signature": sign(SECRET, body) });
    assert.equal(r.status, 503);
    assert.deepEqual(r.json, { error: "worker_not_configured" });
  });
});

describe("SigV4 from wasm", () => {
  test("moto with IAM signature checks on accepts the Worker's request, and refuses a wrong key", async () => {
    const queueUrl = await moto.sqs.createQueue("edge-auth.fifo");
    const key = await moto.sqs.iamKey("edge-worker");
    const good = await startWorker(
      workerBindings({
        endpoint: moto.url,
        queueUrl,
        AWS_ACCESS_KEY_ID: key.accessKeyId,
        AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
      }),
    );
    const bad = await startWorker(
      workerBindings({
        endpoint: moto.url,
        queueUrl,
        AWS_ACCESS_KEY_ID: key.accessKeyId,
        AWS_SECRET_ACCESS_KEY: key.secretAccessKey + "x",
      }),
    );
    workers.push(good, bad);
    const accepted = alertEvent({ id: "evt_auth_good" });
    const refused = alertEvent({ id: "evt_auth_bad" });
    let ok, no;
    await moto.sqs.enforceAuth(true);
    try {
      ok = await deliver(good, accepted, { "x-signature": sign(SECRET, accepted) });
      no = await deliver(bad, refused, { "x-signature": sign(SECRET, refused) });
    } finally {
      await moto.sqs.enforceAuth(false);
    }
    assert.equal(ok.status, 200, ok.text);
    assert.equal(no.status, 503, no.text);
    const ids = (await moto.sqs.drain(queueUrl)).map((m) => m.MessageAttributes.event_id.StringValue);
    assert.deepEqual(ids, ["evt_auth_good"]);
  });
});

describe("routing", () => {
  test("405 for other methods, 404 for other paths, 200 for GET /healthz", async () => {
    const { mf } = await workerWithQueue();
    const get = await mf.dispatchFetch("http://edge.test/webhooks/chargebackstop");
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST");
    assert.equal(get.headers.get("content-type"), "application/json");
    await get.arrayBuffer();
    const put = await mf.dispatchFetch("http://edge.test/webhooks/chargebackstop", { method: "PUT", body: "x" });
    assert.equal(put.status, 405);
    await put.arrayBuffer();
    const missing = await mf.dispatchFetch("http://edge.test/webhooks/other", { method: "POST", body: "{}" });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get("content-type"), "application/json");
    assert.deepEqual(await missing.json(), { error: "not_found" });
    const health = await mf.dispatchFetch("http://edge.test/healthz");
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok" });
    const postHealth = await mf.dispatchFetch("http://edge.test/healthz", { method: "POST" });
    assert.equal(postHealth.status, 405);
    await postHealth.arrayBuffer();
  });
});

describe("the JavaScript around the wasm (js/entry.mjs, js/microtask.mjs)", () => {
  // workerd's queueMicrotask wraps each callback in a native function that only a full garbage
  // collection frees; the glue's task queue would call it four to six times per delivery
  // (js/microtask.mjs). A module loaded before the built Worker counts every call to the global
  // and still makes it; a route of its own reads the count.
  const counter = `
export let watched = 0; // calls, read live by the entry
const real = globalThis.queueMicrotask;
globalThis.queueMicrotask = (task) => { watched += 1; real(task); };`;
  // The built Worker behind a module that loads first (`watcher`, which exports `watched`) and an
  // entry that serves what `watched` holds at /__watched: module evaluation follows import order.
  const watchedEntry = `
import { watched } from "./watcher.mjs";
import worker from "./index.js";
export default {
  fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__watched") return Response.json(watched);
    return worker.fetch(request, env, ctx);
  },
};`;
  const module = (type, name, contents) => ({ type, path: join(EDGE_DIR, "build", name), contents });
  const watchedWorker = (watcher) => {
    const built = (name) => readFileSync(join(EDGE_DIR, "build", name));
    return workerWithQueue({
      extra: {
        scriptPath: undefined,
        modulesRoot: EDGE_DIR,
        modules: [
          module("ESModule", "watched-entry.mjs", watchedEntry),
          module("ESModule", "watcher.mjs", watcher),
          module("ESModule", "index.js", built("index.js")),
          module("CompiledWasm", "index_bg.wasm", built("index_bg.wasm")),
        ],
      },
    });
  };
  const watched = async (mf) => (await mf.dispatchFetch("http://edge.test/__watched")).json();

  test("a delivery is enqueued without one call to workerd's queueMicrotask, through a plain fetch export", async () => {
    const { mf, queueUrl } = await watchedWorker(counter);
    for (const i of [1, 2, 3]) {
      const body = alertEvent({ id: `evt_microtask_${i}`, objectId: `netalrt_mt_${i}` });
      const r = await deliver(mf, body, { "x-signature": sign(SECRET, body, Math.floor(Date.now() / 1000)) });
      assert.equal(r.status, 200, r.text);
    }
    const ids = (await moto.sqs.drain(queueUrl)).map((m) => m.MessageAttributes.event_id.StringValue).sort();
    assert.deepEqual(ids, ["evt_microtask_1", "evt_microtask_2", "evt_microtask_3"]);
    assert.equal(await watched(mf), 0, "the glue called workerd's queueMicrotask");
  });

  // The webhook HMAC's input ("<t>." + body) is handed to WebCrypto as a view of wasm memory
  // (src/webcrypto.rs): no JavaScript buffer of the body's size is allocated, filled and swept
  // for it. A module loaded first records what each `crypto.subtle.sign` call was given.
  const signRecorder = `
export const watched = [];
const subtle = globalThis.crypto.subtle;
const real = subtle.sign.bind(subtle);
subtle.sign = (algorithm, key, data) => {
  watched.push({ length: data.byteLength, ownBuffer: data.buffer.byteLength === data.byteLength });
  return real(algorithm, key, data);
};`;

  test("the webhook HMAC reads its input from wasm memory, not from a buffer of its own", async () => {
    const { mf, queueUrl } = await watchedWorker(signRecorder);
    const body = alertEvent({ id: "evt_hmac_view", objectId: "netalrt_hmac_view" });
    const t = Math.floor(Date.now() / 1000);
    const r = await deliver(mf, body, { "x-signature": sign(SECRET, body, t) });
    assert.equal(r.status, 200, r.text);
    const ids = (await moto.sqs.drain(queueUrl)).map((m) => m.MessageAttributes.event_id.StringValue);
    assert.deepEqual(ids, ["evt_hmac_view"]);
    const signs = await watched(mf);
    const signed = Buffer.byteLength(`${t}.`) + Buffer.byteLength(body);
    const webhookMacs = signs.filter((s) => s.length === signed);
    assert.equal(webhookMacs.length, 1, `one HMAC over "<t>." + body: ${JSON.stringify(signs)}`);
    assert.equal(webhookMacs[0].ownBuffer, false, "the HMAC's input was copied into a JavaScript buffer of its own");
  });
});
