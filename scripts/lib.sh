# Shared shell helpers for the local stack (sourced by dev.sh, test.sh, bench.sh).
# Owns: the project-local venv with the emulator and tools, starting/stopping moto_server.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
REQS="$ROOT/scripts/requirements-dev.txt"

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }

# Creates .venv and installs scripts/requirements-dev.txt when missing or changed.
ensure_venv() {
  local stamp="$VENV/.requirements.sha"
  local want
  want=$(sha256sum "$REQS" | cut -d' ' -f1)
  if [ -x "$VENV/bin/moto_server" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  log "installing local tooling into .venv (moto, cfn-lint, cargo-lambda)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS"
  echo "$want" > "$stamp"
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until something answers HTTP on 127.0.0.1:$1 (up to $2 seconds).
wait_http() {
  python3 - "$1" "${2:-30}" <<'PY'
import sys, time, urllib.request, urllib.error
port, limit = int(sys.argv[1]), float(sys.argv[2])
deadline = time.time() + limit
while time.time() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(1)
PY
}

# Starts the emulator (moto, DynamoDB serialised: see emulator.py) on 127.0.0.1:$1, logging to
# $2; sets MOTO_PID.
start_emulator() {
  local port=$1 logfile=$2
  "$VENV/bin/python" "$ROOT/scripts/emulator.py" 127.0.0.1 "$port" >"$logfile" 2>&1 &
  MOTO_PID=$!
  if ! wait_http "$port" 30; then
    log "the emulator did not start on port $port; its log:"
    tail -20 "$logfile" >&2
    return 1
  fi
}

# Environment for the AWS SDK to reach the emulator on port $1.
emulator_env() {
  export AWS_ENDPOINT_URL="http://127.0.0.1:$1"
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
}

# What the emulator on port $1 injected and its peak memory (`GET /_callplane/stats`).
emulator_stats() {
  python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_callplane/stats", timeout=5).read().decode())' "$1" 2>/dev/null || echo "no stats"
}
