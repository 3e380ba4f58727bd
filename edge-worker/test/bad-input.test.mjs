// Bad input against the real built Worker (wasm under workerd, via Miniflare) and a real moto SQS:
// at least 10,000 generated forged or mutated webhooks, every one answered 4xx, none on the queue.
// A few valid controls go through the same Worker in the same run and must be accepted, so the
// test fails if the Worker refuses everything (or if the queue read-back sees nothing).
//
// The generator is seeded: EDGE_FUZZ_SEED=<n> replays a run (the seed is printed), and
// EDGE_FUZZ_COUNT=<n> changes the number of forgeries (default 10,000).
//
// The 10,000 go to a Worker with KEEP_REFUSED=off, so nothing at all may reach the queue. With
// the default (on), a forgery that could pass for ChargebackStop's is queued marked `refused`
// (archived, never processed; `cbs events replay --refused` verifies it again and never replays
// it): a second run of KEPT_COUNT forgeries checks that every one on the queue is marked. It is
// smaller because each kept copy is an SQS send to moto (about 30 ms here).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createHmac } from "node:crypto";
import { deliver, sign, startMoto, startWorker, workerBindings } from "./helpers.mjs";

const SECRET = "whsec_current_test";
const PREVIOUS = "whsec_previous_test";
const MAX_BODY_BYTES = 4096;
const FRESH_SECS = 300;
const RETRY_WINDOW_SECS = 50 * 3600;
const SEED = Number(process.env.EDGE_FUZZ_SEED ?? 20261130);
const COUNT = Number(process.env.EDGE_FUZZ_COUNT ?? 10_000);
const CONCURRENCY = 32;
const KEPT_COUNT = Number(process.env.EDGE_FUZZ_KEPT_COUNT ?? 400);

/** mulberry32: small, seedable, good enough to pick mutations. */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    bool: () => next() < 0.5,
  };
}

const macHex = (secret, t, body) =>
  createHmac("sha512", secret).update(`${t}.`).update(body).digest("hex");

/** A realistic event body, its id unique to this run and index. */
function eventBody(r, i) {
  const type = r.pick([
    "alert.created",
    "alert.updated",
    "enrolment.updated",
    "representment.created",
    "lookup.created",
  ]);
  return JSON.stringify({
    id: `evt_fuzz_${SEED}_${i}`,
    type,
    created_at: new Date().toISOString(),
    data: {
      object: {
        id: `netalrt_fuzz_${i}`,
        status: "ACTION_REQUIRED",
        amount: r.int(100_000),
        note: "x".repeat(r.int(200)),
      },
      previous_attributes: r.bool() ? null : { status: "PENDING" },
    },
    api_version: "v1",
  });
}

const bytes = (s) => Buffer.from(s, "utf8");

/**
 * The forgeries. Each draws its random choices at once (so a seed replays the same run whatever
 * the request order) and returns `build(now)`, which signs at send time: a run that takes a while
 * cannot drift a "future" or "stale" forgery into the tolerance. `build` gives { body, headers,
 * codes }, `codes` being the error codes the Worker may answer with (every one is a 4xx).
 * Whatever is mutated is mutated after the honest signature was computed, so a wrongly accepting
 * Worker would enqueue it.
 */
const forgeries = {
  // One bit of the body flipped after signing.
  body_bit_flip(r, body) {
    const i = r.int(bytes(body).length);
    const bit = 1 << r.int(8);
    return (now) => {
      const b = bytes(body);
      b[i] ^= bit;
      return { body: b, headers: { "x-signature": sign(SECRET, body, now) }, codes: ["signature_mismatch"] };
    };
  },
  // The body cut short (a dropped connection, a proxy limit) or with bytes appended.
  body_truncated_or_extended(r, body) {
    const b = bytes(body);
    const changed = r.bool()
      ? b.subarray(0, r.int(b.length))
      : Buffer.concat([b, bytes(r.pick([" ", "\n", "}", "x", "\u0000", ",{}"]))]);
    return (now) => ({ body: changed, headers: { "x-signature": sign(SECRET, body, now) }, codes: ["signature_mismatch"] });
  },
  // One bit of the MAC flipped, in lower or upper case hex.
  mac_bit_flip(r, body) {
    const at = r.int(64);
    const bit = 1 << r.int(8);
    const upper = r.bool();
    return (now) => {
      const mac = Buffer.from(macHex(SECRET, now, body), "hex");
      mac[at] ^= bit;
      const hex = upper ? mac.toString("hex").toUpperCase() : mac.toString("hex");
      return { body, headers: { "x-signature": `t=${now},v1=${hex}` }, codes: ["signature_mismatch"] };
    };
  },
  // The honest MAC with another `t` (the MAC covers it).
  timestamp_moved(r, body) {
    const by = r.pick([-1, 1, -60, 60, -299, 299]);
    return (now) => ({
      body,
      headers: { "x-signature": `t=${now + by},v1=${macHex(SECRET, now, body)}` },
      codes: ["signature_mismatch"],
    });
  },
  // Signed by someone else: another secret, the removed previous secret, a near miss, empty.
  other_secret(r, body) {
    const secret = r.pick([PREVIOUS, "whsec_someone_else", SECRET + "x", SECRET.slice(0, -1), SECRET.toUpperCase(), " " + SECRET, ""]);
    return (now) => ({ body, headers: { "x-signature": sign(secret, body, now) }, codes: ["signature_mismatch"] });
  },
  // Honestly signed, from the future beyond the tolerance.
  future_timestamp(r, body) {
    const ahead = FRESH_SECS + 1 + r.int(10 * 365 * 86400);
    return (now) => ({ body, headers: { "x-signature": sign(SECRET, body, now + ahead) }, codes: ["signature_stale"] });
  },
  // Honestly signed, older than even the retried-delivery window.
  stale_timestamp(r, body) {
    const which = r.int(5);
    const back = RETRY_WINDOW_SECS + 1 + r.int(10 * 365 * 86400);
    return (now) => {
      const t = [now - back, 0, 1, -1, now - 2 * RETRY_WINDOW_SECS][which];
      return { body, headers: { "x-signature": sign(SECRET, body, t) }, codes: ["signature_stale"] };
    };
  },
  // Within the retried-delivery window, but the body was changed or the secret is another: the
  // wider window never excuses the HMAC.
  retried_window_forged(r, body) {
    const back = FRESH_SECS + 60 + r.int(RETRY_WINDOW_SECS - FRESH_SECS - 120);
    const flip = r.bool();
    const i = r.int(bytes(body).length);
    const bit = 1 << r.int(8);
    return (now) => {
      if (flip) {
        const b = bytes(body);
        b[i] ^= bit;
        return { body: b, headers: { "x-signature": sign(SECRET, body, now - back) }, codes: ["signature_mismatch"] };
      }
      return { body, headers: { "x-signature": sign("whsec_someone_else", body, now - back) }, codes: ["signature_mismatch"] };
    };
  },
  // Within the retried-delivery window, honestly signed, but not an event envelope: only a fresh
  // delivery may carry such a body (it then goes to the dead-letter path).
  retried_window_not_an_event(r) {
    const back = FRESH_SECS + 60 + r.int(RETRY_WINDOW_SECS - FRESH_SECS - 120);
    const body = r.pick(['{"not":"an event"}', "not json", '{"id":"","type":"alert.created","created_at":"x","data":{"object":{}}}', "", "[]"]);
    return (now) => ({ body, headers: { "x-signature": sign(SECRET, body, now - back) }, codes: ["signature_stale"] });
  },
  // The header's grammar broken in one of many ways, the MAC itself honest.
  header_grammar(r, body) {
    const variants = [
      (now, mac) => [undefined, ["signature_missing"]],
      (now, mac) => ["", ["signature_missing"]],
      (now, mac) => ["   ", ["signature_missing"]],
      (now, mac) => [`v1=${mac}`, ["signature_malformed"]], // no t
      (now, mac) => [`t=${now}`, ["signature_malformed"]], // no v1
      (now, mac) => [`t=${now},v1`, ["signature_malformed"]], // bare v1
      (now, mac) => [`t=${now},v1=`, ["signature_malformed"]],
      (now, mac) => [`t=${now},v1=${mac.slice(0, 127)}`, ["signature_malformed"]],
      (now, mac) => [`t=${now},v1=${mac}0`, ["signature_malformed"]],
      (now, mac) => [`t=${now},v1=${mac.slice(0, 64)}`, ["signature_malformed"]],
      (now, mac) => [`t=${now},v1=${mac.slice(0, 127)}g`, ["signature_malformed"]],
      (now, mac) => [`t=${now},v1=z${mac.slice(1)}`, ["signature_malformed"]],
      (now, mac) => [`t=${now},t=${now},v1=${mac}`, ["signature_malformed"]],
      (now, mac) => [`t=${now};v1=${mac}`, ["signature_malformed"]],
      (now, mac) => [`t=${now} v1=${mac}`, ["signature_malformed"]],
      (now, mac) => [`t:${now},v1:${mac}`, ["signature_malformed"]],
      (now, mac) => [`t=${now},v1=${mac},garbage`, ["signature_malformed"]],
      (now, mac) => [`t=${now}.5,v1=${mac}`, ["signature_malformed"]],
      (now, mac) => [`t=${now}e0,v1=${mac}`, ["signature_malformed"]],
      (now, mac) => [`t=0x${now.toString(16)},v1=${mac}`, ["signature_malformed"]],
      (now, mac) => [`t=99999999999999999999999,v1=${mac}`, ["signature_malformed"]],
      (now, mac) => [`t=,v1=${mac}`, ["signature_malformed"]],
      (now, mac) => [`t=+${now},v1=${mac}`, ["signature_malformed"]],
      (now, mac) => [`t=0${now},v1=${mac}`, ["signature_malformed"]],
      (now, mac) => [`t=${now},v2=${mac}`, ["signature_malformed"]], // only an unknown scheme
      (now, mac) => [`T=${now},V1=${mac}`, ["signature_malformed"]], // keys are case-sensitive
      (now, mac) => [`t=${now},v1=${"0".repeat(128)}`, ["signature_mismatch"]],
      (now, mac) => [`t=${now},` + Array.from({ length: 9 }, () => `v1=${mac}`).join(","), ["signature_malformed"]], // > 8 entries
      (now, mac) => [`t=${now},v1=${Buffer.from(mac, "hex").toString("base64")}`, ["signature_malformed"]],
      (now, mac) => [`t=${now},v1=sha512=${mac}`, ["signature_malformed"]],
      (now, mac) => [`sha512=${mac}`, ["signature_malformed"]],
      (now, mac) => [mac, ["signature_malformed"]],
      (now, mac) => [`t=${now},v1=${"a".repeat(4000)}`, ["signature_malformed"]],
      (now, mac) => [`t=-${now},v1=${mac}`, ["signature_stale"]],
    ];
    const variant = r.pick(variants);
    // The header cut short somewhere (it is 141 characters long).
    const cut = 1 + r.int(139);
    const cutShort = r.next() < 0.1;
    return (now) => {
      const mac = macHex(SECRET, now, body);
      const [value, codes] = cutShort ? [`t=${now},v1=${mac}`.slice(0, cut), ["signature_malformed"]] : variant(now, mac);
      return { body, headers: value === undefined ? {} : { "x-signature": value }, codes };
    };
  },
  // One random byte of an honest header replaced by a random printable character.
  header_byte_replaced(r, body) {
    const at = r.next();
    const c = String.fromCharCode(0x21 + r.int(0x5e)); // printable, no space
    return (now) => {
      const honest = sign(SECRET, body, now);
      let i = Math.floor(at * honest.length);
      let mutated = honest.slice(0, i) + c + honest.slice(i + 1);
      // The same character, or a hex letter changed only in case, is the same MAC: no forgery.
      // Take the next position until the change is a real one.
      while (mutated.toLowerCase() === honest.toLowerCase()) {
        i = (i + 1) % honest.length;
        mutated = honest.slice(0, i) + c + honest.slice(i + 1);
      }
      return { body, headers: { "x-signature": mutated }, codes: ["signature_malformed", "signature_mismatch", "signature_stale"] };
    };
  },
  // Over MAX_BODY_BYTES, honestly signed: refused for its size before any HMAC work.
  oversized(r) {
    const body = JSON.stringify({ id: `evt_big_${r.int(1e9)}`, pad: "x".repeat(MAX_BODY_BYTES + r.int(3 * MAX_BODY_BYTES)) });
    return (now) => ({ body, headers: { "x-signature": sign(SECRET, body, now) }, codes: ["body_too_large"] });
  },
};

/** Valid deliveries, interleaved with the forgeries: each must be 200 and land on the queue. */
function control(r, i) {
  const body = eventBody(r, `control_${i}`);
  const id = JSON.parse(body).id;
  const variants = [
    (now) => ({ "x-signature": sign(SECRET, body, now) }),
    // Tolerated spellings of the same honest header.
    (now) => ({ "x-signature": `t=${now},v1=${macHex(SECRET, now, body).toUpperCase()}` }),
    (now) => ({ "x-signature": ` t=${now} , v1=${macHex(SECRET, now, body)} ` }),
    (now) => ({ "x-signature": `t=${now},v0=ignored,v1=${"0".repeat(128)},v1=${macHex(SECRET, now, body)}` }),
    (now) => ({ "x-signature": sign(SECRET, body, now - FRESH_SECS + 30) }),
    // A retry carrying its first attempt's signature, 14.6 h later.
    (now) => ({ "x-signature": sign(SECRET, body, now - 52_560) }),
  ];
  const v = i % variants.length;
  return { id, body, retried: v === variants.length - 1, build: (now) => ({ body, headers: variants[v](now), codes: [] }) };
}

async function pool(items, limit, work) {
  let next = 0;
  const results = new Array(items.length);
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i], i);
    }
  });
  await Promise.all(runners);
  return results;
}

let moto;
let mf;
let queueUrl;
let mfKept;
let keptQueueUrl;
const logLines = [];
const keptLogLines = [];

function collectLines(stream, into) {
  let rest = "";
  stream.on("data", (d) => {
    const lines = (rest + d).split("\n");
    rest = lines.pop();
    into.push(...lines);
  });
}

before(async () => {
  moto = await startMoto();
  // A standard queue: no FIFO deduplication that could hide an accepted forgery behind a
  // control's id.
  queueUrl = await moto.sqs.createQueue("edge-bad-input");
  keptQueueUrl = await moto.sqs.createQueue("edge-bad-input-kept");
  mfKept = await startWorker(
    workerBindings({ endpoint: moto.url, queueUrl: keptQueueUrl, MAX_BODY_BYTES: String(MAX_BODY_BYTES) }),
    { handleRuntimeStdio: (stdout, stderr) => { collectLines(stdout, keptLogLines); collectLines(stderr, keptLogLines); } },
  );
  mf = await startWorker(
    workerBindings({
      endpoint: moto.url,
      queueUrl,
      MAX_BODY_BYTES: String(MAX_BODY_BYTES),
      KEEP_REFUSED: "off",
    }),
    {
      handleRuntimeStdio(stdout, stderr) {
        for (const stream of [stdout, stderr]) {
          let rest = "";
          stream.on("data", (d) => {
            const lines = (rest + d).split("\n");
            rest = lines.pop();
            logLines.push(...lines);
          });
        }
      },
    },
  );
});

after(async () => {
  await mf?.dispose();
  await mfKept?.dispose();
  await moto?.stop();
});

describe("bad input", () => {
  test(`${COUNT} forged or mutated webhooks are all refused with a 4xx and none reaches the queue`, { timeout: 180_000 }, async (t) => {
    const r = rng(SEED);
    t.diagnostic(`seed ${SEED} (EDGE_FUZZ_SEED=${SEED} replays this run)`);
    const kinds = Object.keys(forgeries);
    const requests = [];
    const controls = [];
    const controlEvery = Math.max(1, Math.floor(COUNT / 12));
    for (let i = 0; i < COUNT; i++) {
      const kind = kinds[i % kinds.length];
      requests.push({ kind, build: forgeries[kind](r, eventBody(r, i)) });
      if (i % controlEvery === 0) {
        const c = control(r, controls.length);
        controls.push(c);
        requests.push({ kind: "control", build: c.build });
      }
    }

    const started = Date.now();
    const outcomes = await pool(requests, CONCURRENCY, async ({ kind, build }) => {
      const req = { kind, ...build(Math.floor(Date.now() / 1000)) };
      const res = await deliver(mf, req.body, req.headers);
      return { req, status: res.status, code: res.json?.error ?? res.json?.status ?? res.text };
    });
    const seconds = (Date.now() - started) / 1000;

    const tally = {};
    const wrong = [];
    for (const { req, status, code } of outcomes) {
      const key = `${req.kind} ${status} ${code}`;
      tally[key] = (tally[key] ?? 0) + 1;
      const ok =
        req.kind === "control"
          ? status === 200
          : status >= 400 && status < 500 && req.codes.includes(code);
      if (!ok && wrong.length < 20) {
        wrong.push({ kind: req.kind, status, code, want: req.codes, header: req.headers["x-signature"]?.slice(0, 200) });
      }
    }
    for (const [key, n] of Object.entries(tally).sort()) t.diagnostic(`${key}: ${n}`);
    const forged = outcomes.filter((o) => o.req.kind !== "control");
    t.diagnostic(`${forged.length} forgeries and ${controls.length} controls in ${seconds.toFixed(1)} s (${Math.round(outcomes.length / seconds)} req/s)`);
    assert.ok(forged.length >= 10_000 || process.env.EDGE_FUZZ_COUNT, `only ${forged.length} forgeries`);
    assert.deepEqual(wrong, [], "every forgery is a 4xx with its expected code, every control a 200");

    // Only the controls are on the queue: no forgery got through (KEEP_REFUSED=off).
    const messages = await moto.sqs.drain(queueUrl);
    const ids = messages.map((m) => m.MessageAttributes.event_id.StringValue).sort();
    assert.deepEqual(ids, controls.map((c) => c.id).sort());
    for (const m of messages) {
      const c = controls.find((c) => c.id === m.MessageAttributes.event_id.StringValue);
      assert.equal(m.Body, c.body);
    }

    // The retried-delivery controls are logged as such; no log line holds the secret or a MAC.
    const retried = controls.filter((c) => c.retried).length;
    assert.ok(retried > 0);
    const logged = logLines.filter((l) => l.includes('"retried_delivery":true')).length;
    assert.equal(logged, retried);
    assert.ok(logLines.length >= outcomes.length, `${logLines.length} log lines`);
    for (const line of logLines) {
      assert.ok(!line.includes(SECRET) && !/[0-9a-f]{128}/i.test(line), `log line leaks: ${line.slice(0, 200)}`);
    }
  });

  test(`${KEPT_COUNT} forgeries with KEEP_REFUSED on: every one that reaches the queue is marked refused`, { timeout: 180_000 }, async (t) => {
    const r = rng(SEED + 1);
    const kinds = Object.keys(forgeries);
    const requests = [];
    const controls = [];
    for (let i = 0; i < KEPT_COUNT; i++) {
      const kind = kinds[i % kinds.length];
      requests.push({ kind, build: forgeries[kind](r, eventBody(r, i)) });
      if (i % 50 === 0) {
        const c = control(r, controls.length);
        controls.push(c);
        requests.push({ kind: "control", build: c.build });
      }
    }
    const outcomes = await pool(requests, CONCURRENCY, async ({ kind, build }) => {
      const req = { kind, ...build(Math.floor(Date.now() / 1000)) };
      const res = await deliver(mfKept, req.body, req.headers);
      return { req, status: res.status, code: res.json?.error ?? res.json?.status ?? res.text };
    });
    const wrong = outcomes.filter(({ req, status, code }) =>
      req.kind === "control" ? status !== 200 : !(status >= 400 && status < 500 && req.codes.includes(code)),
    );
    assert.deepEqual(wrong.slice(0, 10).map((o) => [o.req.kind, o.status, o.code]), []);

    const all = await moto.sqs.drain(keptQueueUrl);
    const kept = all.filter((m) => m.MessageAttributes.refused);
    const accepted = all.filter((m) => !m.MessageAttributes.refused);
    t.diagnostic(`${kept.length} of ${KEPT_COUNT} forgeries kept marked refused; ${accepted.length} controls`);
    // Unmarked: exactly the controls, byte for byte.
    assert.deepEqual(
      accepted.map((m) => m.MessageAttributes.event_id.StringValue).sort(),
      controls.map((c) => c.id).sort(),
    );
    for (const m of accepted) {
      assert.equal(m.Body, controls.find((c) => c.id === m.MessageAttributes.event_id.StringValue).body);
    }
    // Marked: only the refusals that could be ChargebackStop's, each with its code.
    assert.ok(kept.length > 0, "the kept path was exercised");
    for (const m of kept) {
      assert.ok(["signature_mismatch", "signature_stale"].includes(m.MessageAttributes.refused.StringValue));
      assert.match(m.MessageAttributes.signature.StringValue, /t=-?\d+/);
    }
    assert.ok(kept.length <= outcomes.filter((o) => ["signature_mismatch", "signature_stale"].includes(o.code)).length);
    // Each kept one says so in its log line, and no line holds the secret or a MAC.
    assert.equal(keptLogLines.filter((l) => l.includes('"refused_copy":"kept_for_replay"')).length, kept.length);
    for (const line of keptLogLines) {
      assert.ok(!line.includes(SECRET) && !/[0-9a-f]{128}/i.test(line), `log line leaks: ${line.slice(0, 200)}`);
    }
  });
});
