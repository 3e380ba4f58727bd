// Test helpers: a real moto SQS on a free loopback port, the real built Worker under Miniflare
// (workerd), and ChargebackStop-style signing done here with node's crypto, independently of the
// Rust verifier.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { connect, createServer } from "node:net";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

export const EDGE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");
export const ACCOUNT = "123456789012";
export const REGION = "eu-west-1";

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The venv's Python (bin/setup makes it) and the emulator launcher every local part uses. */
function motoCommand() {
  const cache = process.env.CBS_CACHE ?? join(homedir(), ".cache/chargeback-platform");
  const venv = process.env.CBS_VENV ?? join(cache, "venv");
  const inVenv = join(venv, "bin/python");
  const python = existsSync(inVenv) ? inVenv : "python3";
  return [python, join(EDGE_DIR, "..", "tests/devstack/moto/serve.py")];
}

/**
 * A loopback TCP gate in front of `target` (host:port), on a port it holds for the whole test so
 * no other process can take it. Closed, it resets every connection (SQS unreachable); open, it
 * forwards bytes both ways.
 */
export async function startGate(targetPort) {
  let open = false;
  const sockets = new Set();
  const server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => {});
    if (!open) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(targetPort, "127.0.0.1");
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    open() {
      open = true;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Starts the emulator (tests/devstack/moto/serve.py, as every local part) on a free loopback port and waits (generously: a loaded CI machine imports
 * Python slowly) until it answers. If another process took the port between our probe and moto's
 * bind, moto exits and we try another port.
 */
export async function startMoto() {
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startMotoOn(await freePort());
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function startMotoOn(port) {
  const [python, serve] = motoCommand();
  const child = spawn(python, [serve, "-H", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  let spawnError = null;
  child.on("error", (err) => (spawnError = err));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (spawnError) {
      throw new Error(`cannot run the emulator (bin/setup installs moto and waitress in the venv): ${spawnError.message}`);
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the emulator (serve.py) exited: ${stderr.slice(-2000)}`);
    }
    try {
      const r = await fetch(`${url}/moto-api/`, { signal: AbortSignal.timeout(5_000) });
      await r.arrayBuffer();
      return {
        url,
        port,
        sqs: new Sqs(url),
        async stop() {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = new Promise((r) => child.once("exit", r));
          child.kill("SIGTERM");
          await exited;
        },
      };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill("SIGTERM");
  throw new Error(`the emulator (serve.py) did not start on ${url} within 60 s: ${stderr.slice(-2000)}`);
}

/**
 * Plain-HTTP SQS (JSON protocol) for set-up and reading back. moto does not check signatures
 * until auth is switched on; the Authorization header here only tells moto which service it is.
 */
export class Sqs {
  constructor(url) {
    this.url = url;
  }

  async call(action, input) {
    const r = await fetch(`${this.url}/`, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": `AmazonSQS.${action}`,
        authorization: `AWS4-HMAC-SHA256 Credential=test/20260101/${REGION}/sqs/aws4_request, SignedHeaders=host, Signature=0`,
      },
      body: JSON.stringify(input),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`SQS ${action}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : {};
  }

  async createQueue(name) {
    const fifo = name.endsWith(".fifo");
    const out = await this.call("CreateQueue", {
      QueueName: name,
      Attributes: fifo ? { FifoQueue: "true" } : {},
    });
    return out.QueueUrl;
  }

  /** Every message currently on the queue (received, so hidden for 30 s afterwards). */
  async drain(queueUrl) {
    const all = [];
    for (;;) {
      const out = await this.call("ReceiveMessage", {
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageAttributeNames: ["All"],
        AttributeNames: ["All"],
      });
      const batch = out.Messages ?? [];
      if (batch.length === 0) return all;
      all.push(...batch);
    }
  }

  /** Switches moto's IAM signature checks on (0) or off (Infinity). */
  async enforceAuth(on) {
    const r = await fetch(`${this.url}/moto-api/reset-auth`, {
      method: "POST",
      body: on ? "0" : "inf",
    });
    if (!r.ok) throw new Error(`reset-auth: ${r.status}`);
    await r.arrayBuffer();
  }

  /** An IAM user allowed sqs:SendMessage, and its key, created while auth is off. */
  async iamKey(user) {
    const iam = async (params) => {
      const r = await fetch(`${this.url}/`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          authorization: `AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0`,
        },
        body: new URLSearchParams({ Version: "2010-05-08", ...params }).toString(),
      });
      const text = await r.text();
      if (!r.ok) throw new Error(`IAM ${params.Action}: ${r.status} ${text}`);
      return text;
    };
    await iam({ Action: "CreateUser", UserName: user });
    // What the stack's EdgeWorkerUser gets: SendMessage and nothing else.
    await iam({
      Action: "PutUserPolicy",
      UserName: user,
      PolicyName: "send-only",
      PolicyDocument: JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Action: "sqs:SendMessage", Resource: "*" }],
      }),
    });
    const xml = await iam({ Action: "CreateAccessKey", UserName: user });
    const pick = (tag) => xml.match(new RegExp(`<${tag}>([^<]+)</${tag}>`))[1];
    return { accessKeyId: pick("AccessKeyId"), secretAccessKey: pick("SecretAccessKey") };
  }
}

/** ChargebackStop's `X-Signature` for `body` at `t` (unix seconds) with `secret`. */
export function sign(secret, body, t = Math.floor(Date.now() / 1000)) {
  const mac = createHmac("sha512", secret).update(`${t}.`).update(body).digest("hex");
  return `t=${t},v1=${mac}`;
}

let counter = 0;
/** A webhook event envelope as ChargebackStop sends it. */
export function alertEvent(overrides = {}) {
  counter += 1;
  const id = overrides.id ?? `evt_test_${process.pid}_${counter}`;
  return JSON.stringify({
    id,
    type: overrides.type ?? "alert.created",
    created_at: "2026-02-17T10:30:00Z",
    data: {
      object: { id: overrides.objectId ?? `netalrt_${counter}`, status: "ACTION_REQUIRED" },
      previous_attributes: null,
    },
    api_version: "v1",
  });
}

/** The built Worker (build/index.js + wasm) under Miniflare with the given bindings. */
export async function startWorker(bindings, extra = {}) {
  if (!existsSync(join(EDGE_DIR, "build/index.js"))) {
    throw new Error("build/index.js is missing: run edge-worker/bin/build (bin/setup does)");
  }
  const mf = new Miniflare({
    rootPath: EDGE_DIR,
    modules: true,
    scriptPath: join(EDGE_DIR, "build/index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: "2026-04-20",
    bindings,
    ...extra,
  });
  await mf.ready;
  return mf;
}

/** The bindings a test Worker needs, pointing at `moto` and `queueUrl`. */
export function workerBindings({ endpoint, queueUrl, ...rest }) {
  return {
    WEBHOOK_SECRET: "whsec_current_test",
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: "AKIDTEST",
    AWS_SECRET_ACCESS_KEY: "secret-test",
    SQS_ENDPOINT: endpoint,
    SQS_QUEUE_URL: queueUrl,
    ...rest,
  };
}

export async function deliver(mf, body, headers = {}, init = {}) {
  const r = await mf.dispatchFetch("http://edge.test/webhooks/chargebackstop", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
    ...init,
  });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, json, text, headers: r.headers };
}
