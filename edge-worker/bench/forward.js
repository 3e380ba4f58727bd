// Floor for bin/bench (row `forward`): reads the body and POSTs it to SQS_ENDPOINT unsigned,
// answering 200 once the endpoint answered. No verification, no signing, no parsing: what any
// Worker doing this job pays to workerd for the request in, the subrequest out and the answer.
export default {
  async fetch(req, env) {
    const body = await req.arrayBuffer();
    const r = await fetch(`${env.SQS_ENDPOINT.replace(/\/$/, "")}/`, {
      method: "POST",
      headers: { "content-type": "application/x-amz-json-1.0" },
      body,
      signal: AbortSignal.timeout(5000),
    });
    await r.arrayBuffer();
    return new Response('{"status":"ok"}', { status: r.ok ? 200 : 503, headers: { "content-type": "application/json" } });
  },
};
