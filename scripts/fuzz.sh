#!/usr/bin/env bash
# `make fuzz`: generated bad-input tests. Starts an emulator (unless AWS_ENDPOINT_URL points
# at one already) and the api-standin (every function on one port over a fresh stack), then
# runs schemathesis over the description the API serves at /openapi.json, as the standin's
# admin, with a bounded number of examples per operation (FUZZ_EXAMPLES, default 25) and a
# fixed seed (FUZZ_SEED) so a failure reproduces. Checks: no 5xx, documented status codes,
# content types and response schemas. Exit code = schemathesis's.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv
mkdir -p .local
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  port=$(free_port)
  start_emulator "$port" .local/moto-fuzz.log
  pids+=("$MOTO_PID")
  emulator_env "$port"
fi

log "building the api-standin"
cargo build -q -p callplane-tests --bin api-standin
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
"$TARGET/api-standin" > .local/api-standin.json 2> .local/api-standin.log &
pids+=("$!")
for _ in $(seq 1 300); do
  [ -s .local/api-standin.json ] && break
  sleep 0.1
done
[ -s .local/api-standin.json ] || { log "the api-standin did not start; its log:"; tail -20 .local/api-standin.log >&2; exit 1; }
field() { python3 -c 'import json,sys; print(json.load(open(".local/api-standin.json"))[sys.argv[1]])' "$1"; }
url=$(field url)
export FUZZ_ESTABLISHMENT_ID=$(field establishment_id) FUZZ_AGENT_ID=$(field agent_id) \
  FUZZ_VERSION_ID=$(field version_id) FUZZ_PHONE_NUMBER_ID=$(field phone_number_id) \
  FUZZ_RUNTIME_ID=$(field runtime_id) FUZZ_CALL_ID=$(field call_id) \
  FUZZ_JOB_ID=$(field job_id) FUZZ_LEAD_ID=$(field lead_id) \
  FUZZ_CAMPAIGN_ID=$(field campaign_id) FUZZ_INTEGRATION_ID=$(field integration_id)

log "schemathesis over $url/openapi.json (${FUZZ_EXAMPLES:-25} examples per operation)"
started=$(date +%s)
status=0
"$VENV/bin/schemathesis" --config-file scripts/schemathesis.toml run "$url/openapi.json" \
  --header "Authorization: Bearer $(field token)" \
  --phases examples,coverage,fuzzing \
  --max-examples "${FUZZ_EXAMPLES:-25}" \
  --seed "${FUZZ_SEED:-20261202}" \
  --workers 1 \
  --request-timeout 30 \
  --warnings "${FUZZ_WARNINGS:-off}" \
  --report junit --report-dir .local/fuzz-report \
  || status=$?
log "schemathesis finished in $(( $(date +%s) - started )) s (exit $status); report in .local/fuzz-report"
exit "$status"
