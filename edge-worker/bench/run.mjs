// The Worker's benchmark (a command, not a test): see README.md "Benchmark".
// Three Workers under workerd (Miniflare), each on a loopback port, measured in one run with
// interleaved rounds so machine noise hits them alike:
//   rust    the real built Worker (verify + SigV4 + SendMessage)
//   js      bench/js-verify.js: the same work in JavaScript with WebCrypto
//   noop    bench/noop.js: answers 200
// SQS is a local endpoint (in a worker thread) that accepts every message at once.
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { gzipSync } from "node:zlib";
import { Log, LogLevel, Miniflare } from "miniflare";

const edgeDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const REQUESTS = arg("--requests", 3000); // per Worker, after warm-up
const CONCURRENCY = arg("--concurrency", 8);
const ROUNDS = 3;
const WARMUP = 200;
const SECRET = "whsec_bench";

// ---------------------------------------------------------------- the SQS that answers at once
const fakeSqs = new Worker(
  `const http = require("node:http");
   const { parentPort } = require("node:worker_threads");
   let n = 0;
   const server = http.createServer((req, res) => {
     req.resume();
     req.on("end", () => {
       n += 1;
       res.writeHead(200, { "content-type": "application/x-amz-json-1.0" });
       res.end(JSON.stringify({ MD5OfMessageBody: "0", MessageId: "m-" + n }));
     });
   });
   server.keepAliveTimeout = 60000;
   server.listen(0, "127.0.0.1", () => parentPort.postMessage(server.address().port));`,
  { eval: true },
);
const sqsPort = await new Promise((r) => fakeSqs.once("message", r));
const sqs = `http://127.0.0.1:${sqsPort}`;

// ---------------------------------------------------------------- the three Workers
const bindings = {
  WEBHOOK_SECRET: SECRET,
  AWS_REGION: "eu-west-1",
  AWS_ACCESS_KEY_ID: "AKIDBENCH",
  AWS_SECRET_ACCESS_KEY: "bench-secret",
  SQS_ENDPOINT: sqs,
  SQS_QUEUE_URL: `${sqs}/123456789012/bench.fifo`,
};
const common = {
  modules: true,
  compatibilityDate: "2026-04-20",
  host: "127.0.0.1",
  port: 0,
  bindings,
  log: new Log(LogLevel.NONE),
  // The Rust Worker logs one line per delivery; drop them so stdout is not the bottleneck. The
  // streams must still be read: an unread pipe fills up and blocks workerd.
  handleRuntimeStdio(stdout, stderr) {
    stdout.resume();
    stderr.resume();
  },
};
const workers = {
  rust: new Miniflare({
    ...common,
    rootPath: edgeDir,
    scriptPath: join(edgeDir, "build/index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
  }),
  js: new Miniflare({ ...common, scriptPath: join(edgeDir, "bench/js-verify.js") }),
  noop: new Miniflare({ ...common, scriptPath: join(edgeDir, "bench/noop.js") }),
};
const urls = {};
for (const [name, mf] of Object.entries(workers)) urls[name] = (await mf.ready).origin;

// ---------------------------------------------------------------- load
let seq = 0;
function signedDelivery() {
  seq += 1;
  const body = JSON.stringify({
    id: `evt_bench_${seq}`,
    type: "alert.created",
    created_at: "2026-02-17T10:30:00Z",
    data: { object: { id: `netalrt_${seq % 97}`, status: "ACTION_REQUIRED", amount: 4999 } },
    api_version: "v1",
  });
  const t = Math.floor(Date.now() / 1000);
  const mac = createHmac("sha512", SECRET).update(`${t}.`).update(body).digest("hex");
  return { body, headers: { "content-type": "application/json", "x-signature": `t=${t},v1=${mac}` } };
}

async function run(url, count) {
  const latencies = [];
  let failures = 0;
  let next = 0;
  const started = performance.now();
  async function lane() {
    while (next < count) {
      next += 1;
      const { body, headers } = signedDelivery();
      const t0 = performance.now();
      // Bounded, so a stuck Worker fails the run instead of hanging it.
      const r = await fetch(`${url}/webhooks/chargebackstop`, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(30_000),
      });
      await r.arrayBuffer();
      latencies.push(performance.now() - t0);
      if (r.status !== 200) failures += 1;
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return { latencies, seconds: (performance.now() - started) / 1000, failures };
}

const results = Object.fromEntries(Object.keys(urls).map((n) => [n, { latencies: [], seconds: 0, failures: 0 }]));
for (const name of Object.keys(urls)) await run(urls[name], WARMUP);
for (let round = 0; round < ROUNDS; round++) {
  for (const name of Object.keys(urls)) {
    const r = await run(urls[name], Math.ceil(REQUESTS / ROUNDS));
    results[name].latencies.push(...r.latencies);
    results[name].seconds += r.seconds;
    results[name].failures += r.failures;
  }
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const stats = {};
for (const [name, r] of Object.entries(results)) {
  const sorted = r.latencies.sort((a, b) => a - b);
  stats[name] = {
    requests: sorted.length,
    failures: r.failures,
    rps: sorted.length / r.seconds,
    p50: pct(sorted, 50),
    p99: pct(sorted, 99),
  };
}

const f = (x, d = 2) => x.toFixed(d);
console.log(`edge-worker benchmark: ${REQUESTS} requests per Worker (+${WARMUP} warm-up), concurrency ${CONCURRENCY}, loopback, workerd via Miniflare`);
console.log("worker   requests  non-200  req/s     p50 ms  p99 ms");
for (const [name, s] of Object.entries(stats)) {
  console.log(`${name.padEnd(8)} ${String(s.requests).padStart(8)}  ${String(s.failures).padStart(7)}  ${f(s.rps, 0).padStart(7)}  ${f(s.p50).padStart(7)}  ${f(s.p99).padStart(6)}`);
}
const ratio = (a, b) => `req/s x${f(stats[a].rps / stats[b].rps)}, p50 x${f(stats[a].p50 / stats[b].p50)}, p99 x${f(stats[a].p99 / stats[b].p99)}`;
console.log(`rust vs noop: ${ratio("rust", "noop")}`);
console.log(`rust vs js:   ${ratio("rust", "js")}`);
console.log(`js vs noop:   ${ratio("js", "noop")}`);

const wasm = readFileSync(join(edgeDir, "build/index_bg.wasm"));
const glue = readFileSync(join(edgeDir, "build/index.js"));
const kb = (n) => `${f(n / 1024, 1)} KiB`;
console.log(
  `bundle: wasm ${kb(wasm.length)} (gzip ${kb(gzipSync(wasm, { level: 9 }).length)}), ` +
    `index.js ${kb(glue.length)} (gzip ${kb(gzipSync(glue, { level: 9 }).length)}), ` +
    `total gzip ${kb(gzipSync(wasm, { level: 9 }).length + gzipSync(glue, { level: 9 }).length)}`,
);

await Promise.all(Object.values(workers).map((mf) => mf.dispose()));
await fakeSqs.terminate();
