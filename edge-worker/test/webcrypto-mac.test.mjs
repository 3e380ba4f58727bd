// The Worker computes the webhook HMAC with WebCrypto (src/webcrypto.rs), the native crates with
// the `hmac` crate; the verifier around it is the same shared code. These deliveries check that
// the WebCrypto backend gives the host backend's verdicts where HMAC implementations can differ:
// keys shorter than, exactly and longer than SHA-512's 128-byte block (longer keys are hashed
// first), non-ASCII keys, empty, binary and large bodies, the rotation's second key, and the
// vectors `shared/src/signature.rs` tests the host backend with (computed with Python's hmac).
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { deliver, startMoto, startWorker, workerBindings } from "./helpers.mjs";

let moto;
const workers = [];
before(async () => {
  moto = await startMoto();
});
after(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
  await moto?.stop();
});

const signWith = (secret, t, body) =>
  `t=${t},v1=${createHmac("sha512", Buffer.from(secret, "utf8")).update(`${t}.`).update(body).digest("hex")}`;
const flipLastHexDigit = (header) => header.slice(0, -1) + (header.endsWith("0") ? "1" : "0");

async function worker(bindings) {
  const queueUrl = await moto.sqs.createQueue(`mac-${workers.length}`);
  const mf = await startWorker(workerBindings({ endpoint: moto.url, queueUrl, ...bindings }));
  workers.push(mf);
  return mf;
}

describe("WebCrypto HMAC agrees with the host's", () => {
  test("on keys of every length class, non-ASCII keys and awkward bodies", async () => {
    const secrets = [
      "k",
      "x".repeat(127),
      "y".repeat(128),
      "z".repeat(129),
      "whsec_" + "7".repeat(250),
      "whsec_ünïcødé_🔑",
    ];
    const bodies = [
      Buffer.alloc(0),
      Buffer.from(JSON.stringify({ id: "evt_mac_1", type: "alert.created", created_at: "2026-02-17T10:30:00Z", data: { object: { id: "netalrt_1" } } })),
      Buffer.from([0xff, 0x00, 0x01, 0x80, 0x7f]),
      Buffer.alloc(100_000, 0x61),
      Buffer.alloc(111, 0x62), // "<t>." + 111 bytes = exactly one 128-byte block
    ];
    for (const secret of secrets) {
      // The key under test as the previous secret: the rotation path computes it second.
      const mf = await worker({ WEBHOOK_SECRET: "whsec_current_other", WEBHOOK_SECRET_PREVIOUS: secret });
      for (const body of bodies) {
        const header = signWith(secret, Math.floor(Date.now() / 1000), body);
        const ok = await deliver(mf, body, { "x-signature": header });
        assert.equal(ok.status, 200, `${secret.length}-char key, ${body.length}-byte body: ${ok.text}`);
        const forged = await deliver(mf, body, { "x-signature": flipLastHexDigit(header) });
        assert.equal(forged.status, 401);
        assert.deepEqual(forged.json, { error: "signature_mismatch" });
      }
    }
  });

  test("on the vectors the host backend is tested with", async () => {
    // shared/src/signature.rs: BODY, T and the MACs of whsec_test_current / whsec_test_previous.
    const BODY = `{"id":"evt_123","type":"alert.created","created_at":"2026-02-17T10:30:00Z","data":{"object":{"id":"netalrt_abc123"},"previous_attributes":null},"api_version":"v1"}`;
    const T = 1_771_324_200;
    const CURRENT = "312ce5852e36ef07d18e418f21c5eb20f8662a6dd9bc620391434eb11779254e8dabfec5d4e4806640774179da0901a1995b5c2be20ff7caac3ae9f26309f7eb";
    const PREVIOUS = "c0366010a9221b5fa5328878374d1cec9fa2ce6287af72a58641b2a8e591a43c609233d14240750cb0b384fefeeae89c0f31a38a686ab3e8be43662472299aca";
    // T is in the past: accepted through a retried-delivery window wide enough to reach it.
    const mf = await worker({
      WEBHOOK_SECRET: "whsec_test_current",
      WEBHOOK_SECRET_PREVIOUS: "whsec_test_previous",
      SIGNATURE_RETRY_WINDOW_SECS: "4000000000",
    });
    for (const mac of [CURRENT, PREVIOUS]) {
      const r = await deliver(mf, BODY, { "x-signature": `t=${T},v1=${mac}` });
      assert.equal(r.status, 200, r.text);
      const moved = await deliver(mf, BODY, { "x-signature": `t=${T + 1},v1=${mac}` });
      assert.equal(moved.status, 401);
    }
  });
});
