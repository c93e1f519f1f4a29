#!/usr/bin/env bash
# `make demo`: sets up what is missing, builds the host and PHP (each cached: a second run is
# quick), runs the seed's PHP handler on {"name":"world"}, then says where the time went, so a
# first run on a fresh machine shows what it paid for.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}

timings=()
step() { # step LABEL COMMAND...: runs it, records its wall time
  local label=$1 started=$SECONDS
  shift
  "$@"
  timings+=("$(printf '%-44s %4d s' "$label" $((SECONDS - started)))")
}

step "setup (apt packages, rustup targets)" bash scripts/setup.sh
# The PHP build's tool shares the host's cargo run: wasmtime is compiled once for both.
step "host + PHP build tool (cargo)" "$CARGO" build -p host -p lamp-php-tool
step "PHP for WASI (guests/php/build.sh)" bash guests/php/build.sh
step "the seed's handler (host run)" target/debug/host run examples/hello-php/src/index.php --event '{"name":"world"}'
echo
echo "make demo: where the time went"
printf '  %s\n' "${timings[@]}"
