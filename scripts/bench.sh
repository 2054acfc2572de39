#!/usr/bin/env bash
# `make bench`: per function, the stripped release binary size and cold start (process start
# until it first asks a stand-in Lambda Runtime API for work, SDK clients built); then DynamoDB
# round trips per operation against the emulator. Targets: <= 25 ms, <= 15 MB, login <= 1 read
# before the password check, GET /me <= 2.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
FUNCTIONS=(agents auth establishments)
RUNS=${BENCH_RUNS:-20}

ensure_venv
log "building release binaries (host target $(rustc -vV | sed -n 's/^host: //p'); AWS runs arm64)"
cargo build -q --release $(printf -- '-p %s ' "${FUNCTIONS[@]}")
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/release"

log "cold start, $RUNS runs each"
coldstart=$(
  TABLE_NAME=bench-table BUCKET_NAME=bench-bucket JWT_SECRET=bench-secret-bench-secret-bench-secret \
  MAIL_TRANSPORT=ses AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
  python3 scripts/coldstart.py "$RUNS" $(printf -- "$TARGET/%s " "${FUNCTIONS[@]}")
)
echo
echo "| function | stripped size (MB) | cold start median (ms) | p90 (ms) | min (ms) |"
echo "|---|---|---|---|---|"
while IFS=$'\t' read -r name median p90 min; do
  size=$(python3 -c "import os; print(f'{os.path.getsize(\"$TARGET/$name\")/1e6:.1f}')")
  echo "| $name | $size | $median | $p90 | $min |"
done <<< "$coldstart"
echo

mkdir -p .local
port=$(free_port)
start_emulator "$port" .local/moto-bench.log
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
emulator_env "$port"
cargo run -q -p callplane-tests --bin bench-round-trips
