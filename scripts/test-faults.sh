#!/usr/bin/env bash
# `make test-faults`: the tests that prove concurrency and idempotency (concurrent publishes,
# invitation acceptances, ingest writers, the 1,000-event replay, outbound and webhook
# idempotency, a killed lead import and the thousand-row import, a campaign tick delivered
# three times, a dialer killed mid-dial, a campaign slot recovered, every report figure, the tool
# proxy sending once per key under its rate limit), against an emulator that answers a share of
# DynamoDB requests with the errors
# real DynamoDB gives under load: TransactionConflict, throttling, 500s (scripts/emulator.py).
# They must give exactly the same results. CALLPLANE_EMULATOR_FAULTS overrides the rates.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv
mkdir -p .local
export CALLPLANE_EMULATOR_FAULTS="${CALLPLANE_EMULATOR_FAULTS:-conflict:0.1,throttle:0.05,error:0.02}"
port=$(free_port)
log "starting an emulator in fault mode ($CALLPLANE_EMULATOR_FAULTS) on 127.0.0.1:$port"
start_emulator "$port" .local/moto-faults.log
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
emulator_env "$port"

filter='test(/concurrent|thousand_events|idempotent|same_call_sid|attached_by_two|accepted_twice|placed_once|killed_mid_file|a_thousand_rows|delivered_three_times|killed_mid_dial|slot_whose|every_report_figure|sends_once_limits/)'
log "running the concurrency and idempotency tests under faults"
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast -E "$filter" || status=$?
else
  log "cargo-nextest is required for the fault run (its filter expressions)"; status=1
fi
log "emulator: $(emulator_stats "$port")"
exit "$status"
