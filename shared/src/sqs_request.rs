//! Builds a SigV4-signed SQS SendMessage request (JSON protocol) without doing I/O, so the
//! Worker can send it with its own `fetch`. (Owned by the edge-worker work.)
