#!/usr/bin/env bash
# `make bench`: per function, the stripped release binary size and cold start (process start
# until it first asks a stand-in Lambda Runtime API for work, SDK clients built); then DynamoDB
# round trips per operation against the emulator; then runtime command latency and the host
# agent's idle memory against the local Docker engine; the incoming-call webhook's round trips
# and in-process p50/p99 against the emulator; ingest round trips per event, transcript polls,
# ingest events per second of one instance, and a simulate-call load run's p50/p99; the schemathesis
# run's duration; leads imports of 10,000 and 100,000 rows (rows/s, DynamoDB requests per row,
# the worker's peak RSS: targets <= 1/25 + a constant, <= 64 MB flat). Targets: <= 25 ms, <= 15 MB, login <= 1
# read before the password check, GET /me <= 2, resolver 1, incoming call <= 3, host agent RSS <= 20 MB,
# ingest 1 read + 1 write per event, a transcript poll 1 Query.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
FUNCTIONS=(agents auth calls establishments ingest runtimes twilio-webhooks post-call call-sweeper leads lead-import campaigns campaign-worker reports integrations tool-proxy)
RUNS=${BENCH_RUNS:-20}

ensure_venv
log "building release binaries (host target $(rustc -vV | sed -n 's/^host: //p'); AWS runs arm64)"
cargo build -q --release $(printf -- '-p %s ' "${FUNCTIONS[@]}")
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/release"

log "cold start, $RUNS runs each"
coldstart=$(
  TABLE_NAME=bench-table BUCKET_NAME=bench-bucket JWT_SECRET=bench-secret-bench-secret-bench-secret \
  MAIL_TRANSPORT=ses AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
  TWILIO_ACCOUNT_SID=ACbench TWILIO_AUTH_TOKEN=bench CALLPLANE_PUBLIC_URL=https://hooks.bench \
  SUMMARY_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/000000000000/bench-summary \
  LIVE_SENTIMENT_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/000000000000/bench-live.fifo \
  LEAD_IMPORT_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/000000000000/bench-lead-import-jobs \
  CAMPAIGN_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/000000000000/bench-campaign-jobs \
  KMS_KEY_ID=alias/bench-secrets \
  python3 scripts/coldstart.py "$RUNS" $(printf -- "$TARGET/%s " "${FUNCTIONS[@]}")
)
echo
echo "| function | stripped size (MB) | cold start median (ms) | p90 (ms) | min (ms) | RSS at start (MiB) |"
echo "|---|---|---|---|---|---|"
while IFS=$'\t' read -r name median p90 min rss; do
  size=$(python3 -c "import os; print(f'{os.path.getsize(\"$TARGET/$name\")/1e6:.1f}')")
  echo "| $name | $size | $median | $p90 | $min | $rss |"
done <<< "$coldstart"
echo
log "what the API description costs: router build, first /openapi.json"
TABLE_NAME=bench-table BUCKET_NAME=bench-bucket JWT_SECRET=bench-secret-bench-secret-bench-secret \
  MAIL_TRANSPORT=ses AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
  TWILIO_ACCOUNT_SID=ACbench TWILIO_AUTH_TOKEN=bench CALLPLANE_PUBLIC_URL=https://hooks.bench \
  SUMMARY_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/000000000000/bench-summary \
  LIVE_SENTIMENT_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/000000000000/bench-live.fifo \
  LEAD_IMPORT_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/000000000000/bench-lead-import-jobs \
  CAMPAIGN_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/000000000000/bench-campaign-jobs \
  cargo run -q --release -p callplane-tests --bin bench-router
echo

mkdir -p .local
port=$(free_port)
start_emulator "$port" .local/moto-bench.log
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
emulator_env "$port"
cargo run -q -p callplane-tests --bin bench-round-trips
echo
log "post-call: call_ended to summary, live sentiment lag, a 2,000-segment analysis"
cargo run -q -p callplane-tests --bin bench-post-call
echo
log "leads import: 10,000 and 100,000 rows through the release lead-import binary"
LEAD_IMPORT_BIN="$TARGET/lead-import" cargo run -q -p callplane-tests --bin bench-lead-import
echo
log "campaign dialer: dials per minute at 6, 60 and 600 a minute, requests per dial, slot reuse"
cargo run -q --release -p callplane-tests --bin bench-dialer
echo
log "reports: a 90-day report and the dashboard with 100 and 10,000 calls, counting a call"
cargo run -q --release -p callplane-tests --bin bench-reports
echo
log "tool proxy: its own overhead per call, DynamoDB requests per call, KMS calls when warm"
cargo run -q --release -p callplane-tests --bin bench-tool-proxy
echo
if docker info >/dev/null 2>&1; then
  scripts/runtime-sim-image.sh
  cargo build -q --release -p runtime-host-agent
  HOST_AGENT_BIN="$TARGET/runtime-host-agent" cargo run -q -p callplane-tests --bin bench-runtime
  echo "| runtime-host-agent stripped size | $(python3 -c "import os; print(f'{os.path.getsize(\"$TARGET/runtime-host-agent\")/1e6:.1f}')") MB |"
else
  log "no Docker engine reachable: skipping the runtime command latency and host agent memory"
fi

log "schemathesis run (make fuzz, ${FUZZ_EXAMPLES:-25} examples per operation)"
fuzz_started=$(date +%s)
scripts/fuzz.sh > .local/fuzz-bench.log 2>&1 && fuzz_status=passed || fuzz_status=failed
cases=$(grep -o '[0-9]* generated' .local/fuzz-bench.log | tail -1 || true)
echo "| schemathesis run | $(( $(date +%s) - fuzz_started )) s, ${cases:-? generated} cases, $fuzz_status |"
