// Comparison for bin/bench: the same work as the Rust Worker, in JavaScript with WebCrypto:
// read the body, verify X-Signature (HMAC-SHA512, 300 s tolerance, current + previous secret),
// sign SendMessage with SigV4 (HMAC-SHA256) and send it to SQS_ENDPOINT, answer once it accepted.
const enc = new TextEncoder();
const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
const json = (status, body) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

async function hmac(alg, key, data) {
  const k = await crypto.subtle.importKey("raw", typeof key === "string" ? enc.encode(key) : key, { name: "HMAC", hash: alg }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", k, typeof data === "string" ? enc.encode(data) : data);
}

async function verify(header, body, secrets, now) {
  if (!header) return "signature_missing";
  let t = null;
  const sigs = [];
  for (const part of header.split(",")) {
    const [k, v] = part.trim().split("=");
    if (k === "t") t = Number(v);
    else if (k === "v1") {
      if (!v || v.length !== 128 || !/^[0-9a-fA-F]+$/.test(v)) return "signature_malformed";
      sigs.push(v.toLowerCase());
    }
  }
  if (!Number.isInteger(t) || sigs.length === 0) return "signature_malformed";
  if (Math.abs(now - t) > 300) return "signature_stale";
  const prefix = enc.encode(`${t}.`);
  const signed = new Uint8Array(prefix.length + body.byteLength);
  signed.set(prefix);
  signed.set(new Uint8Array(body), prefix.length);
  for (const secret of secrets) {
    const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-512" }, false, ["verify"]);
    for (const sig of sigs) {
      const bytes = new Uint8Array(sig.match(/../g).map((h) => parseInt(h, 16)));
      if (await crypto.subtle.verify("HMAC", key, bytes, signed)) return null;
    }
  }
  return "signature_mismatch";
}

async function sigv4(env, url, target, body, nowMs) {
  const u = new URL(url);
  const amzDate = new Date(nowMs).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const bodyHash = hex(await crypto.subtle.digest("SHA-256", enc.encode(body)));
  const headers = { "content-type": "application/x-amz-json-1.0", host: u.host, "x-amz-date": amzDate, "x-amz-target": target };
  const names = Object.keys(headers).sort();
  const canonical = ["POST", u.pathname, "", ...names.map((n) => `${n}:${headers[n]}`), "", names.join(";"), bodyHash].join("\n");
  const scope = `${day}/${env.AWS_REGION}/sqs/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, hex(await crypto.subtle.digest("SHA-256", enc.encode(canonical)))].join("\n");
  let key = await hmac("SHA-256", `AWS4${env.AWS_SECRET_ACCESS_KEY}`, day);
  for (const part of [env.AWS_REGION, "sqs", "aws4_request"]) key = await hmac("SHA-256", key, part);
  const signature = hex(await hmac("SHA-256", key, toSign));
  delete headers.host;
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${env.AWS_ACCESS_KEY_ID}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`;
  return headers;
}

export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    if (url.pathname !== "/webhooks/chargebackstop") return json(404, { error: "not_found" });
    if (req.method !== "POST") return json(405, { error: "method_not_allowed" });
    const body = await req.arrayBuffer();
    if (body.byteLength > 262144) return json(413, { error: "body_too_large" });
    const nowMs = Date.now();
    const secrets = [env.WEBHOOK_SECRET, env.WEBHOOK_SECRET_PREVIOUS].filter(Boolean);
    const error = await verify(req.headers.get("x-signature"), body, secrets, Math.floor(nowMs / 1000));
    if (error) return json(401, { error });
    const text = new TextDecoder().decode(body);
    const event = JSON.parse(text);
    const input = JSON.stringify({
      QueueUrl: env.SQS_QUEUE_URL,
      MessageBody: text,
      MessageAttributes: {
        event_id: { DataType: "String", StringValue: event.id },
        event_type: { DataType: "String", StringValue: event.type },
      },
      MessageDeduplicationId: event.id,
      MessageGroupId: event.data?.object?.id ?? event.id,
    });
    const endpoint = `${env.SQS_ENDPOINT.replace(/\/$/, "")}/`;
    const headers = await sigv4(env, endpoint, "AmazonSQS.SendMessage", input, nowMs);
    const r = await fetch(endpoint, { method: "POST", headers, body: input, signal: AbortSignal.timeout(5000) });
    const out = await r.json().catch(() => ({}));
    if (!r.ok || !out.MessageId) return json(503, { error: "queue_unavailable" });
    return json(200, { status: "enqueued", event_id: event.id });
  },
};
