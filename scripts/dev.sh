#!/usr/bin/env bash
# `make dev`: from a fresh clone, installs what is missing, starts the emulator, creates the
# resources, bootstraps the admin and serves every function on one port with
# `cargo lambda watch`. When a Docker engine is reachable it also builds the runtime-sim image
# and runs a runtime host agent (host `local`) against it, so runtimes can be provisioned and
# started from the API; when not, it says so and serves the API without one. Ctrl-C stops
# everything it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

EMULATOR_PORT=${CALLPLANE_EMULATOR_PORT:-4566}
API_PORT=${CALLPLANE_PORT:-9000}
PREFIX=${CALLPLANE_RESOURCE_PREFIX:-callplane-local}

ensure_venv
mkdir -p .local
if python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$EMULATOR_PORT))!=0)"; then
  log "port $EMULATOR_PORT is in use: stop what runs there or set CALLPLANE_EMULATOR_PORT"
  exit 1
fi
log "starting the emulator on 127.0.0.1:$EMULATOR_PORT (log: .local/moto-dev.log)"
start_emulator "$EMULATOR_PORT" .local/moto-dev.log
AGENT_PID=""
TWILIO_PID=""
PROVIDERS_PID=""
DELIVER_PID=""
TICK_PID=""
LIVE_PID=""
IMPORT_PID=""
CAMPAIGN_PID=""
cleanup() {
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null || true
  [ -n "$DELIVER_PID" ] && kill "$DELIVER_PID" 2>/dev/null || true
  [ -n "$TICK_PID" ] && kill "$TICK_PID" 2>/dev/null || true
  [ -n "$LIVE_PID" ] && kill "$LIVE_PID" 2>/dev/null || true
  [ -n "$IMPORT_PID" ] && kill "$IMPORT_PID" 2>/dev/null || true
  [ -n "$CAMPAIGN_PID" ] && kill "$CAMPAIGN_PID" 2>/dev/null || true
  [ -n "$TWILIO_PID" ] && kill "$TWILIO_PID" 2>/dev/null || true
  [ -n "$PROVIDERS_PID" ] && kill "$PROVIDERS_PID" 2>/dev/null || true
  kill "$MOTO_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
emulator_env "$EMULATOR_PORT"

log "building the admin tool"
cargo build -q -p callplane --bin callplane-admin
ADMIN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/callplane-admin"
log "creating the table, bucket and queues ($PREFIX-*)"
eval "$(while IFS= read -r line; do printf 'export %q\n' "$line"; done < <("$ADMIN_BIN" create-resources "$PREFIX"))"

export JWT_SECRET=${JWT_SECRET:-local-development-secret-change-me-0123456789}
export MAIL_TRANSPORT=outbox
export CALLPLANE_APP_URL=${CALLPLANE_APP_URL:-http://localhost:5173}
export CALLPLANE_ADMIN_EMAIL=${CALLPLANE_ADMIN_EMAIL:-admin@callplane.local}
export CALLPLANE_ADMIN_PASSWORD=${CALLPLANE_ADMIN_PASSWORD:-callplane-admin-password}
export RUST_LOG=${RUST_LOG:-info}
export INGEST_URL=${INGEST_URL:-http://127.0.0.1:$API_PORT/ingest/call-events}
# Telephony: passed through from the environment (use a tunnel's https URL as
# CALLPLANE_PUBLIC_URL and your real account to take real calls). Without TWILIO_API_BASE a
# local Twilio stand-in answers (the tests' one, owning every number), so numbers register
# and outbound calls are placed; the webhooks answer requests signed with its auth token.
if [ -z "${TWILIO_API_BASE:-}" ]; then
  TWILIO_PORT=${CALLPLANE_TWILIO_PORT:-4580}
  cargo build -q -p callplane-tests --bin twilio-standin
  "${CARGO_TARGET_DIR:-$ROOT/target}/debug/twilio-standin" "$TWILIO_PORT" > .local/twilio-standin.log 2>&1 &
  TWILIO_PID=$!
  export TWILIO_API_BASE="http://127.0.0.1:$TWILIO_PORT"
  export TWILIO_ACCOUNT_SID=${TWILIO_ACCOUNT_SID:-AC00000000000000000000000000000001}
  export TWILIO_AUTH_TOKEN=${TWILIO_AUTH_TOKEN:-test-auth-token-0123456789abcdef}
fi
export TWILIO_ACCOUNT_SID=${TWILIO_ACCOUNT_SID:-AC00000000000000000000000000000000}
export TWILIO_AUTH_TOKEN=${TWILIO_AUTH_TOKEN:-local-twilio-auth-token}
export CALLPLANE_PUBLIC_URL=${CALLPLANE_PUBLIC_URL:-http://127.0.0.1:$API_PORT}
export TOOL_PROXY_URL=${TOOL_PROXY_URL:-http://127.0.0.1:$API_PORT/tool-proxy}
export OAUTH_CALLBACK_URL=${OAUTH_CALLBACK_URL:-http://127.0.0.1:$API_PORT/integrations/oauth/callback}
# Integrations: without GOOGLE_OAUTH_CLIENT_ID, local stand-ins answer for Google (a consent
# page that allows at once, placeholder client settings), WhatsApp, HubSpot and SMTP, so every
# connect flow and tool call can be tried; the tokens they accept are in
# .local/providers-standin.log.
if [ -z "${GOOGLE_OAUTH_CLIENT_ID:-}" ]; then
  PROVIDERS_PORT=${CALLPLANE_PROVIDERS_PORT:-4581}
  SMTP_PORT=${CALLPLANE_SMTP_PORT:-4582}
  cargo build -q -p callplane-tests --bin providers-standin
  "${CARGO_TARGET_DIR:-$ROOT/target}/debug/providers-standin" "$PROVIDERS_PORT" "$SMTP_PORT" \
    > .local/providers-env 2> .local/providers-standin.log &
  PROVIDERS_PID=$!
  for _ in $(seq 1 100); do grep -q '^# ready' .local/providers-env 2>/dev/null && break; sleep 0.1; done
  if ! grep -q '^# ready' .local/providers-env 2>/dev/null; then
    log "the provider stand-ins did not start (ports $PROVIDERS_PORT, $SMTP_PORT): see .local/providers-standin.log"
    exit 1
  fi
  while IFS= read -r line; do
    case "$line" in '#'*) ;; *) export "$line" ;; esac
  done < .local/providers-env
fi
"$ADMIN_BIN" bootstrap-admin

RUNTIMES="no Docker engine reachable (docker info failed): runtimes can be provisioned but no host runs them"
if docker info >/dev/null 2>&1; then
  log "building the runtime-sim image"
  scripts/runtime-sim-image.sh
  log "registering runtime host 'local' (ports 18080-18179) and starting its agent"
  eval "$("$ADMIN_BIN" register-host local "$RUNTIME_COMMANDS_QUEUE_URL" 127.0.0.1 18080 18179 | sed 's/^/export /')"
  cargo build -q -p runtime-host-agent
  COMMANDS_QUEUE_URL="$RUNTIME_COMMANDS_QUEUE_URL" CALLPLANE_API_URL="http://127.0.0.1:$API_PORT" \
    HOST_ID=local HOST_TOKEN="$HOST_TOKEN" \
    "${CARGO_TARGET_DIR:-$ROOT/target}/debug/runtime-host-agent" > .local/host-agent.log 2>&1 &
  AGENT_PID=$!
  RUNTIMES="host 'local' on this Docker engine (agent log: .local/host-agent.log); image callplane/runtime-sim:dev"
else
  log "$RUNTIMES"
fi

cat <<INFO

  API           http://127.0.0.1:$API_PORT   (e.g. POST /auth/login)
  Admin         $CALLPLANE_ADMIN_EMAIL / $CALLPLANE_ADMIN_PASSWORD
  Outbox        s3://$BUCKET_NAME/outbox/  — list: curl '$AWS_ENDPOINT_URL/$BUCKET_NAME?list-type=2&prefix=outbox/'
                (each mail is also logged by the function that sent it)
  Emulator      $AWS_ENDPOINT_URL  (in memory: state is gone when this stops)
  Runtimes      $RUNTIMES
  Twilio        account $TWILIO_ACCOUNT_SID, API $TWILIO_API_BASE
                webhooks signed for $CALLPLANE_PUBLIC_URL/webhooks/twilio/… with TWILIO_AUTH_TOKEN
  Post-call     summary queue -> post-call function, as Lambda's SQS event source delivers it
                (log: .local/post-call-events.log); live-sentiment queue -> the same
                function (log: .local/live-sentiment-events.log)
  Lead imports  lead import queue -> lead-import function (log: .local/lead-import-events.log)
  Campaigns     campaign queue -> campaign-worker function, the dialer's ticks
                (log: .local/campaign-worker-events.log)
  Sweeper       the call sweeper every 60 s, as its EventBridge schedule runs it; it also
                restarts broken campaign tick chains (log: .local/call-sweeper.log)
  Stop          Ctrl-C

INFO
# Lambda's SQS event source, locally: batches from the summary queue go to the post-call
# function through cargo lambda watch's Invoke API; partial batch failures come back after the
# visibility timeout, and SQS dead-letters them after the receive count.
"$ADMIN_BIN" deliver "$SUMMARY_QUEUE_URL" \
  "http://127.0.0.1:$API_PORT/2015-03-31/functions/post-call/invocations" \
  > .local/post-call-events.log 2>&1 &
DELIVER_PID=$!
"$ADMIN_BIN" deliver "$LIVE_SENTIMENT_QUEUE_URL" \
  "http://127.0.0.1:$API_PORT/2015-03-31/functions/post-call/invocations" \
  > .local/live-sentiment-events.log 2>&1 &
LIVE_PID=$!
"$ADMIN_BIN" deliver "$LEAD_IMPORT_QUEUE_URL" \
  "http://127.0.0.1:$API_PORT/2015-03-31/functions/lead-import/invocations" \
  > .local/lead-import-events.log 2>&1 &
IMPORT_PID=$!
"$ADMIN_BIN" deliver "$CAMPAIGN_QUEUE_URL" \
  "http://127.0.0.1:$API_PORT/2015-03-31/functions/campaign-worker/invocations" \
  > .local/campaign-worker-events.log 2>&1 &
CAMPAIGN_PID=$!
# EventBridge's rate(1 minute) schedule of the call sweeper, locally.
"$ADMIN_BIN" tick "http://127.0.0.1:$API_PORT/2015-03-31/functions/call-sweeper/invocations" \
  call-sweeper 60 > .local/call-sweeper.log 2>&1 &
TICK_PID=$!
log "serving the API with cargo lambda watch (functions compile on first request)"
"$VENV/bin/cargo-lambda" lambda watch --invoke-address 127.0.0.1 --invoke-port "$API_PORT"
