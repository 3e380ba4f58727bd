#!/usr/bin/env bash
# Measures process-events: init time, peak memory, and DynamoDB/API cost per event, for a built
# binary (default: the release build; `PROFILE=debug` for the debug one). It starts moto (tables
# and queues from infra/template.yaml), the sandbox with an organisation, an ENABLED Ethoca
# enrolment and N alerts, and `cargo lambda watch --only-lambda-apis`; runs the binary itself
# against that runtime API (peak memory is its own VmHWM, logged after every batch); invokes it
# with one SQS batch per alert.created event the sandbox emitted, then the same batches again
# (duplicates); prints the figures.
#
#   cargo build --release -p process-events -p cbs-sandbox && functions/process-events/measure.sh
#
# Everything binds 127.0.0.1 on free ports and is stopped on exit.
set -euo pipefail
source "$(dirname "$0")/../../bin/env.sh"
cd "$CBS_ROOT"
PROFILE="${PROFILE:-release}"
ALERTS="${ALERTS:-10}"
BIN="$CARGO_TARGET_DIR/$PROFILE/process-events"
SANDBOX_BIN="$CARGO_TARGET_DIR/debug/cbs-sandbox"
[ -x "$BIN" ] || { echo "missing $BIN (cargo build --$PROFILE -p process-events)" >&2; exit 1; }
[ -x "$SANDBOX_BIN" ] || { echo "missing $SANDBOX_BIN (cargo build -p cbs-sandbox)" >&2; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_for <command> [tenths of a second]
wait_for() { for _ in $(seq 1 "${2:-300}"); do if eval "$1" >/dev/null 2>&1; then return 0; fi; sleep 0.1; done; echo "timed out: $1" >&2; exit 1; }

moto_port="$(free_port)"
setsid moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 & pids+=($!)
export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
wait_for "curl -sf $AWS_ENDPOINT_URL/moto-api/"
python3 infra/local/create_resources.py --endpoint "$AWS_ENDPOINT_URL" --prefix measure >"$work/resources.json"

key="cbs_test_measure$(date +%s)"
setsid "$SANDBOX_BIN" --addr 127.0.0.1:0 --partner-key "$key" >"$work/sandbox.log" 2>&1 & pids+=($!)
wait_for "grep -q SANDBOX_LISTENING $work/sandbox.log"
cbs="$(sed -n 's/^SANDBOX_LISTENING //p' "$work/sandbox.log" | head -1)"
api() { curl -sf -X "$1" "$cbs$2" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$3"; }
org="$(api POST /v1/organisations/ '{"name":"measure"}' | jq -r .id)"
merchant="$(api POST /v1/merchants/ "{\"organisation_id\":\"$org\",\"name\":\"m\",\"type\":\"GENERIC\",\"external_id\":\"m1\"}" | jq -r .id)"
enrolment="$(api POST /v2/enrolments/ "{\"merchant_ids\":[\"$merchant\"],\"type\":\"ETHOCA_ALERT\",\"ethoca_alert\":{\"descriptors\":[{\"descriptor\":\"ACME\",\"match_type\":\"STARTS_WITH\"}]}}" | jq -r .id)"
api PATCH "/v1/simulate/enrolments/$enrolment" '{"status":"ENABLED"}' >/dev/null
for i in $(seq 1 "$ALERTS"); do
  api POST /v1/simulate/alerts "{\"organisation_id\":\"$org\",\"enrolment_id\":\"$enrolment\",\"amount_in_cents\":1000,\"currency_code\":\"USD\"}" >/dev/null
done

lambda_port="$(free_port)"
setsid cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$lambda_port" >"$work/watch.log" 2>&1 & pids+=($!)
# Generous: cargo lambda reads the workspace metadata first and may wait for cargo's lock.
wait_for "grep -q 'starting Runtime server' $work/watch.log" 3000

start_ns="$(date +%s%N)"
setsid env TABLE_PREFIX=measure STACK_MODE=TEST CBS_API_BASE_URL="$cbs" CBS_API_KEY="$key" NOTIFY_SINK=log \
  DEFAULT_ALERT_POLICY='{"refund_at_or_below_cents":2500}' RUST_LOG=info \
  AWS_LAMBDA_FUNCTION_NAME=process-events AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 AWS_LAMBDA_FUNCTION_VERSION=1 \
  AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$lambda_port/.rt/process-events" \
  "$BIN" >"$work/function.log" 2>&1 & pids+=($!)
wait_for "grep -q 'process-events ready' $work/function.log"
ready_ns="$(date +%s%N)"

curl -sf "$cbs/_sandbox/events" | jq -c '.[] | select(.type == "alert.created")' >"$work/events.jsonl"
arn="$(jq -r .edge_queue_arn "$work/resources.json")"
invoke_all() {
  local n=0
  while read -r event; do
    n=$((n + 1))
    jq -n --arg body "$event" --arg arn "$arn" --arg id "m-$1-$n" \
      '{Records: [{messageId: $id, receiptHandle: "rh", body: $body, eventSource: "aws:sqs", eventSourceARN: $arn,
        attributes: {ApproximateReceiveCount: "1", MessageGroupId: "g"}, messageAttributes: {}}]}' >"$work/batch.json"
    cargo lambda invoke process-events -A 127.0.0.1 -P "$lambda_port" --data-file "$work/batch.json" >/dev/null
  done <"$work/events.jsonl"
}
invoke_all first
invoke_all again
kill -- "-${pids[-1]}" 2>/dev/null || true
sleep 0.5

echo "process-events ($PROFILE build), $ALERTS auto-refunded alerts, then the same events again:"
jq -r 'select(.fields.message == "process-events ready") | "  init (main to runtime loop): \(.fields.init_ms) ms; RSS at init \(.fields.peak_rss_kb) KiB"' "$work/function.log"
echo "  process start to ready, seen from outside (0.1 s polling): $(( (ready_ns - start_ns) / 1000000 )) ms"
jq -rs '[.[] | select(.fields.message == "batch done") | .fields.peak_rss_kb] | "  peak RSS after the batches (VmHWM): \(max) KiB"' "$work/function.log"
jq -rs '[.[] | select(.fields.message == "event processed")] | group_by(.fields.duplicate)[] |
  "  \(if .[0].fields.duplicate then "duplicate" else "applied  " end) x\(length): DynamoDB reads \(map(.fields.dynamo_reads) | add / length), writes \(map(.fields.dynamo_writes) | add / length), API calls \(map(.fields.api_calls) | add / length), mean \(map(.fields.duration_ms) | add / length) ms"' "$work/function.log"
echo "  sandbox API requests in all: $(curl -sf "$cbs/_sandbox/requests/counts" | jq -c .)"
