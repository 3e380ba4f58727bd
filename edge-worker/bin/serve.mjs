#!/usr/bin/env node
// Serves the already built Worker (build/index.js + wasm) under Miniflare (workerd) on a loopback
// port, without rebuilding: for the whole-flow tests and the local stack.
//
//   node edge-worker/bin/serve.mjs --port 8787 --var WEBHOOK_SECRET:whsec_x \
//     --var SQS_ENDPOINT:http://127.0.0.1:5000 --var SQS_QUEUE_URL:http://127.0.0.1:5000/123456789012/cbs-test-edge.fifo \
//     --var AWS_REGION:eu-west-1 --var AWS_ACCESS_KEY_ID:test --var AWS_SECRET_ACCESS_KEY:test
//
// Prints one line `edge-worker listening on http://127.0.0.1:<port>` once it accepts requests
// (port 0 picks a free one), and stops on SIGTERM/SIGINT. Build first with edge-worker/bin/build.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Log, LogLevel, Miniflare } from "miniflare";

const edgeDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
let port = 8787;
let host = "127.0.0.1";
const bindings = {};
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  const value = () => {
    if (i + 1 >= args.length) throw new Error(`${arg} needs a value`);
    return args[++i];
  };
  if (arg === "--port") port = Number(value());
  else if (arg === "--ip") host = value();
  else if (arg === "--var") {
    const kv = value();
    const at = kv.indexOf(":");
    if (at < 1) throw new Error(`--var wants NAME:VALUE, got a value without ':'`);
    bindings[kv.slice(0, at)] = kv.slice(at + 1);
  } else throw new Error(`unknown argument ${arg} (use --port N, --ip A, --var NAME:VALUE)`);
}
if (host !== "127.0.0.1" && host !== "localhost") throw new Error("serve.mjs binds loopback only");
const script = join(edgeDir, "build/index.js");
if (!existsSync(script)) {
  console.error("edge-worker/build/index.js is missing: run edge-worker/bin/build first");
  process.exit(1);
}

const mf = new Miniflare({
  rootPath: edgeDir,
  modules: true,
  scriptPath: script,
  modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
  compatibilityDate: "2026-04-20",
  bindings,
  host,
  port,
  log: new Log(LogLevel.WARN),
});
const url = await mf.ready;
console.log(`edge-worker listening on ${url.origin}`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    await mf.dispose();
    process.exit(0);
  });
}
