// The Worker's benchmark (a command, not a test): see README.md "Benchmark".
// Four Workers under workerd (Miniflare), each in its own workerd process on a loopback port,
// measured in one run with interleaved rounds so machine noise hits them alike:
//   rust       the real built Worker (verify + SigV4 + SendMessage)
//   rust-noop  bench/rust-noop: a workers-rs `#[event(fetch)]` that answers 200 (the glue's cost)
//   js         bench/js-verify.js: the same work in JavaScript with WebCrypto
//   noop       bench/noop.js: answers 200
//   forward    bench/forward.js: reads the body and POSTs it to SQS unsigned (the subrequest's
//              cost in workerd, which neither no-op pays: the floor for any Worker doing this job)
// SQS is a local endpoint (in a worker thread) that accepts every message at once. Each delivery
// is a signed event envelope padded to --body-bytes (default 16 KiB). CPU per request is measured
// from outside: the workerd process's user + system time (/proc/<pid>/stat) over the measured
// rounds divided by the requests it served (timers inside a Worker do not advance while it computes).
import { createHmac } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
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
const BODY_BYTES = arg("--body-bytes", 16384);
// Rounds, each row taking its turn in an order rotated by one per round: the row that runs first
// in a round is measurably slower (the same build as the first and the last row of one run:
// +0.04 and +0.27 ms CPU, -20% req/s), so no row may always run first. Default: one round per
// row, so each row runs first once.
const ROUNDS_ARG = arg("--rounds", 0);
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
const wasmWorker = (buildDir) => ({
  rootPath: buildDir,
  scriptPath: join(buildDir, "index.js"),
  modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
});
const specs = {
  rust: wasmWorker(join(edgeDir, "build")),
  "rust-noop": wasmWorker(join(edgeDir, "bench/rust-noop/build")),
  js: { scriptPath: join(edgeDir, "bench/js-verify.js") },
  noop: { scriptPath: join(edgeDir, "bench/noop.js") },
  forward: { scriptPath: join(edgeDir, "bench/forward.js") },
};
// --also NAME=DIR (repeatable): another build of the Worker (DIR/index.js + wasm), e.g. a copy of
// the previous build, as an extra row in the same interleaved rounds: an A/B under the same noise.
// DIR must be inside edge-worker/ (workerd refuses module paths that climb out of the working
// directory); bench/ab/ is git-ignored for such copies.
process.argv.forEach((a, i) => {
  if (a !== "--also") return;
  const [name, dir] = process.argv[i + 1].split("=");
  specs[name] = wasmWorker(resolve(dir));
});

// Linux only: the workerd processes this process started, and their CPU time in seconds.
const TICKS_PER_SECOND = 100; // USER_HZ, 100 on every Linux ABI node runs on
function workerdChildren() {
  const pids = new Set();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (comm === "workerd" && ppid === process.pid) pids.add(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[11] is utime, fields[12] stime (fields 14 and 15 of proc(5), counted from pid)
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

// --rows a,b,... runs only those rows (an A/B between two builds, say); the ratio lines that
// name a missing row are left out.
const rowsArg = process.argv.indexOf("--rows");
if (rowsArg > 0) {
  const keep = new Set(process.argv[rowsArg + 1].split(","));
  for (const name of Object.keys(specs)) if (!keep.has(name)) delete specs[name];
}

// One at a time, so each Worker's workerd process is known.
const workers = {};
const pids = {};
const urls = {};
for (const [name, spec] of Object.entries(specs)) {
  const before = workerdChildren();
  const mf = new Miniflare({ ...common, ...spec });
  urls[name] = (await mf.ready).origin;
  workers[name] = mf;
  const started = [...workerdChildren()].filter((pid) => !before.has(pid));
  if (started.length !== 1) throw new Error(`${name}: expected one new workerd process, found ${started.length}`);
  pids[name] = started[0];
}

// Pinning (default with 2 or more CPUs; --no-pin to leave it to the scheduler): every workerd on
// the last CPU, this process (the load generator and the SQS stand-in) on the others, so the
// Worker measured has one core to itself and never competes with its own load. Unpinned on this
// 2-core machine, the same rows moved by up to +-0.3 ms CPU and +-15 % req/s from run to run.
const CPUS = availableParallelism();
let pinned = "not pinned";
if (!process.argv.includes("--no-pin") && CPUS >= 2) {
  const last = String(CPUS - 1);
  const rest = CPUS === 2 ? "0" : `0-${CPUS - 2}`;
  try {
    for (const pid of Object.values(pids)) execFileSync("taskset", ["-a", "-p", "-c", last, String(pid)], { stdio: "ignore" });
    execFileSync("taskset", ["-a", "-p", "-c", rest, String(process.pid)], { stdio: "ignore" });
    pinned = `workerd pinned to CPU ${last}, load generator to CPU ${rest}`;
  } catch (error) {
    pinned = `not pinned (taskset failed: ${error.message.split("\n")[0]})`;
  }
}

// ---------------------------------------------------------------- load
let seq = 0;
// Text like a real alert's free-form fields (nothing JSON escapes, so the body is BODY_BYTES long).
const PADDING = Array.from({ length: Math.ceil(BODY_BYTES / 64) + 1 }, (_, i) =>
  `Customer dispute ${i}: 'item not received', order #${1000 + i}; card ****4242. `.padEnd(64, "-").slice(0, 64),
).join("");
function signedDelivery() {
  seq += 1;
  const event = {
    id: `evt_bench_${seq}`,
    type: "alert.created",
    created_at: "2026-02-17T10:30:00Z",
    data: { object: { id: `netalrt_${seq % 97}`, status: "ACTION_REQUIRED", amount: 4999, description: "" } },
    api_version: "v1",
  };
  const bare = Buffer.byteLength(JSON.stringify(event));
  event.data.object.description = PADDING.slice(0, Math.max(0, BODY_BYTES - bare));
  const body = JSON.stringify(event);
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

const results = Object.fromEntries(Object.keys(urls).map((n) => [n, { latencies: [], seconds: 0, failures: 0, cpu: 0 }]));
const ROUNDS = ROUNDS_ARG > 0 ? ROUNDS_ARG : Math.max(3, Object.keys(urls).length);
for (const name of Object.keys(urls)) await run(urls[name], WARMUP);
const rowNames = Object.keys(urls);
for (let round = 0; round < ROUNDS; round++) {
  for (let turn = 0; turn < rowNames.length; turn++) {
    const name = rowNames[(turn + round) % rowNames.length];
    const cpuBefore = cpuSeconds(pids[name]);
    const r = await run(urls[name], Math.ceil(REQUESTS / ROUNDS));
    results[name].cpu += cpuSeconds(pids[name]) - cpuBefore;
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
    cpuMs: (r.cpu * 1000) / sorted.length,
  };
}

const f = (x, d = 2) => x.toFixed(d);
console.log(
  `edge-worker benchmark: ${REQUESTS} requests per Worker (+${WARMUP} warm-up) in ${ROUNDS} interleaved rounds, ` +
    `${BODY_BYTES}-byte bodies, concurrency ${CONCURRENCY}, loopback, workerd via Miniflare, ${pinned}`,
);
console.log("worker     requests  non-200  req/s     p50 ms  p99 ms  cpu ms/req");
for (const [name, s] of Object.entries(stats)) {
  console.log(
    `${name.padEnd(10)} ${String(s.requests).padStart(8)}  ${String(s.failures).padStart(7)}  ${f(s.rps, 0).padStart(7)}  ` +
      `${f(s.p50).padStart(7)}  ${f(s.p99).padStart(6)}  ${f(s.cpuMs, 3).padStart(10)}`,
  );
}
const ratio = (a, b) =>
  !stats[a] || !stats[b]
    ? "(not run)"
    : `req/s x${f(stats[a].rps / stats[b].rps)}, p50 x${f(stats[a].p50 / stats[b].p50)}, p99 x${f(stats[a].p99 / stats[b].p99)}, ` +
  `cpu ${stats[a].cpuMs >= stats[b].cpuMs ? "+" : ""}${f(stats[a].cpuMs - stats[b].cpuMs, 3)} ms/req`;
console.log(`rust vs noop:      ${ratio("rust", "noop")}`);
console.log(`rust vs rust-noop: ${ratio("rust", "rust-noop")}`);
console.log(`rust vs js:        ${ratio("rust", "js")}`);
console.log(`js vs noop:        ${ratio("js", "noop")}`);
console.log(`rust-noop vs noop: ${ratio("rust-noop", "noop")}`);
console.log(`forward vs noop:   ${ratio("forward", "noop")}`);
console.log(`rust vs forward:   ${ratio("rust", "forward")}`);
console.log(`js vs forward:     ${ratio("js", "forward")}`);
for (const name of Object.keys(stats).filter((n) => !["rust", "rust-noop", "js", "noop", "forward"].includes(n))) {
  console.log(`rust vs ${name}: ${ratio("rust", name)}`);
}

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
