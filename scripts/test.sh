#!/usr/bin/env bash
# `make test`: installs what is missing, starts its own emulator on a free port, lints the SAM
# template, runs every test in the workspace, stops what it started. Exit code = the result.
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

log "cfn-lint infra/template.yaml"
"$VENV/bin/cfn-lint" infra/template.yaml

log "running the workspace tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
