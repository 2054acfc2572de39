#!/usr/bin/env bash
# `make test`: installs what is missing, starts its own emulator on a free port, builds the
# runtime-sim image, lints the SAM template, runs every test in the workspace (the host agent's
# against the local Docker engine), schemathesis over the API description (scripts/fuzz.sh),
# then runs the concurrency and idempotency tests again against
# a second emulator in fault mode (scripts/test-faults.sh), and stops what it started.
# Exit code = the result.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv
mkdir -p .local
port=$(free_port)
log "starting the emulator on 127.0.0.1:$port"
start_emulator "$port" .local/moto-test.log
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
emulator_env "$port"

log "building the runtime-sim image (the host agent's tests run it on the local Docker engine)"
scripts/runtime-sim-image.sh

log "cfn-lint infra/template.yaml"
"$VENV/bin/cfn-lint" infra/template.yaml

log "running the workspace tests"
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast || status=$?
else
  cargo test --workspace --no-fail-fast || status=$?
fi
log "generated bad-input tests (make fuzz) against the same emulator"
scripts/fuzz.sh || status=$?
log "emulator: $(emulator_stats "$port")"
kill "$MOTO_PID" 2>/dev/null || true

scripts/test-faults.sh || status=$?
exit "$status"
