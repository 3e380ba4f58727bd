// The Worker's benchmark (a command, not a test): see README.md "Benchmark".
// Five Workers under workerd, each in its own `workerd serve` process on a loopback port,
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
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { gzipSync } from "node:zlib";
import workerd from "workerd";

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
const WARMUP = 500;
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

// ---------------------------------------------------------------- the Workers
// Each row is its own `workerd serve` process (the binary Miniflare and wrangler run), with a
// config written for it: the Worker's modules, its bindings, and the network it may fetch from.
// Not through Miniflare: Miniflare puts its own entry Worker in front of every request, which
// Cloudflare's edge does not (the JS no-op: 0.84-0.88 ms of CPU per 16 KiB request through it,
// 0.40-0.42 ms in plain workerd), and whose cost moved from run to run by more than the gaps.
const bindings = {
  WEBHOOK_SECRET: SECRET,
  AWS_REGION: "eu-west-1",
  AWS_ACCESS_KEY_ID: "AKIDBENCH",
  AWS_SECRET_ACCESS_KEY: "bench-secret",
  SQS_ENDPOINT: sqs,
  SQS_QUEUE_URL: `${sqs}/123456789012/bench.fifo`,
};
const wasmWorker = (buildDir) => ({ dir: buildDir, modules: { "index.js": "esModule", "index_bg.wasm": "wasm" } });
const jsWorker = (file) => ({ dir: dirname(file), modules: { [basename(file)]: "esModule" } });
const specs = {
  rust: wasmWorker(join(edgeDir, "build")),
  "rust-noop": wasmWorker(join(edgeDir, "bench/rust-noop/build")),
  js: jsWorker(join(edgeDir, "bench/js-verify.js")),
  noop: jsWorker(join(edgeDir, "bench/noop.js")),
  forward: jsWorker(join(edgeDir, "bench/forward.js")),
};
// --also NAME=DIR (repeatable): another build of the Worker (DIR/index.js + index_bg.wasm), e.g. a
// copy of the previous build, as an extra row in the same interleaved rounds: an A/B under the
// same noise. NAME=FILE.js: a JavaScript Worker of one module instead (a variant of a row's
// Worker). bench/ab/ is git-ignored for such copies.
process.argv.forEach((a, i) => {
  if (a !== "--also") return;
  const [name, dir] = process.argv[i + 1].split("=");
  specs[name] = dir.endsWith(".js") ? jsWorker(resolve(dir)) : wasmWorker(resolve(dir));
});

// --rows a,b,... runs only those rows, in that order (an A/B between two builds, say); the ratio
// lines that name a missing row are left out.
const rowsArg = process.argv.indexOf("--rows");
if (rowsArg > 0) {
  const keep = process.argv[rowsArg + 1].split(",");
  const chosen = Object.fromEntries(keep.filter((name) => specs[name]).map((name) => [name, specs[name]]));
  for (const name of Object.keys(specs)) delete specs[name];
  Object.assign(specs, chosen); // in the order given
}

const freePort = () =>
  new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
const capnpString = (text) => JSON.stringify(text); // capnp text strings take JSON's escapes

// Starts one row's workerd and waits until it answers; its log lines (the Rust Worker writes one
// per delivery) go to /dev/null, as cheap a sink as the edge's log pipeline is to the Worker.
const scratch = mkdtempSync(join(tmpdir(), "edge-bench-"));
const spawned = []; // every workerd spawned, whether or not it came up
// However the run ends (done, a Worker that did not start, a failed request): no workerd left
// running, no scratch directory left behind.
process.on("exit", () => {
  for (const child of spawned) child.kill();
  rmSync(scratch, { recursive: true, force: true });
});
async function startWorkerd(name, spec) {
  const dir = join(scratch, name);
  mkdirSync(dir);
  for (const module of Object.keys(spec.modules)) copyFileSync(join(spec.dir, module), join(dir, module));
  const port = await freePort();
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = ${capnpString(`127.0.0.1:${port}`)}, http = (), service = "main")],${TRACE_GC ? `\n  v8Flags = ["--trace-gc", "--trace-gc-nvp"],` : ""}
);
const worker :Workerd.Worker = (
  modules = [
${Object.entries(spec.modules)
  .map(([module, kind]) => `    (name = ${capnpString(module)}, ${kind} = embed ${capnpString(module)}),`)
  .join("\n")}
  ],
  compatibilityDate = "2026-04-20",
  bindings = [
${Object.entries(bindings)
  .map(([key, value]) => `    (name = ${capnpString(key)}, text = ${capnpString(value)}),`)
  .join("\n")}
  ],
);
`;
  writeFileSync(join(dir, "config.capnp"), config);
  // V8 prints --trace-gc lines with C stdio, fully buffered into a pipe: stdbuf makes it line by line.
  const [command, args] = TRACE_GC
    ? ["stdbuf", ["-oL", workerdBinary, "serve", "--experimental", "config.capnp"]]
    : [workerdBinary, ["serve", "--experimental", "config.capnp"]];
  const child = spawn(command, args, {
    cwd: dir,
    stdio: ["ignore", TRACE_GC ? "pipe" : "ignore", "pipe"],
  });
  spawned.push(child);
  if (TRACE_GC) watchGc(name, child.stdout);
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`${name}: workerd exited (${child.exitCode}): ${stderr}`);
    try {
      await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      return { child, url };
    } catch {
      if (attempt > 100) throw new Error(`${name}: workerd did not answer on ${url} within 10 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

// --trace-gc: V8's own line per collection (workerd's stdout; with --trace-gc-nvp each is a JSON
// object), counted per row over the counted rounds: how many young-generation collections
// (Scavenge, Minor Mark-Sweep) and full ones (Mark-Compact), the time the Worker stood still in
// each kind, and what makes a young collection long: the bytes allocated between two (how many
// requests each one covers), the bytes still alive that it copies, and the embedder's handles
// (workerd's objects behind Request, Response, Headers, promises) it finds alive and promotes.
const TRACE_GC = process.argv.includes("--trace-gc");
if (TRACE_GC) {
  try {
    execFileSync("stdbuf", ["--version"], { stdio: "ignore" });
  } catch {
    console.error("edge-worker bench: --trace-gc needs stdbuf (GNU coreutils) on PATH to read V8's lines as they come");
    process.exit(2);
  }
}
const gc = {};
let countingGc = false;
function watchGc(name, stdout) {
  gc[name] = {
    young: 0, youngMs: 0, youngPauses: [], full: 0, fullMs: 0, fullMaxMs: 0,
    allocated: 0, allocatedOld: 0, survived: 0, promoted: 0, handlesPromoted: 0, at: [], unread: 0,
  };
  let pending = "";
  stdout.setEncoding("utf8");
  stdout.on("data", (chunk) => {
    const lines = (pending + chunk).split("\n");
    pending = lines.pop();
    if (!countingGc) return;
    for (const line of lines) {
      const at = line.indexOf("GC: {");
      if (at < 0) continue;
      const g = gc[name];
      let c;
      try {
        c = JSON.parse(line.slice(at + 4));
      } catch {
        g.unread += 1; // a V8 whose line is not one JSON object: counted, said below
        continue;
      }
      g.at.push(performance.now());
      g.allocated += c.allocated ?? 0;
      // What was allocated straight into the old generation, never young: V8 gives each
      // collection's allocation rate over all spaces and over the young one.
      if (c.allocation_throughput > 0 && c.new_space_allocation_throughput >= 0) {
        const oldShare = Math.max(0, 1 - c.new_space_allocation_throughput / c.allocation_throughput);
        g.allocatedOld += (c.allocated ?? 0) * oldShare;
      }
      if (c.gc === "mc") {
        g.full += 1;
        g.fullMs += c.pause;
        g.fullMaxMs = Math.max(g.fullMaxMs, c.pause);
      } else {
        g.young += 1;
        g.youngMs += c.pause;
        g.youngPauses.push(c.pause);
        g.survived += c.new_space_survived ?? 0;
        g.promoted += c.promoted ?? 0;
        g.handlesPromoted += c.nodes_promoted ?? 0;
      }
    }
  });
}

// The workerd binary of the installed `workerd` package (a CommonJS module: its path is `.default`).
const workerdBinary = typeof workerd === "string" ? workerd : workerd.default;
const TICKS_PER_SECOND = 100; // USER_HZ, 100 on every Linux ABI node runs on
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[11] is utime, fields[12] stime (fields 14 and 15 of proc(5), counted from pid)
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

const workers = {};
const pids = {};
const urls = {};
for (const [name, spec] of Object.entries(specs)) {
  const { child, url } = await startWorkerd(name, spec);
  workers[name] = child;
  pids[name] = child.pid;
  urls[name] = url;
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
  return {
    body,
    headers: { "content-type": "application/json", "x-signature": `t=${t},v1=${mac}`, "x-idempotency-key": `dlv_bench_${seq}` },
  };
}

// The load generator shares its core with the SQS stand-in, and must cost less per request than
// the Workers it measures, or it, not the Worker, sets req/s and latency: with `fetch` (undici) and
// signing inside the timed loop it took 2.0-3.9 ms of CPU per request, more than any Worker, and
// the row measured first in a run (while node's own code was still warming up) came out 6-13 %
// slower than an identical build measured later. So the deliveries are signed before the timed
// loop (fresh, well within the 300 s tolerance) and sent with node:http over keep-alive sockets.
async function run(url, count) {
  const deliveries = Array.from({ length: count }, () => {
    const { body, headers } = signedDelivery();
    const bytes = Buffer.from(body);
    return { bytes, headers: { ...headers, "content-length": String(bytes.length) } };
  });
  const { hostname, port } = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies = [];
  const spans = [];
  let failures = 0;
  let next = 0;
  const send = ({ bytes, headers }) =>
    new Promise((resolveAnswer, reject) => {
      const req = httpRequest(
        { hostname, port, path: "/webhooks/chargebackstop", method: "POST", headers, agent, timeout: 30_000 },
        (res) => {
          res.resume();
          res.on("end", () => resolveAnswer(res.statusCode));
          res.on("error", reject);
        },
      );
      // Bounded, so a stuck Worker fails the run instead of hanging it.
      req.on("timeout", () => req.destroy(new Error("no answer within 30 s")));
      req.on("error", reject);
      req.end(bytes);
    });
  const started = performance.now();
  async function lane() {
    while (next < count) {
      const delivery = deliveries[next];
      next += 1;
      const t0 = performance.now();
      const status = await send(delivery);
      const t1 = performance.now();
      latencies.push(t1 - t0);
      spans.push([t0, t1]);
      if (status !== 200) failures += 1;
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { latencies, spans, seconds, failures };
}

// After a row's turn, wait until its workerd has used no CPU for 200 ms (3 s at most): what it
// does after its last answer (garbage collection, compiling hot code in the background) counts as
// its own, and does not slow the next row on the shared core. Without this, a row always run right
// after another build of the same Worker measured 12 % fewer req/s than that build.
async function settle(pid) {
  const started = performance.now();
  let last = cpuSeconds(pid);
  let quietSince = performance.now();
  while (performance.now() - started < 3000) {
    await new Promise((r) => setTimeout(r, 50));
    const now = cpuSeconds(pid);
    if (now !== last) {
      last = now;
      quietSince = performance.now();
    } else if (performance.now() - quietSince >= 200) {
      return;
    }
  }
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const results = Object.fromEntries(
  Object.keys(urls).map((n) => [n, { latencies: [], spans: [], seconds: 0, failures: 0, cpu: 0, roundP99: [] }]),
);
const ROUNDS = ROUNDS_ARG > 0 ? ROUNDS_ARG : Math.max(3, Object.keys(urls).length);
for (const name of Object.keys(urls)) {
  await run(urls[name], WARMUP);
  await settle(pids[name]);
}
const rowNames = Object.keys(urls);
// Round -1 is a full round that is not counted: the row measured first in a run came out slower
// than an identical build measured second (req/s x0.92-x0.96, CPU +0.01 to +0.07 ms, three runs),
// after the warm-up alone.
for (let round = -1; round < ROUNDS; round++) {
  countingGc = round >= 0;
  for (let turn = 0; turn < rowNames.length; turn++) {
    const name = rowNames[(turn + round + rowNames.length) % rowNames.length];
    const cpuBefore = cpuSeconds(pids[name]);
    const r = await run(urls[name], Math.ceil(REQUESTS / ROUNDS));
    await settle(pids[name]);
    if (round < 0) continue;
    results[name].cpu += cpuSeconds(pids[name]) - cpuBefore;
    results[name].latencies.push(...r.latencies);
    results[name].roundP99.push(pct([...r.latencies].sort((a, b) => a - b), 99));
    results[name].spans.push(...r.spans);
    results[name].seconds += r.seconds;
    results[name].failures += r.failures;
  }
}

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
  `edge-worker benchmark: ${REQUESTS} requests per Worker (+${WARMUP} warm-up and one uncounted round) in ${ROUNDS} interleaved rounds, ` +
    `${BODY_BYTES}-byte bodies, concurrency ${CONCURRENCY}, loopback, plain workerd, ${pinned}`,
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
// The p99 of each round on its own, and Rust's against JavaScript's in the same round. A p99 rests
// on the slowest 1 % of a round's requests, and at concurrency 8 one pause (a collection, the
// scheduler) slows about 8 requests at once: a round of 800 requests has its p99 set by one or two
// pauses, which is why the p99 of a short run moves by a third from run to run while p50 does not.
console.log(`p99 per round (ms), ${Math.ceil(REQUESTS / ROUNDS)} requests each:`);
for (const [name, r] of Object.entries(results)) {
  console.log(`  ${name.padEnd(10)} ${r.roundP99.map((x) => f(x).padStart(6)).join(" ")}`);
}
if (results.rust && results.js) {
  const each = results.rust.roundP99.map((x, i) => x / results.js.roundP99[i]);
  console.log(`  rust/js    ${each.map((x) => `x${f(x)}`.padStart(6)).join(" ")}  (${each.filter((x) => x <= 1).length} of ${each.length} rounds at or below 1)`);
}

if (TRACE_GC) {
  // A request "met a collection" when a collection's line arrived while it was in flight (the
  // line is printed as the pause ends). The share of the slowest 1 % that did says whether the
  // p99 is garbage collection or something else.
  console.log("garbage collections over the counted rounds (V8 --trace-gc), per 1,000 requests; slowest 1 % that met one:");
  console.log("worker     young  young ms  full  full ms  longest full ms  p99 met a GC  others met a GC");
  for (const [name, g] of Object.entries(gc)) {
    const per = 1000 / stats[name].requests;
    const at = g.at.sort((a, b) => a - b);
    const met = ([t0, t1]) => {
      let lo = 0;
      let hi = at.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (at[mid] < t0) lo = mid + 1;
        else hi = mid;
      }
      return lo < at.length && at[lo] <= t1;
    };
    const spans = results[name].spans;
    const slowest = [...spans].sort((a, b) => b[1] - b[0] - (a[1] - a[0]));
    const cut = Math.max(1, Math.floor(spans.length / 100));
    const share = (list) => (list.length ? `${f((100 * list.filter(met).length) / list.length, 0)} %` : "-");
    console.log(
      `${name.padEnd(10)} ${f(g.young * per, 1).padStart(5)}  ${f(g.youngMs * per, 1).padStart(8)}  ${f(g.full * per, 1).padStart(4)}  ` +
        `${f(g.fullMs * per, 1).padStart(7)}  ${f(g.fullMaxMs, 1).padStart(15)}  ${share(slowest.slice(0, cut)).padStart(12)}  ` +
        `${share(slowest.slice(cut)).padStart(15)}`,
    );
  }
  // Why a young collection is long: it copies what is still alive, and walks the embedder's
  // handles. Few collections (little allocated per request) means each covers more requests, and
  // finds more of workerd's per-request objects still alive.
  // What fills the old generation, and so sets how often a full collection runs, is what young
  // collections promote and what is allocated there directly. For every row that makes a
  // subrequest, the direct part is most of it: V8's object statistics at a full collection
  // (`--trace-gc-object-stats`, 2026-12-02) found it dead FunctionTemplateInfo, SharedFunctionInfo
  // and JSFunction objects, about 18 of each per delivery (forward: 16): the native functions
  // workerd makes for its own promise continuations, which V8 allocates old.
  console.log("what each young collection covers: JS heap allocated per request, requests between two, median pause, KiB copied alive, what it promotes to the old generation per request (KiB, embedder handles), and what is allocated there directly:");
  console.log("worker     alloc KiB/req  requests/young  median young ms  KiB alive/young  KiB promoted/req  handles promoted/req  KiB old direct/req");
  for (const [name, g] of Object.entries(gc)) {
    const requests = stats[name].requests;
    const pauses = [...g.youngPauses].sort((a, b) => a - b);
    const median = pauses.length ? pauses[Math.floor(pauses.length / 2)] : NaN;
    console.log(
      `${name.padEnd(10)} ${f(g.allocated / 1024 / requests, 1).padStart(13)}  ${f(g.young ? requests / g.young : NaN, 0).padStart(14)}  ` +
        `${f(median, 1).padStart(15)}  ${f(g.young ? g.survived / 1024 / g.young : NaN, 0).padStart(15)}  ` +
        `${f(g.promoted / 1024 / requests, 2).padStart(16)}  ${f(g.handlesPromoted / requests, 2).padStart(20)}  ` +
        `${f(g.allocatedOld / 1024 / requests, 2).padStart(18)}`,
    );
    if (g.unread) console.log(`${name}: ${g.unread} collection lines were not JSON (a V8 without --trace-gc-nvp's format?): left out`);
  }
}

const wasm = readFileSync(join(edgeDir, "build/index_bg.wasm"));
const glue = readFileSync(join(edgeDir, "build/index.js"));
const kb = (n) => `${f(n / 1024, 1)} KiB`;
console.log(
  `bundle: wasm ${kb(wasm.length)} (gzip ${kb(gzipSync(wasm, { level: 9 }).length)}), ` +
    `index.js ${kb(glue.length)} (gzip ${kb(gzipSync(glue, { level: 9 }).length)}), ` +
    `total gzip ${kb(gzipSync(wasm, { level: 9 }).length + gzipSync(glue, { level: 9 }).length)}`,
);

await fakeSqs.terminate();
process.exit(0); // the exit hook stops every workerd and removes the scratch directory
