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
  timings+=("$(printf '%-50s %4d s' "$label" $((SECONDS - started)))")
}

step "setup (apt packages, rustup targets)" bash scripts/setup.sh
# build.sh runs the cargo build of the host and its own tool (one build of wasmtime for both)
# beside PHP's C build when that has to be made, so neither waits for the other; the cargo
# step after it then only checks that the host is up to date.
step "PHP for WASI, with the host beside it (build.sh)" bash guests/php/build.sh
step "host (cargo, built above)" "$CARGO" build -p host -p lamp-php-tool
step "the seed's handler (host run)" target/debug/host run examples/hello-php/src/index.php --event '{"name":"world"}'
echo
echo "make demo: where the time went"
printf '  %s\n' "${timings[@]}"
