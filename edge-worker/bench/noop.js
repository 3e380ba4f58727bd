// Baseline for bin/bench: answers 200 and does nothing else.
export default {
  async fetch() {
    return new Response('{"status":"ok"}', { headers: { "content-type": "application/json" } });
  },
};
