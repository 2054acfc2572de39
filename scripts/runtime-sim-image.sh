#!/usr/bin/env bash
# `make runtime-sim-image`: builds runtime-sim as a static binary (glibc, crt-static) and
# packages it as the local image callplane/runtime-sim:dev, FROM scratch: nothing is pulled.
# Exit 2 (and a plain message) when no Docker engine is reachable.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
IMAGE=${RUNTIME_SIM_IMAGE:-callplane/runtime-sim:dev}

if ! docker info >/dev/null 2>&1; then
  log "no Docker engine is reachable (docker info failed): cannot build $IMAGE"
  exit 2
fi
host=$(rustc -vV | sed -n 's/^host: //p')
log "building runtime-sim statically for $host"
# An explicit --target keeps these flags off build scripts and off the shared debug builds.
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build -q --release -p runtime-sim --target "$host"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$TARGET_DIR/$host/release/runtime-sim" "$context/"
cp runtime-sim/Dockerfile "$context/"
log "docker build $IMAGE (FROM scratch)"
DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$context" >/dev/null 2>&1 || docker build -t "$IMAGE" "$context"
log "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
